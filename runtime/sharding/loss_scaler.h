// Dynamic loss scaling for fp16 (GradScaler's rule): start at 65536; after
// `growth_interval` consecutive clean steps multiply by `growth`; on a step
// whose gradients hold inf/NaN on any rank, skip it and multiply by `backoff`.
// The found-inf flag must be agreed across ranks before Update() is called,
// so every rank skips the same steps and keeps the same scale.
#pragma once

#include <cstdint>

namespace anvil {

struct LossScalerOptions {
  float initial_scale = 65536.0f;
  float growth = 2.0f;
  float backoff = 0.5f;
  int growth_interval = 2000;
};

class LossScaler {
 public:
  explicit LossScaler(const LossScalerOptions& o = {}) : options_(o), scale_(o.initial_scale) {}
  float scale() const { return scale_; }
  int clean_steps() const { return clean_steps_; }
  void Update(bool found_inf) {
    if (found_inf) {
      scale_ *= options_.backoff;
      clean_steps_ = 0;
      return;
    }
    if (++clean_steps_ >= options_.growth_interval) {
      scale_ *= options_.growth;
      clean_steps_ = 0;
    }
  }
  void Restore(float scale, int clean_steps) {
    scale_ = scale;
    clean_steps_ = clean_steps;
  }

 private:
  LossScalerOptions options_;
  float scale_;
  int clean_steps_ = 0;
};

}  // namespace anvil
