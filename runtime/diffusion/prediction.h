// Prediction: what the model's output means, and how to read x_0 and eps out
// of it. With a = sqrt(abar_t), s = sqrt(1 - abar_t) and
// x_t = a x_0 + s eps (so a^2 + s^2 = 1):
//   eps-prediction  out = eps
//   v-prediction    out = v = a eps - s x_0  (Salimans & Ho 2022)
//                   then eps = a v + s x_t and x_0 = a x_t - s v.
// Both conversions are affine in the output for a fixed x_t, so classifier-
// free guidance may combine raw outputs of either kind.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace anvil::diffusion {

enum class Prediction { kEps, kV };

inline absl::StatusOr<Prediction> ParsePrediction(const std::string& name) {
  if (name == "eps") return Prediction::kEps;
  if (name == "v") return Prediction::kV;
  return absl::InvalidArgumentError(
      absl::StrCat("--prediction must be eps or v, got '", name, "'"));
}

// eps implied by the model output at one element.
inline double EpsFromOutput(Prediction p, double out, double x_t, double a, double s) {
  return p == Prediction::kEps ? out : a * out + s * x_t;
}

// x_0 implied by the model output at one element.
inline double X0FromOutput(Prediction p, double out, double x_t, double a, double s) {
  return p == Prediction::kEps ? (x_t - s * out) / a : a * x_t - s * out;
}

}  // namespace anvil::diffusion
