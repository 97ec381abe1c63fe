#include "runtime/checkpoint/checkpoint_writer.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "runtime/checkpoint/checkpoint_dir.h"
#include "runtime/checkpoint/fault_point.h"
#include "runtime/checkpoint/file_io.h"
#include "runtime/checkpoint/manifest.h"
#include "runtime/checkpoint/shard_slices.h"

namespace anvil::ckpt {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

constexpr size_t kWriteChunk = 16u << 20;
constexpr char kGoWrite[] = "write";
constexpr char kSkipPrefix[] = "skip:";
constexpr char kErrorPrefix[] = "error:";

}  // namespace

struct CheckpointWriter::Job {
  int64_t seq = 0;
  SaveRequest request;
  Piece piece;
  Clock::time_point snapshot_done;
};

std::string SaveReport::Describe() const {
  const std::string name = StepDirName(step);
  if (!status.ok()) {
    std::string line = absl::StrCat("checkpoint ", name, " FAILED: ", status.message());
    for (const std::string& n : notes) absl::StrAppend(&line, "; ", n);
    return line;
  }
  if (skipped) return absl::StrCat("checkpoint ", name, " already committed; not saved again");
  std::string line = absl::StrFormat(
      "checkpoint %s committed: %.1f MB in %.2f s after the snapshot (this rank wrote %.1f MB at "
      "%.0f MB/s)",
      name, total_bytes / 1e6, total_s, bytes / 1e6, write_s > 0 ? bytes / 1e6 / write_s : 0.0);
  for (const std::string& n : notes) absl::StrAppend(&line, "; ", n);
  return line;
}

absl::StatusOr<std::unique_ptr<CheckpointWriter>> CheckpointWriter::Create(
    CheckpointWriterOptions options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("--checkpoint_dir is empty");
  if (options.keep_last < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--keep_last must be >= 0 (0 keeps all), got ", options.keep_last));
  }
  if (options.world_size > 1 && options.store == nullptr) {
    return absl::InvalidArgumentError("a multi-rank checkpoint writer needs a store");
  }
  std::unique_ptr<CheckpointWriter> w(new CheckpointWriter(std::move(options)));
  const CheckpointWriterOptions& o = w->options_;
  const std::string key = "ckpt/lock";
  if (o.rank == 0) {
    using LockOr = absl::StatusOr<std::unique_ptr<CheckpointDirLock>>;
    const absl::Status made = MakeDirs(o.dir);
    LockOr lock = made.ok() ? CheckpointDirLock::Acquire(o.dir, o.run_id, &w->lock_note_)
                            : LockOr(made);
    if (o.world_size > 1) {
      // The other ranks fail with the same line rather than at a timeout.
      RETURN_IF_ERROR(o.store->Set(
          key, lock.ok() ? absl::StrCat("ok:", (*lock)->record())
                         : absl::StrCat(kErrorPrefix, lock.status().message())));
    }
    RETURN_IF_ERROR(lock.status());
    w->lock_ = *std::move(lock);
  } else {
    ASSIGN_OR_RETURN(const std::string v, w->GetKey(key));
    if (absl::StartsWith(v, kErrorPrefix)) {
      return absl::FailedPreconditionError(v.substr(std::strlen(kErrorPrefix)));
    }
    RETURN_IF_ERROR(CheckDirOwner(o.dir, v.substr(3)));
  }
  return w;
}

CheckpointWriter::~CheckpointWriter() {
  cancel_ = true;
  Join();
}

absl::StatusOr<std::vector<std::string>> CheckpointWriter::GetKeys(
    const std::vector<std::string>& keys) {
  const absl::Time deadline = absl::Now() + options_.timeout;
  for (;;) {
    if (cancel_)
      return absl::CancelledError("checkpoint writer shut down while waiting for other ranks");
    const absl::Duration left = deadline - absl::Now();
    absl::Status s = options_.store->Wait(keys, std::min(left, absl::Milliseconds(200)));
    if (s.ok()) return options_.store->MultiGet(keys, absl::Seconds(10));
    if (s.code() != absl::StatusCode::kDeadlineExceeded || absl::Now() >= deadline) return s;
  }
}

absl::StatusOr<std::string> CheckpointWriter::GetKey(const std::string& key) {
  ASSIGN_OR_RETURN(std::vector<std::string> v, GetKeys({key}));
  return v[0];
}

void CheckpointWriter::Reserve(size_t floats) {
  if (staging_floats_ >= floats) return;
  const size_t a = FileWriter::kDirectAlignment;
  const size_t bytes = (floats * sizeof(float) + a - 1) / a * a;
  staging_.reset(static_cast<float*>(std::aligned_alloc(a, bytes == 0 ? a : bytes)));
  std::memset(staging_.get(), 0, bytes);  // touch the pages now, not inside a save's stall
  staging_floats_ = floats;
}

