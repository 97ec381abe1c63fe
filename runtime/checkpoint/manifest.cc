#include "runtime/checkpoint/manifest.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "runtime/checkpoint/file_io.h"
#include "xxhash.h"

namespace anvil::ckpt {
namespace {

constexpr char kMagic[8] = {'A', 'N', 'V', 'M', 'A', 'N', 'I', '1'};
constexpr size_t kHeader = 24;
constexpr uint64_t kMaxElements = uint64_t{1} << 48;

void PutU64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

// Format 1's kinds and the state buffers they stand for.
struct LegacyKind {
  proto::StateKind kind;
  const char* state;
};
constexpr LegacyKind kLegacyKinds[] = {{proto::STATE_KIND_PARAM, "params"},
                                       {proto::STATE_KIND_EXP_AVG, "adam_m"},
                                       {proto::STATE_KIND_EXP_AVG_SQ, "adam_v"}};

}  // namespace

const char* StateKindName(proto::StateKind k) {
  switch (k) {
    case proto::STATE_KIND_PARAM:
      return "param";
    case proto::STATE_KIND_EXP_AVG:
      return "exp_avg";
    case proto::STATE_KIND_EXP_AVG_SQ:
      return "exp_avg_sq";
    default:
      return "unknown";
  }
}

std::string EntryStateName(const proto::TensorEntry& t) {
  if (!t.state().empty()) return t.state();
  for (const LegacyKind& k : kLegacyKinds) {
    if (k.kind == t.kind()) return k.state;
  }
  return "unknown";
}

proto::StateKind LegacyStateKind(const std::string& state) {
  for (const LegacyKind& k : kLegacyKinds) {
    if (state == k.state) return k.kind;
  }
  return proto::STATE_KIND_UNSPECIFIED;
}

absl::Status WriteManifest(const std::string& dir, const proto::CheckpointManifest& m) {
  std::string payload;
  if (!m.SerializeToString(&payload)) return absl::InternalError("cannot serialize the manifest");
  std::string out(kHeader, '\0');
  std::memcpy(out.data(), kMagic, 8);
  PutU64(out.data() + 8, payload.size());
  PutU64(out.data() + 16, XXH3_64bits(payload.data(), payload.size()));
  out += payload;
  ASSIGN_OR_RETURN(FileWriter w, FileWriter::Create(JoinPath(dir, kManifestName)));
  RETURN_IF_ERROR(w.Write(out.data(), out.size()));
  return w.Finish().status();
}

absl::StatusOr<proto::CheckpointManifest> ReadManifest(const std::string& dir) {
  const std::string path = JoinPath(dir, kManifestName);
  absl::StatusOr<std::string> data = ReadSmallFile(path);
  if (!data.ok()) {
    if (absl::IsNotFound(data.status())) return absl::NotFoundError("no manifest.pb");
    return data.status();
  }
  if (data->size() < kHeader || std::memcmp(data->data(), kMagic, 8) != 0) {
    return absl::DataLossError("manifest.pb has no valid header");
  }
  const uint64_t len = GetU64(data->data() + 8);
  if (data->size() - kHeader != len) {
    return absl::DataLossError(absl::StrCat("manifest.pb is ", data->size(),
                                            " bytes, its header says ", len + kHeader,
                                            " (truncated)"));
  }
  const uint64_t want = GetU64(data->data() + 16);
  const uint64_t got = XXH3_64bits(data->data() + kHeader, len);
  if (want != got) {
    return absl::DataLossError(
        absl::StrFormat("manifest.pb checksum mismatch (xxh3 %016x, recorded %016x)", got, want));
  }
  proto::CheckpointManifest m;
  if (!m.ParseFromArray(data->data() + kHeader, static_cast<int>(len))) {
    return absl::DataLossError("manifest.pb does not parse");
  }
  if (m.format_version() < kOldestFormatVersion || m.format_version() > kFormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("checkpoint format version ", m.format_version(),
                     " is not supported (this build reads versions ", kOldestFormatVersion, " to ",
                     kFormatVersion, ")"));
  }
  RETURN_IF_ERROR(ValidateManifest(m));
  return m;
}

