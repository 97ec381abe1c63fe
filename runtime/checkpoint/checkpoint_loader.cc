#include "runtime/checkpoint/checkpoint_loader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "runtime/checkpoint/checkpoint_dir.h"
#include "runtime/checkpoint/file_io.h"
#include "runtime/checkpoint/manifest.h"
#include "runtime/checkpoint/shard_slices.h"

namespace anvil::ckpt {
namespace {

constexpr char kOk[] = "ok";

// This rank's share of the verification of one candidate.
absl::StatusOr<proto::CheckpointManifest> CheckCandidate(const std::string& path, int rank,
                                                         int world) {
  ASSIGN_OR_RETURN(proto::CheckpointManifest m, ReadManifest(path));
  RETURN_IF_ERROR(VerifyFiles(path, m, rank, world));
  return m;
}

}  // namespace

absl::StatusOr<ResumeSearch> FindResumePoint(const ResumeOptions& o) {
  const bool multi = o.world_size > 1;
  if (multi && o.store == nullptr)
    return absl::InvalidArgumentError("multi-rank resume needs a store");
  ResumeSearch search;
  // Rank 0's listing is the one every rank walks.
  std::vector<std::string> names;
  if (o.rank == 0) {
    for (const DirEntry& e : ListCheckpointDir(o.dir)) {
      switch (e.state) {
        case EntryState::kCommitted:
          names.push_back(e.name);
          break;
        case EntryState::kPartial:
          search.skipped.push_back(absl::StrCat(e.name, ": partial save, never committed"));
          search.leftovers.push_back(e.name);
          break;
        case EntryState::kDeleting:
          search.skipped.push_back(absl::StrCat(e.name, ": interrupted deletion (--keep_last)"));
          search.leftovers.push_back(e.name);
          break;
        case EntryState::kSetAside:
          break;
      }
    }
    if (multi) RETURN_IF_ERROR(o.store->Set(absl::StrCat(o.key_prefix, "list"), absl::StrJoin(names, "\n")));
  } else {
    ASSIGN_OR_RETURN(const std::string list, o.store->Get(absl::StrCat(o.key_prefix, "list"), o.timeout));
    names = absl::StrSplit(list, '\n', absl::SkipEmpty());
  }

  for (size_t i = 0; i < names.size(); ++i) {
    const std::string path = JoinPath(o.dir, names[i]);
    absl::StatusOr<proto::CheckpointManifest> mine = CheckCandidate(path, o.rank, o.world_size);
    std::string problem = mine.ok() ? "" : std::string(mine.status().message());
    if (multi) {
      RETURN_IF_ERROR(
          o.store->Set(absl::StrCat(o.key_prefix, i, "/", o.rank), mine.ok() ? kOk : problem));
      std::vector<std::string> keys;
      for (int r = 0; r < o.world_size; ++r) keys.push_back(absl::StrCat(o.key_prefix, i, "/", r));
      ASSIGN_OR_RETURN(std::vector<std::string> verdicts, o.store->MultiGet(keys, o.timeout));
      for (const std::string& v : verdicts) {
        if (v != kOk) {
          problem = v;
          break;
        }
      }
    }
    if (problem.empty()) {
      search.point = ResumePoint{path, *std::move(mine)};
      return search;
    }
    search.skipped.push_back(absl::StrCat(names[i], ": ", problem));
    search.invalid.push_back(names[i]);
  }
  if (!names.empty()) {
    // Starting over would silently throw away a run: make it the user's call.
    return absl::DataLossError(absl::StrCat("no checkpoint in ", o.dir, " verifies (",
                                            absl::StrJoin(search.skipped, "; "),
                                            "); move them away to start from scratch"));
  }
  return search;
}

std::vector<std::string> CleanUpAfterResume(const std::string& dir, const ResumeSearch& search) {
  std::vector<std::string> lines;
  for (const std::string& name : search.leftovers) {
    absl::Status s = RemoveTree(JoinPath(dir, name));
    lines.push_back(s.ok() ? absl::StrCat("removed ", name) : std::string(s.message()));
  }
  for (const std::string& name : search.invalid) {
    const std::string aside = absl::StrCat(name, ".corrupt-", absl::ToUnixMillis(absl::Now()));
    absl::Status s = RenamePath(JoinPath(dir, name), JoinPath(dir, aside));
    lines.push_back(s.ok() ? absl::StrCat("set aside ", name, " as ", aside)
                           : std::string(s.message()));
  }
  if (!lines.empty()) FsyncPath(dir).IgnoreError();
  return lines;
}

absl::StatusOr<LoadStats> LoadShard(const ResumePoint& point, const ShardTarget& t) {
  const proto::CheckpointManifest& m = point.manifest;
  const size_t n = t.shards->local_numel();
  // Host-memory backends are read into directly; others through one staging
  // buffer of one kind at a time.
  const bool direct = t.device->kind() == kernels::DeviceKind::kCpu;
  std::vector<int> fds(m.files_size(), -1);
  auto close_all = [&fds] {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  };
  LoadStats stats;
  std::vector<float> host(direct ? 0 : n);
  for (const StateBuffer& b : t.state) {
    if (b.data == nullptr || b.numel != n) {
      close_all();
      return absl::InvalidArgumentError(
          absl::StrCat("state buffer ", b.name, " holds ", b.numel, " elements, the shard ", n));
    }
    absl::StatusOr<std::vector<ReadOp>> ops = PlanShardReads(m, *t.layout, *t.shards, b.name);
    if (!ops.ok()) {
      close_all();
      return ops.status();
    }
    float* buf = direct ? b.data : host.data();
    // Shard padding is not in any read and must stay zero.
    for (const UnitShard& u : t.shards->units()) {
      std::fill(buf + u.shard_offset + (u.end - u.begin), buf + u.shard_offset + u.shard, 0.0f);
    }
    for (const ReadOp& op : *ops) {
      const std::string path = JoinPath(point.path, m.files(static_cast<int>(op.file)).name());
      if (fds[op.file] < 0) {
        absl::StatusOr<int> fd = OpenForRead(path);
        if (!fd.ok()) {
          close_all();
          return fd.status();
        }
        fds[op.file] = *fd;
        ::posix_fadvise(*fd, 0, 0, POSIX_FADV_SEQUENTIAL);
      }
      absl::Status s = PreadFull(fds[op.file], buf + op.dst, op.count * 4, op.file_offset, path);
      if (!s.ok()) {
        close_all();
        return s;
      }
      stats.bytes_read += op.count * 4;
      ++stats.reads;
    }
    if (!direct) t.device->CopyFromHost(b.data, host.data(), n * sizeof(float));
  }
  close_all();
  t.device->Synchronize();
  return stats;
}

}  // namespace anvil::ckpt
