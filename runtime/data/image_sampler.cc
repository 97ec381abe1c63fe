#include "runtime/data/image_sampler.h"

#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "models/init_rng.h"

namespace anvil {

absl::StatusOr<ImageSampler> ImageSampler::Create(uint64_t num_items,
                                                  const ImageSamplerOptions& options) {
  if (options.batch_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--batch_size must be > 0, got ", options.batch_size));
  }
  if (options.world_size <= 0 || options.rank < 0 || options.rank >= options.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank ", options.rank, " outside world size ", options.world_size));
  }
  if (num_items > UINT32_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("data set of ", num_items, " images exceeds 2^32"));
  }
  ImageSampler s(num_items, options);
  if (num_items < s.items_per_step()) {
    return absl::InvalidArgumentError(
        absl::StrCat("data set too small: ", num_items, " images but one step needs ",
                     s.items_per_step(), " (batch_size x world_size)"));
  }
  s.BuildPermutation();
  return s;
}

void ImageSampler::BuildPermutation() {
  if (!options_.shuffle) {
    perm_.clear();
    return;
  }
  perm_.resize(num_items_);
  std::iota(perm_.begin(), perm_.end(), 0u);
  // Fisher-Yates with a counter-based generator keyed by (seed, epoch).
  const uint64_t key = SplitMix64(options_.seed ^ SplitMix64(epoch_ + 0x1f83d9abfb41bd6bULL));
  for (uint64_t i = num_items_ - 1; i > 0; --i) {
    const uint64_t j = SplitMix64(key + i) % (i + 1);
    std::swap(perm_[i], perm_[j]);
  }
}

void ImageSampler::Next(ImageDraw* draws, uint64_t* global_batch) {
  if (cursor_ + items_per_step() > num_items_) {
    ++epoch_;
    cursor_ = 0;
    BuildPermutation();
  }
  if (global_batch != nullptr) {
    *global_batch = epoch_ * steps_per_epoch() + cursor_ / items_per_step();
  }
  const uint64_t flip_key = SplitMix64(options_.seed ^ SplitMix64(epoch_ ^ 0x5be0cd19137e2179ULL));
  const uint64_t first = cursor_ + static_cast<uint64_t>(options_.rank) * options_.batch_size;
  for (int b = 0; b < options_.batch_size; ++b) {
    const uint64_t pos = first + b;
    const uint64_t item = perm_.empty() ? pos : perm_[pos];
    draws[b].item = item;
    draws[b].flip = options_.hflip && (SplitMix64(flip_key + item) >> 63) != 0;
  }
  cursor_ += items_per_step();
}

absl::Status ImageSampler::Restore(const ImageSamplerState& st) {
  if (st.cursor > num_items_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sampler state cursor ", st.cursor, " beyond the data set's ", num_items_, " images"));
  }
  epoch_ = st.epoch;
  cursor_ = st.cursor;
  BuildPermutation();
  return absl::OkStatus();
}

void ImageSampler::Reset() {
  epoch_ = 0;
  cursor_ = 0;
  BuildPermutation();
}

}  // namespace anvil
