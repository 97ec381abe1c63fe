#include "runtime/diffusion/noiser.h"

#include <cmath>

#include "runtime/diffusion/counter_rng.h"

namespace anvil::diffusion {

void TrainingNoiser::Apply(const NoiserBatch& b) const {
  const uint64_t seed = options_.seed;
  const uint64_t t_key = CounterKey(seed, RngStream::kTrainTimestep, b.step);
  const uint64_t drop_key = CounterKey(seed, RngStream::kLabelDrop, b.step);
  const uint64_t dropout_key = CounterKey(seed, RngStream::kDropout, b.step);
  const int null_class = options_.num_classes;
  eps_.resize(static_cast<size_t>(b.sample_numel));
  for (int i = 0; i < b.batch; ++i) {
    const uint64_t g = b.first_index + static_cast<uint64_t>(i);
    const int t =
        static_cast<int>(CounterBelow(t_key, g, static_cast<uint32_t>(schedule_->timesteps())));
    b.timesteps[i] = t;
    const bool conditional = options_.num_classes > 0 && b.labels != nullptr;
    const bool drop = CounterUniform(drop_key, g) <= options_.label_dropout;
    b.labels_out[i] = conditional && !drop ? b.labels[i] : null_class;
    if (b.dropout_seeds != nullptr) {
      b.dropout_seeds[i] = static_cast<int32_t>(static_cast<uint32_t>(CounterBits(dropout_key, g)));
    }

    CounterNormal(CounterKey(seed, RngStream::kTrainNoise, b.step, g), eps_.data(), eps_.size());
    const double a = std::sqrt(schedule_->alpha_bar(t));
    const double s = std::sqrt(1.0 - schedule_->alpha_bar(t));
    const float af = static_cast<float>(a), sf = static_cast<float>(s);
    const size_t off = static_cast<size_t>(i) * b.sample_numel;
    const float* x0 = b.x0 + off;
    float* xt = b.x_t + off;
    float* tgt = b.target + off;
    for (int64_t j = 0; j < b.sample_numel; ++j) {
      xt[j] = af * x0[j] + sf * eps_[j];
      tgt[j] = options_.prediction == Prediction::kEps ? eps_[j] : af * eps_[j] - sf * x0[j];
    }
  }
}

}  // namespace anvil::diffusion
