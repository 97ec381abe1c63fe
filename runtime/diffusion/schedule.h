// NoiseSchedule: the forward process q(x_t | x_0) of a DDPM, as tables over
// t = 0..T-1 (t = 0 is the first, least noisy step).
//
//   beta_t       linear: T values evenly spaced from beta_start to beta_end
//                (DDPM, Ho et al. 2020: 1e-4 .. 0.02, T = 1000);
//                cosine: 1 - abar(t+1)/abar(t) clipped at max_beta, with
//                abar(t) = cos^2(((t/T + s)/(1 + s)) pi/2), s = 0.008
//                (Nichol & Dhariwal 2021; diffusers' "squaredcos_cap_v2").
//   alpha_t      1 - beta_t
//   abar_t       prod_{i<=t} alpha_i, computed in double, strictly decreasing.
//
// The tables are double; the training noiser and samplers read them as
// double and round once to float per element.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace anvil::diffusion {

enum class ScheduleKind { kLinear, kCosine };

struct ScheduleOptions {
  ScheduleKind kind = ScheduleKind::kLinear;
  int timesteps = 1000;      // T
  double beta_start = 1e-4;  // linear only
  double beta_end = 0.02;    // linear only
  double cosine_s = 0.008;   // cosine only
  double max_beta = 0.999;   // cosine only
};

// "linear" | "cosine"; the error names the flag --schedule.
absl::StatusOr<ScheduleKind> ParseScheduleKind(const std::string& name);

class NoiseSchedule {
 public:
  static absl::StatusOr<NoiseSchedule> Create(const ScheduleOptions& options);

  int timesteps() const { return static_cast<int>(betas_.size()); }
  double beta(int t) const { return betas_[t]; }
  double alpha(int t) const { return 1.0 - betas_[t]; }
  double alpha_bar(int t) const { return alpha_bars_[t]; }
  // abar of the step before t; 1 for t < 0 (the clean image).
  double alpha_bar_prev(int t) const { return t <= 0 ? 1.0 : alpha_bars_[t - 1]; }
  const std::vector<double>& betas() const { return betas_; }
  const std::vector<double>& alpha_bars() const { return alpha_bars_; }

 private:
  std::vector<double> betas_;
  std::vector<double> alpha_bars_;
};

}  // namespace anvil::diffusion
