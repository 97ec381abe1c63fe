// TokenSource: the DataSource of language models — llm.c token shards cut
// into (B,T) windows by a BatchSampler (deterministic, rank-disjoint,
// resumable). Yields "tokens" and "targets", (B,T) I32.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/data/data_source.h"
#include "runtime/data/sampler.h"
#include "runtime/data/token_shard.h"

namespace anvil {

class TokenSource : public DataSource {
 public:
  // Opens the shards matching `pattern` (ids checked against vocab_size).
  static absl::StatusOr<std::unique_ptr<TokenSource>> Open(const std::string& pattern,
                                                           int vocab_size,
                                                           const SamplerOptions& options);

  absl::Status Next(Batch* batch) override;
  void Reset() override { sampler_->Reset(); }
  uint64_t batches_per_epoch() const override {
    return sampler_->num_windows() / sampler_->windows_per_step();
  }
  void SaveState(proto::TrainingState* state) const override;
  absl::Status RestoreState(const proto::TrainingState& state) override;

 private:
  TokenSource() = default;
  std::vector<TokenShard> shards_;
  std::unique_ptr<BatchSampler> sampler_;
  SamplerOptions options_;
  std::vector<int32_t> inputs_, targets_;
};

}  // namespace anvil
