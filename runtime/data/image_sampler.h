// ImageSampler: deterministic, rank-disjoint, resumable batches of images —
// the token BatchSampler's guarantees for a data set of N items.
//
// Each epoch visits the items in a permutation drawn from (seed, epoch) by a
// counter-based generator (identity when not shuffling). One global batch is
// batch_size * world_size consecutive positions of the permutation; rank r
// takes the r-th block of batch_size, so the ranks are disjoint and their
// concatenation in rank order is exactly the batch one rank with
// batch_size * world_size would get. A batch that would run past the end
// starts the next epoch (the tail is dropped). The optional horizontal flip
// of an item is a hash of (seed, epoch, item), so it needs no RNG state
// either: (epoch, cursor) is the whole state.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace anvil {

struct ImageSamplerOptions {
  int batch_size = 8;  // per rank
  int rank = 0;
  int world_size = 1;
  uint64_t seed = 0;
  bool shuffle = true;  // false: items in order (evaluation)
  bool hflip = false;   // flip each item left-right with probability 1/2
};

struct ImageSamplerState {
  uint64_t epoch = 0;
  uint64_t cursor = 0;  // position in the epoch's permutation of the next global batch
};

struct ImageDraw {
  uint64_t item = 0;  // index into the data set
  bool flip = false;
};

class ImageSampler {
 public:
  static absl::StatusOr<ImageSampler> Create(uint64_t num_items,
                                             const ImageSamplerOptions& options);

  // This rank's batch_size draws of the next global batch; advances.
  // `global_batch` (if not null) receives the number of global batches drawn
  // before this one since epoch 0 — a key for per-batch randomness.
  void Next(ImageDraw* draws, uint64_t* global_batch = nullptr);

  ImageSamplerState state() const { return {epoch_, cursor_}; }
  // Fails when the cursor does not fit this data set and batch.
  absl::Status Restore(const ImageSamplerState& state);
  void Reset();

  uint64_t num_items() const { return num_items_; }
  uint64_t items_per_step() const {
    return static_cast<uint64_t>(options_.batch_size) * options_.world_size;
  }
  uint64_t steps_per_epoch() const { return num_items_ / items_per_step(); }

 private:
  ImageSampler(uint64_t n, const ImageSamplerOptions& o) : num_items_(n), options_(o) {}
  void BuildPermutation();

  uint64_t num_items_;
  ImageSamplerOptions options_;
  std::vector<uint32_t> perm_;  // empty when not shuffling
  uint64_t epoch_ = 0;
  uint64_t cursor_ = 0;
};

}  // namespace anvil
