// BatchSampler: deterministic, rank-disjoint, resumable batches of windows.
//
// The data set (a list of shards) is cut into windows of seq_len+1 tokens at
// stride seq_len (input = window[0..T), target = window[1..T]); windows never
// cross shards. Each epoch visits the windows in a permutation drawn from
// (seed, epoch) by a counter-based generator, so the permutation is a pure
// function of the state and needs no RNG object to be saved.
//
// One step consumes batch_size * world_size consecutive windows of the
// permutation; rank r takes the r-th block of batch_size. The ranks' windows
// are disjoint, and their concatenation in rank order is exactly the batch a
// single rank with batch_size * world_size would get — the property the
// sharded runtime's equivalence tests rely on. A step that would run past the
// end of the permutation starts the next epoch (the tail is dropped).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/data/token_shard.h"

namespace anvil {

struct SamplerOptions {
  int batch_size = 8;  // per rank
  int seq_len = 256;
  int rank = 0;
  int world_size = 1;
  uint64_t seed = 0;
  bool shuffle = true;  // false: windows in file order (evaluation)
};

// Everything needed to continue exactly where a run stopped.
struct SamplerState {
  uint64_t seed = 0;
  uint64_t epoch = 0;
  uint64_t cursor = 0;  // index into the epoch's permutation of the next step
  uint64_t shard = 0;   // shard of the next window (informational)
  uint64_t position = 0;  // token offset of the next window in that shard
};

class BatchSampler {
 public:
  // `shards` must outlive the sampler.
  static absl::StatusOr<BatchSampler> Create(const std::vector<TokenShard>* shards,
                                             const SamplerOptions& options);

  // Fills inputs and targets, each (batch_size, seq_len) int32, and advances.
  void Next(int32_t* inputs, int32_t* targets);

  SamplerState state() const;
  // Fails when the state does not belong to this data set and options.
  absl::Status Restore(const SamplerState& state);
  // Back to epoch 0, cursor 0.
  void Reset();

  uint64_t num_windows() const { return windows_.size(); }
  uint64_t windows_per_step() const {
    return static_cast<uint64_t>(options_.batch_size) * options_.world_size;
  }

 private:
  struct Window {
    uint32_t shard;
    uint64_t offset;
  };
  BatchSampler(const std::vector<TokenShard>* shards, const SamplerOptions& options)
      : shards_(shards), options_(options) {}
  void BuildPermutation();
  const Window& WindowAt(uint64_t index_in_epoch) const;

  const std::vector<TokenShard>* shards_;
  SamplerOptions options_;
  std::vector<Window> windows_;
  std::vector<uint32_t> perm_;  // empty when not shuffling
  uint64_t epoch_ = 0;
  uint64_t cursor_ = 0;
  std::vector<int32_t> window_buf_;
};

}  // namespace anvil
