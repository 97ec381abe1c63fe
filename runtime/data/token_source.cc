#include "runtime/data/token_source.h"

#include "common/status_macros.h"

namespace anvil {

absl::StatusOr<std::unique_ptr<TokenSource>> TokenSource::Open(const std::string& pattern,
                                                               int vocab_size,
                                                               const SamplerOptions& options) {
  std::unique_ptr<TokenSource> s(new TokenSource);
  ASSIGN_OR_RETURN(s->shards_, OpenShards(pattern, vocab_size));
  ASSIGN_OR_RETURN(BatchSampler sampler, BatchSampler::Create(&s->shards_, options));
  s->sampler_ = std::make_unique<BatchSampler>(std::move(sampler));
  s->options_ = options;
  const size_t n = static_cast<size_t>(options.batch_size) * options.seq_len;
  s->inputs_.resize(n);
  s->targets_.resize(n);
  return s;
}

absl::Status TokenSource::Next(Batch* batch) {
  sampler_->Next(inputs_.data(), targets_.data());
  const std::vector<int64_t> shape = {options_.batch_size, options_.seq_len};
  batch->Clear();
  batch->Set("tokens", {DType::kI32, shape, inputs_.data()});
  batch->Set("targets", {DType::kI32, shape, targets_.data()});
  return absl::OkStatus();
}

void TokenSource::SaveState(proto::TrainingState* state) const {
  const SamplerState ss = sampler_->state();
  auto* sp = state->mutable_train_sampler();
  sp->set_seed(ss.seed);
  sp->set_epoch(ss.epoch);
  sp->set_cursor(ss.cursor);
  sp->set_shard(ss.shard);
  sp->set_position(ss.position);
}

absl::Status TokenSource::RestoreState(const proto::TrainingState& state) {
  SamplerState ss;
  ss.seed = options_.seed;  // a changed --seed is reported by the resume check and takes effect
  ss.epoch = state.train_sampler().epoch();
  ss.cursor = state.train_sampler().cursor();
  ss.shard = state.train_sampler().shard();
  ss.position = state.train_sampler().position();
  return sampler_->Restore(ss);
}

}  // namespace anvil
