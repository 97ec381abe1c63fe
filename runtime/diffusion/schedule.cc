#include "runtime/diffusion/schedule.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace anvil::diffusion {

absl::StatusOr<ScheduleKind> ParseScheduleKind(const std::string& name) {
  if (name == "linear") return ScheduleKind::kLinear;
  if (name == "cosine") return ScheduleKind::kCosine;
  return absl::InvalidArgumentError(
      absl::StrCat("--schedule must be linear or cosine, got '", name, "'"));
}

absl::StatusOr<NoiseSchedule> NoiseSchedule::Create(const ScheduleOptions& o) {
  if (o.timesteps < 2 || o.timesteps > 100000) {
    return absl::InvalidArgumentError(
        absl::StrCat("--timesteps must be in [2, 100000], got ", o.timesteps));
  }
  NoiseSchedule s;
  const int T = o.timesteps;
  s.betas_.resize(T);
  if (o.kind == ScheduleKind::kLinear) {
    if (!(o.beta_start > 0 && o.beta_start <= o.beta_end && o.beta_end < 1)) {
      return absl::InvalidArgumentError(absl::StrCat("linear schedule needs 0 < beta_start (",
                                                     o.beta_start, ") <= beta_end (", o.beta_end,
                                                     ") < 1"));
    }
    for (int t = 0; t < T; ++t) {
      s.betas_[t] = o.beta_start + (o.beta_end - o.beta_start) * t / (T - 1);
    }
  } else {
    auto abar = [&](double t) {
      const double c = std::cos((t / T + o.cosine_s) / (1 + o.cosine_s) * M_PI / 2);
      return c * c;
    };
    for (int t = 0; t < T; ++t) {
      s.betas_[t] = std::min(1.0 - abar(t + 1) / abar(t), o.max_beta);
    }
  }
  s.alpha_bars_.resize(T);
  double prod = 1.0;
  for (int t = 0; t < T; ++t) {
    prod *= 1.0 - s.betas_[t];
    s.alpha_bars_[t] = prod;
  }
  return s;
}

}  // namespace anvil::diffusion
