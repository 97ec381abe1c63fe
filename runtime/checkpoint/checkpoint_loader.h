// Resume: find the newest checkpoint that verifies, and load a rank's shard
// of it under any (world size, strategy).
//
// FindResumePoint walks the committed step_<N> directories newest first.
// For each, every rank reads the manifest (framing, hash, structure) and
// verifies the size and xxh3 of the data files i with i % world == rank, so
// the end-to-end check costs one read of the checkpoint spread over all
// ranks; the ranks agree through the store, and the first candidate that
// every rank accepts wins. Candidates that fail are listed with the reason
// (one line each), together with partial (.tmp) and half-deleted
// (.deleting) entries. Every rank reaches the same decision. When committed
// checkpoints exist but none verifies, that is an error, not a fresh start.
//
// LoadShard fills the rank's named state buffers (params, adam_m, adam_v,
// ...) for its own ShardLayout with positioned reads of just the overlapping
// byte ranges (shard_slices.h), through one host buffer of one state at a
// time. Format-1 checkpoints (states named by kind) load the same way.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kernels/device.h"
#include "models/param_layout.h"
#include "proto/checkpoint.pb.h"
#include "runtime/sharding/shard_layout.h"
#include "runtime/sharding/state_buffer.h"
#include "runtime/store/store.h"

namespace anvil::ckpt {

struct ResumeOptions {
  std::string dir;
  int rank = 0;
  int world_size = 1;
  std::shared_ptr<Store> store;  // required when world_size > 1
  absl::Duration timeout = absl::Minutes(5);
  // Store keys of the ranks' agreement; one prefix per search of a job.
  std::string key_prefix = "resume/";
};

struct ResumePoint {
  std::string path;  // <dir>/step_<N>
  proto::CheckpointManifest manifest;
};

struct ResumeSearch {
  std::optional<ResumePoint> point;    // none: start from scratch
  std::vector<std::string> skipped;    // "step_00000300: rank_00001.bin checksum mismatch (...)"
  std::vector<std::string> leftovers;  // partial / deleting entry names (for CleanUp)
  std::vector<std::string> invalid;    // committed names newer than the point that failed
};

absl::StatusOr<ResumeSearch> FindResumePoint(const ResumeOptions& options);

// Rank 0, after every rank has loaded: removes partial and half-deleted
// leftovers and sets aside committed directories that failed verification
// (renamed to .corrupt-<ms>, never deleted). Returns one line per action.
std::vector<std::string> CleanUpAfterResume(const std::string& dir, const ResumeSearch& search);

// Destination of LoadShard: device buffers of shards.local_numel() floats,
// each filled from the checkpoint's state of the same name.
struct ShardTarget {
  const ParamLayout* layout = nullptr;
  const ShardLayout* shards = nullptr;
  kernels::Device* device = nullptr;
  StateList state;
};

struct LoadStats {
  uint64_t bytes_read = 0;
  int reads = 0;
};

absl::StatusOr<LoadStats> LoadShard(const ResumePoint& point, const ShardTarget& target);

}  // namespace anvil::ckpt
