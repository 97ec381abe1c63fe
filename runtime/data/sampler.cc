#include "runtime/data/sampler.h"

#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "models/init_rng.h"

namespace anvil {

absl::StatusOr<BatchSampler> BatchSampler::Create(const std::vector<TokenShard>* shards,
                                                  const SamplerOptions& options) {
  if (options.batch_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--batch_size must be > 0, got ", options.batch_size));
  }
  if (options.seq_len <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("--seq_len must be > 0, got ", options.seq_len));
  }
  if (options.world_size <= 0 || options.rank < 0 || options.rank >= options.world_size) {
    return absl::InvalidArgumentError(absl::StrCat("rank ", options.rank,
                                                   " outside world size ", options.world_size));
  }
  BatchSampler s(shards, options);
  const uint64_t T = static_cast<uint64_t>(options.seq_len);
  for (uint32_t i = 0; i < shards->size(); ++i) {
    const uint64_t n = (*shards)[i].size();
    for (uint64_t off = 0; off + T + 1 <= n; off += T) s.windows_.push_back({i, off});
  }
  if (s.windows_.size() < s.windows_per_step()) {
    std::string names;
    for (const TokenShard& sh : *shards) names += (names.empty() ? "" : ", ") + sh.path();
    return absl::InvalidArgumentError(absl::StrCat(
        "data set too small: ", names, " holds ", s.windows_.size(), " windows of ", T + 1,
        " tokens but one step needs ", s.windows_per_step(), " (batch_size x world_size)"));
  }
  s.BuildPermutation();
  return s;
}

void BatchSampler::BuildPermutation() {
  if (!options_.shuffle) {
    perm_.clear();
    return;
  }
  perm_.resize(windows_.size());
  std::iota(perm_.begin(), perm_.end(), 0u);
  // Fisher-Yates with a counter-based generator keyed by (seed, epoch).
  const uint64_t key = SplitMix64(options_.seed ^ SplitMix64(epoch_ + 0x632be59bd9b4e019ULL));
  for (uint64_t i = perm_.size() - 1; i > 0; --i) {
    const uint64_t r = SplitMix64(key + i);
    const uint64_t j = r % (i + 1);
    std::swap(perm_[i], perm_[j]);
  }
}

const BatchSampler::Window& BatchSampler::WindowAt(uint64_t index) const {
  return windows_[perm_.empty() ? index : perm_[index]];
}

void BatchSampler::Next(int32_t* inputs, int32_t* targets) {
  if (cursor_ + windows_per_step() > windows_.size()) {
    ++epoch_;
    cursor_ = 0;
    BuildPermutation();
  }
  const int T = options_.seq_len;
  const uint64_t first = cursor_ + static_cast<uint64_t>(options_.rank) * options_.batch_size;
  std::vector<int32_t>& buf = window_buf_;
  buf.resize(static_cast<size_t>(T) + 1);
  for (int b = 0; b < options_.batch_size; ++b) {
    const Window& w = WindowAt(first + b);
    (*shards_)[w.shard].Read(w.offset, buf.size(), buf.data());
    std::copy(buf.begin(), buf.end() - 1, inputs + static_cast<size_t>(b) * T);
    std::copy(buf.begin() + 1, buf.end(), targets + static_cast<size_t>(b) * T);
  }
  cursor_ += windows_per_step();
}

SamplerState BatchSampler::state() const {
  SamplerState st;
  st.seed = options_.seed;
  st.epoch = epoch_;
  st.cursor = cursor_;
  if (cursor_ < windows_.size()) {
    const Window& w = WindowAt(cursor_);
    st.shard = w.shard;
    st.position = w.offset;
  }
  return st;
}

absl::Status BatchSampler::Restore(const SamplerState& st) {
  if (st.seed != options_.seed) {
    return absl::InvalidArgumentError(absl::StrCat("sampler state has seed ", st.seed,
                                                   " but the run uses seed ", options_.seed));
  }
  if (st.cursor > windows_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("sampler state cursor ", st.cursor,
                                                   " beyond the data set's ", windows_.size(),
                                                   " windows"));
  }
  epoch_ = st.epoch;
  cursor_ = st.cursor;
  BuildPermutation();
  return absl::OkStatus();
}

void BatchSampler::Reset() {
  epoch_ = 0;
  cursor_ = 0;
  BuildPermutation();
}

}  // namespace anvil
