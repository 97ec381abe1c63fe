// Learning-rate schedule: linear warmup, then cosine decay to lr * min_ratio.
// Steps are 0-based; step `warmup` is the first at full lr.
#pragma once

#include <algorithm>
#include <cmath>

namespace anvil {

struct LrSchedule {
  float lr = 3e-4f;
  int warmup_steps = 0;
  int total_steps = 1;
  float min_lr_ratio = 0.1f;

  float At(int step) const {
    if (step < warmup_steps) return lr * static_cast<float>(step + 1) / static_cast<float>(warmup_steps);
    const int decay_steps = std::max(1, total_steps - warmup_steps);
    const float progress =
        std::min(1.0f, static_cast<float>(step - warmup_steps) / static_cast<float>(decay_steps));
    const float cosine = 0.5f * (1.0f + std::cos(static_cast<float>(M_PI) * progress));
    const float min_lr = lr * min_lr_ratio;
    return min_lr + (lr - min_lr) * cosine;
  }
};

}  // namespace anvil