absl::Status ValidateManifest(const proto::CheckpointManifest& m) {
  // Data files are plain names inside the checkpoint directory: a manifest
  // must not make a reader open anything outside it.
  std::set<std::string> names;
  for (const proto::ShardFile& f : m.files()) {
    if (f.name().empty() || f.name() == "." || f.name() == ".." ||
        f.name().find_first_of(std::string_view("/\0", 2)) != std::string::npos) {
      return absl::DataLossError(
          absl::StrCat("manifest names data file '", absl::CHexEscape(f.name()),
                       "', which is not a plain file name in the checkpoint directory"));
    }
    if (!names.insert(f.name()).second) {
      return absl::DataLossError(absl::StrCat("manifest lists data file ", f.name(), " twice"));
    }
  }
  std::set<std::pair<std::string, std::string>> seen;
  for (const proto::TensorEntry& t : m.tensors()) {
    const std::string state = EntryStateName(t);
    const std::string what = absl::StrCat(state, " ", t.name());
    if (!seen.insert({t.name(), state}).second) {
      return absl::DataLossError(absl::StrCat("manifest lists ", what, " twice"));
    }
    if (t.dtype() != "F32")
      return absl::DataLossError(absl::StrCat(what, " has dtype ", t.dtype()));
    // Shapes are bounded so element and byte counts cannot wrap: every
    // dimension >= 0 and at most 2^48 elements in all.
    uint64_t numel = 1;
    for (int64_t d : t.shape()) {
      if (d < 0 || (d > 0 && numel > kMaxElements / static_cast<uint64_t>(d))) {
        return absl::DataLossError(absl::StrCat(what, " has an impossible shape [",
                                                absl::StrJoin(t.shape(), ","), "]"));
      }
      numel *= static_cast<uint64_t>(d);
    }
    uint64_t next = 0;
    for (const proto::TensorSlice& s : t.slices()) {
      if (s.begin() < next) {
        return absl::DataLossError(absl::StrCat(what, ": the slice at element ", s.begin(),
                                                " overlaps the previous one (stored twice)"));
      }
      if (s.begin() > next) {
        return absl::DataLossError(
            absl::StrCat(what, ": elements [", next, ", ", s.begin(), ") are in no file"));
      }
      if (s.file() >= static_cast<uint32_t>(m.files_size())) {
        return absl::DataLossError(absl::StrCat(what, ": slice names file ", s.file()));
      }
      if (s.count() > numel - next) {
        return absl::DataLossError(absl::StrCat(what, ": a slice runs past its ", numel,
                                                " elements"));
      }
      const uint64_t file_bytes = m.files(static_cast<int>(s.file())).bytes();
      if (s.file_offset() > file_bytes || 4 * s.count() > file_bytes - s.file_offset()) {
        return absl::DataLossError(absl::StrCat(what, ": slice runs past the end of ",
                                                m.files(static_cast<int>(s.file())).name()));
      }
      next += s.count();
    }
    if (next != numel) {
      return absl::DataLossError(
          absl::StrCat(what, ": elements [", next, ", ", numel, ") are in no file"));
    }
  }
  return absl::OkStatus();
}

absl::Status VerifyFiles(const std::string& dir, const proto::CheckpointManifest& m, int offset,
                         int stride) {
  for (int i = offset; i < m.files_size(); i += stride) {
    const proto::ShardFile& f = m.files(i);
    absl::StatusOr<FileDigest> d = HashFile(JoinPath(dir, f.name()));
    if (!d.ok()) {
      if (absl::IsNotFound(d.status()))
        return absl::DataLossError(absl::StrCat(f.name(), " is missing"));
      return d.status();
    }
    if (d->bytes != f.bytes()) {
      return absl::DataLossError(absl::StrCat(f.name(), " is ", d->bytes,
                                              " bytes, the manifest says ", f.bytes(),
                                              d->bytes < f.bytes() ? " (truncated)" : ""));
    }
    if (d->xxh3 != f.xxh3()) {
      return absl::DataLossError(absl::StrFormat(
          "%s checksum mismatch (xxh3 %016x, recorded %016x)", f.name(), d->xxh3, f.xxh3()));
    }
  }
  return absl::OkStatus();
}

absl::Status ReadTensorRange(const std::string& dir, const proto::CheckpointManifest& m,
                             const proto::TensorEntry& t, uint64_t begin, uint64_t count,
                             float* dst) {
  const uint64_t end = begin + count;
  for (const proto::TensorSlice& s : t.slices()) {
    const uint64_t lo = std::max(begin, s.begin());
    const uint64_t hi = std::min(end, s.begin() + s.count());
    if (lo >= hi) continue;
    const std::string path = JoinPath(dir, m.files(static_cast<int>(s.file())).name());
    ASSIGN_OR_RETURN(const int fd, OpenForRead(path));
    absl::Status st = PreadFull(fd, dst + (lo - begin), (hi - lo) * 4,
                                s.file_offset() + (lo - s.begin()) * 4, path);
    ::close(fd);
    RETURN_IF_ERROR(st);
  }
  return absl::OkStatus();
}

}  // namespace anvil::ckpt