void CheckpointWriter::Join() {
  if (thread_.joinable()) thread_.join();
}

std::string CheckpointWriter::Key(const Job& job, const std::string& what) const {
  return absl::StrCat("ckpt/", job.seq, "/", what);
}

absl::StatusOr<SaveTiming> CheckpointWriter::Save(SaveRequest request) {
  const auto t0 = Clock::now();
  SaveTiming timing;
  Join();
  timing.wait_s = Since(t0);

  const ShardSource& src = request.source;
  if (src.layout == nullptr || src.shards == nullptr || src.device == nullptr) {
    return absl::InvalidArgumentError("SaveRequest without a shard source");
  }
  if (src.state.empty()) return absl::InvalidArgumentError("SaveRequest without state buffers");
  for (const StateBuffer& b : src.state) {
    if (b.data == nullptr || b.numel != src.shards->local_numel()) {
      return absl::InvalidArgumentError(absl::StrCat("state buffer ", b.name, " holds ", b.numel,
                                                     " elements, the shard ",
                                                     src.shards->local_numel()));
    }
  }
  auto job = std::make_unique<Job>();
  job->seq = seq_++;
  job->piece = WriterPiece(src.shards->local_numel(), src.replicas, src.replica_rank);
  const size_t n = job->piece.size();
  const size_t buffers = src.state.size();
  Reserve(buffers * n);
  const auto t1 = Clock::now();
  // Host-memory backends: one plain memcpy per buffer (a parallel copy only
  // adds thread hand-offs on a busy machine); others copy device -> host.
  const bool host = src.device->kind() == kernels::DeviceKind::kCpu;
  for (size_t k = 0; k < buffers; ++k) {
    if (n > 0) {
      float* dst = staging_.get() + k * n;
      const float* from = src.state[k].data + job->piece.begin;
      if (host) {
        std::memcpy(dst, from, n * 4);
      } else {
        src.device->CopyToHost(dst, from, n * 4);
      }
    }
    if (k == 0) MaybeFault("snapshot", request.step, options_.rank);
  }
  src.device->Synchronize();
  timing.snapshot_s = Since(t1);
  timing.bytes = buffers * n * 4;
  job->request = std::move(request);
  job->snapshot_done = Clock::now();

  thread_done_ = false;
  thread_ = std::thread([this, j = std::move(job)]() mutable { Run(std::move(j)); });
  if (!options_.async) Join();
  timing.stall_s = Since(t0);
  return timing;
}

std::vector<SaveReport> CheckpointWriter::Wait() {
  Join();
  absl::MutexLock l(&mu_);
  return std::exchange(finished_, {});
}

std::vector<SaveReport> CheckpointWriter::TakeFinished() {
  if (thread_done_) Join();
  absl::MutexLock l(&mu_);
  return std::exchange(finished_, {});
}

void CheckpointWriter::Run(std::unique_ptr<Job> job) {
#ifdef __linux__
  // The training threads come first: the writer mostly waits on the device,
  // and what CPU it needs (copies into the page cache, xxh3) can be slower.
  ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
#endif
  SaveReport report;
  report.step = job->request.step;
  report.status = RunSave(*job, &report);
  report.total_s = Since(job->snapshot_done);
  if (options_.rank == 0 && !report.status.ok()) {
    if (options_.world_size > 1) {
      // Nobody may wait for a commit that will not come.
      options_.store->Set(Key(*job, "done"), absl::StrCat(kErrorPrefix, report.status.message()))
          .IgnoreError();
    }
    // A failed save leaves nothing behind: its partial files would only fill
    // the disk that probably made it fail. (A rank still writing keeps its
    // unlinked file open; anything left over is removed by the next
    // commit's retention or the next resume.)
    const std::string tmp = JoinPath(options_.dir, TmpDirName(job->request.step));
    if (PathExists(tmp) && RemoveTree(tmp).ok()) {
      report.notes.push_back(absl::StrCat("removed ", TmpDirName(job->request.step)));
    }
  }
  {
    absl::MutexLock l(&mu_);
    finished_.push_back(std::move(report));
  }
  thread_done_ = true;
}

