// The manifest file (`manifest.pb` in a checkpoint directory) and the checks
// that make a checkpoint trustworthy.
//
// On disk: 8 bytes magic "ANVMANI1", u64 little-endian payload length, u64
// xxh3 of the payload, then the serialized CheckpointManifest. A torn or
// bit-flipped manifest fails the length or hash check instead of parsing into
// something plausible.
//
// VerifyFiles is the end-to-end check: every data file has the size and the
// xxh3 the manifest recorded when the file was written.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/checkpoint.pb.h"

namespace anvil::ckpt {

inline constexpr char kManifestName[] = "manifest.pb";
// Written: 2 (entries name their state buffer). Read: 1 and 2.
inline constexpr uint32_t kFormatVersion = 2;
inline constexpr uint32_t kOldestFormatVersion = 1;

// The state buffer a tensor entry belongs to: its `state` (format 2), else
// the buffer its kind stands for (format 1: "params", "adam_m", "adam_v").
std::string EntryStateName(const proto::TensorEntry& t);
// The kind format 1 used for a state buffer; STATE_KIND_UNSPECIFIED for
// buffers it had none for.
proto::StateKind LegacyStateKind(const std::string& state);

// Writes and fsyncs `dir`/manifest.pb (the directory entry is fsynced by the
// caller together with the rename).
absl::Status WriteManifest(const std::string& dir, const proto::CheckpointManifest& m);
// Reads, checks framing and hash, parses and validates.
absl::StatusOr<proto::CheckpointManifest> ReadManifest(const std::string& dir);

// Structural checks (see proto/checkpoint.proto): slices tile every tensor
// exactly once and lie inside their files.
absl::Status ValidateManifest(const proto::CheckpointManifest& m);

// Checks size and xxh3 of the files whose index i satisfies
// i % stride == offset (stride 1: all). Errors say which file and what is
// wrong ("truncated", "checksum mismatch", "missing").
absl::Status VerifyFiles(const std::string& dir, const proto::CheckpointManifest& m, int offset = 0,
                         int stride = 1);

const char* StateKindName(proto::StateKind k);  // "param" | "exp_avg" | "exp_avg_sq"

// Reads elements [begin, begin + count) of a tensor into dst, from whichever
// files hold them (positioned reads; nothing else is loaded).
absl::Status ReadTensorRange(const std::string& dir, const proto::CheckpointManifest& m,
                             const proto::TensorEntry& t, uint64_t begin, uint64_t count,
                             float* dst);

}  // namespace anvil::ckpt