absl::Status CheckpointWriter::RunSave(Job& job, SaveReport* report) {
  const bool multi = options_.world_size > 1;
  std::string go;
  if (options_.rank == 0) {
    absl::StatusOr<std::string> decision = PrepareDirectory(job, report);
    go = decision.ok() ? *decision : absl::StrCat(kErrorPrefix, decision.status().message());
    if (multi) RETURN_IF_ERROR(options_.store->Set(Key(job, "go"), go));
    RETURN_IF_ERROR(decision.status());
  } else {
    ASSIGN_OR_RETURN(go, GetKey(Key(job, "go")));
  }
  if (absl::StartsWith(go, kSkipPrefix)) {
    report->skipped = true;
    return absl::OkStatus();
  }
  if (go != kGoWrite)
    return absl::AbortedError(absl::StrCat("rank 0 could not start the save: ", go));

  const std::string tmp = JoinPath(options_.dir, TmpDirName(job.request.step));
  proto::CheckpointManifest record;
  absl::Status written = WriteShardFile(job, tmp, &record, report);
  if (options_.rank != 0) {
    RETURN_IF_ERROR(options_.store->Set(
        Key(job, absl::StrCat("file/", options_.rank)),
        written.ok() ? record.SerializeAsString() : absl::StrCat(kErrorPrefix, written.message())));
    RETURN_IF_ERROR(written);
    ASSIGN_OR_RETURN(const std::string done, GetKey(Key(job, "done")));
    if (done != "ok") return absl::AbortedError(absl::StrCat("rank 0 did not commit: ", done));
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(written);
  RETURN_IF_ERROR(Commit(job, tmp, record, report));
  if (multi) RETURN_IF_ERROR(options_.store->Set(Key(job, "done"), "ok"));
  return absl::OkStatus();
}

absl::StatusOr<std::string> CheckpointWriter::PrepareDirectory(Job& job, SaveReport* report) {
  const std::string& dir = options_.dir;
  const std::string final_dir = JoinPath(dir, StepDirName(job.request.step));
  RETURN_IF_ERROR(MakeDir(dir));
  if (PathExists(final_dir)) {
    absl::StatusOr<proto::CheckpointManifest> m = ReadManifest(final_dir);
    absl::Status ok = m.ok() ? VerifyFiles(final_dir, *m) : m.status();
    if (ok.ok()) return absl::StrCat(kSkipPrefix, StepDirName(job.request.step), " is committed");
    // Never overwrite: a committed directory that does not verify is set aside.
    const std::string aside = absl::StrCat(final_dir, ".corrupt-", absl::ToUnixMillis(absl::Now()));
    RETURN_IF_ERROR(RenamePath(final_dir, aside));
    report->notes.push_back(absl::StrCat("set aside an invalid ", StepDirName(job.request.step),
                                         " (", ok.message(), ")"));
  }
  const std::string tmp = JoinPath(dir, TmpDirName(job.request.step));
  RETURN_IF_ERROR(RemoveTree(tmp));  // left by a save that died
  RETURN_IF_ERROR(MakeDir(tmp));     // durability comes with the commit's fsyncs
  return std::string(kGoWrite);
}

absl::Status CheckpointWriter::WriteShardFile(Job& job, const std::string& tmp,
                                              proto::CheckpointManifest* record,
                                              SaveReport* report) {
  const ShardSource& src = job.request.source;
  const size_t n = job.piece.size();
  if (n > 0) {
    const auto t0 = Clock::now();
    const std::string name = absl::StrFormat("rank_%05d.bin", options_.rank);
    ASSIGN_OR_RETURN(FileWriter w, FileWriter::Create(JoinPath(tmp, name), /*direct=*/true));
    const char* data = reinterpret_cast<const char*>(staging_.get());
    const size_t total = src.state.size() * n * 4;
    for (size_t off = 0; off < total; off += kWriteChunk) {
      RETURN_IF_ERROR(w.Write(data + off, std::min(kWriteChunk, total - off)));
      if (off < total / 2 && off + kWriteChunk >= total / 2) {
        MaybeFault("shard_write", job.request.step, options_.rank);
        if (DiskFullInjected(job.request.step, options_.rank)) {
          return absl::ResourceExhaustedError(absl::StrCat(
              JoinPath(tmp, name), ": write: No space left on device (ANVIL_CKPT_FAULT=disk_full)"));
        }
      }
    }
    ASSIGN_OR_RETURN(const FileDigest d, w.Finish());
    report->write_s = Since(t0);
    report->bytes = d.bytes;
    proto::ShardFile* f = record->add_files();
    f->set_name(name);
    f->set_bytes(d.bytes);
    f->set_xxh3(d.xxh3);
    f->set_rank(options_.rank);
    f->set_shard_world(src.shards->world());
    f->set_shard_rank(src.shards->rank());
    f->set_replicas(src.replicas);
    f->set_replica_rank(src.replica_rank);
    for (proto::TensorEntry& e :
         DescribePiece(*src.layout, *src.shards, job.piece, 0, StateNames(src.state))) {
      *record->add_tensors() = std::move(e);
    }
  }
  return absl::OkStatus();
}

absl::Status CheckpointWriter::Commit(Job& job, const std::string& tmp,
                                      const proto::CheckpointManifest& own, SaveReport* report) {
  const SaveRequest& r = job.request;
  std::vector<proto::CheckpointManifest> records(options_.world_size);
  records[0] = own;
  if (options_.world_size > 1) {
    std::vector<std::string> keys;
    for (int k = 1; k < options_.world_size; ++k)
      keys.push_back(Key(job, absl::StrCat("file/", k)));
    ASSIGN_OR_RETURN(std::vector<std::string> values, GetKeys(keys));
    for (int k = 1; k < options_.world_size; ++k) {
      const std::string& v = values[k - 1];
      if (absl::StartsWith(v, kErrorPrefix)) {
        return absl::AbortedError(
            absl::StrCat("rank ", k, " failed to write its shard: ", v.substr(6)));
      }
      if (!records[k].ParseFromString(v)) {
        return absl::DataLossError(absl::StrCat("rank ", k, "'s shard record does not parse"));
      }
    }
  }
  proto::CheckpointManifest m;
  m.set_format_version(kFormatVersion);
  m.set_step(r.step);
  *m.mutable_config() = r.config;
  *m.mutable_state() = r.state;
  m.set_world_size(options_.world_size);
  m.set_sharding(r.config.sharding());
  m.set_created_unix_ms(absl::ToUnixMillis(absl::Now()));
  m.set_total_numel(r.source.layout->total_numel());
  m.set_run_id(options_.run_id);
  std::vector<proto::TensorEntry> tensors =
      EmptyEntries(*r.source.layout, StateNames(r.source.state));
  for (const proto::CheckpointManifest& rec : records) {
    if (rec.files_size() == 0) continue;  // a replica with an empty piece
    const uint32_t index = static_cast<uint32_t>(m.files_size());
    *m.add_files() = rec.files(0);
    RETURN_IF_ERROR(AddSlices({rec.tensors().begin(), rec.tensors().end()}, index, &tensors));
  }
  for (proto::TensorEntry& t : tensors) *m.add_tensors() = std::move(t);
  RETURN_IF_ERROR(ValidateManifest(m));
  for (const proto::ShardFile& f : m.files()) report->total_bytes += f.bytes();

  MaybeFault("before_manifest", r.step, options_.rank);
  RETURN_IF_ERROR(WriteManifest(tmp, m));
  RETURN_IF_ERROR(FsyncPath(tmp));
  MaybeFault("before_rename", r.step, options_.rank);
  RETURN_IF_ERROR(RenamePath(tmp, JoinPath(options_.dir, StepDirName(r.step))));
  RETURN_IF_ERROR(FsyncPath(options_.dir));
  MaybeFault("before_latest", r.step, options_.rank);
  RETURN_IF_ERROR(WriteLatest(options_.dir, StepDirName(r.step)));
  ApplyRetention(r.step, report);
  return absl::OkStatus();
}

void CheckpointWriter::ApplyRetention(int64_t committed_step, SaveReport* report) {
  const std::string& dir = options_.dir;
  int kept = 0;
  std::vector<std::string> removed;
  for (const DirEntry& e : ListCheckpointDir(dir)) {
    std::string doomed;
    if (e.state == EntryState::kCommitted) {
      if (e.step > committed_step) continue;  // newer than ours: not ours to judge
      if (e.step == committed_step) {
        ++kept;
        continue;
      }
      if (options_.keep_last == 0 || kept < options_.keep_last) {
        ++kept;
        continue;
      }
      doomed = e.name + ".deleting";
      if (!RenamePath(JoinPath(dir, e.name), JoinPath(dir, doomed)).ok()) continue;
      FsyncPath(dir).IgnoreError();
      removed.push_back(e.name);
    } else if (e.state == EntryState::kDeleting || e.state == EntryState::kPartial) {
      doomed = e.name;  // leftovers of a process that died; no save is in flight
    } else {
      continue;
    }
    const std::string path = JoinPath(dir, doomed);
    std::error_code ec;
    bool first = true;
    for (const auto& f : std::filesystem::directory_iterator(path, ec)) {
      std::filesystem::remove(f.path(), ec);
      if (first && e.state == EntryState::kCommitted)
        MaybeFault("retention", committed_step, options_.rank);
      first = false;
    }
    RemoveTree(path).IgnoreError();
  }
  if (!removed.empty()) {
    std::string line = "removed";
    for (const std::string& r : removed) absl::StrAppend(&line, " ", r);
    report->notes.push_back(absl::StrCat(line, " (--keep_last=", options_.keep_last, ")"));
  }
}

}  // namespace anvil::ckpt
