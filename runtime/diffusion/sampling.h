// Reverse-process samplers: DDPM ancestral (Ho et al. 2020) and DDIM (Song
// et al. 2021), with classifier-free guidance (Ho & Salimans 2022):
// out = out_u + w (out_c - out_u), computed on the raw model outputs (for
// eps- and v-prediction alike, see prediction.h).
//
// The model is a callback, so the samplers know no model:
//   model(x_t (B,H,W,C), t (B), labels (B), out (B,H,W,C))
// The initial x_T and every step's noise are counter-based functions of
// (seed, t, sample index) with sample index = first_sample + row, so a draw
// is reproducible from the seed, does not depend on how a grid is split into
// batches, and DDPM and DDIM with all T steps use the same noise at the same
// t — with eta = 1 the two agree within rounding (the test checks it).
//
// The step functions follow diffusers' DDPMScheduler ("fixed_small"
// variance) and DDIMScheduler (set_alpha_to_one, "leading" timestep
// spacing); with clip_x0 DDIM re-derives eps from the clipped x_0
// (diffusers' use_clipped_model_output), which keeps DDIM(eta=1) = DDPM.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "runtime/diffusion/prediction.h"
#include "runtime/diffusion/schedule.h"

namespace anvil::diffusion {

using ModelFn = std::function<absl::Status(const float* x_t, const int32_t* t,
                                           const int32_t* labels, float* out)>;

enum class SamplerKind { kDdpm, kDdim };

struct SampleShape {
  int batch = 1, height = 1, width = 1, channels = 1;
  int64_t sample_numel() const { return static_cast<int64_t>(height) * width * channels; }
  int64_t numel() const { return sample_numel() * batch; }
};

struct SamplingOptions {
  SamplerKind kind = SamplerKind::kDdim;
  int steps = 50;         // DDIM: number of steps in [1, T]; DDPM always takes T
  double eta = 0.0;       // DDIM noise scale in [0, 1]; 1 is DDPM's variance
  double guidance = 1.0;  // w: 1 conditional only, 0 unconditional only
  Prediction prediction = Prediction::kEps;
  bool clip_x0 = true;  // clamp the predicted x_0 to [-1, 1] at each step
  uint64_t seed = 0;
  uint64_t first_sample = 0;  // sample index of row 0
  int null_class = 0;         // label of the unconditional branch (= num_classes)
};

// The timesteps visited, descending. DDPM: T-1..0. DDIM: k * (T / steps)
// for k = steps-1..0.
std::vector<int> SamplingTimesteps(int timesteps, const SamplingOptions& options);

// Draws B images. labels (B) or null (unconditional: every row gets
// null_class and guidance is not applied). out (B,H,W,C).
absl::Status Sample(const NoiseSchedule& schedule, const ModelFn& model, const SampleShape& shape,
                    const int32_t* labels, const SamplingOptions& options, float* out);

// One DDPM step from x_t to x_{t-1}; `noise` is unused at t = 0.
void DdpmStep(const NoiseSchedule& schedule, int t, Prediction prediction, bool clip_x0,
              const float* x_t, const float* model_out, const float* noise, int64_t n,
              float* x_prev);

// One DDIM step from x_t to x_{t_prev} (t_prev < 0: to x_0); `noise` is
// unused when eta = 0 or t_prev < 0 (may be null then).
void DdimStep(const NoiseSchedule& schedule, int t, int t_prev, double eta, Prediction prediction,
              bool clip_x0, const float* x_t, const float* model_out, const float* noise, int64_t n,
              float* x_prev);

// out = uncond + w (cond - uncond); out may alias either input.
void CombineGuidance(const float* cond, const float* uncond, double w, int64_t n, float* out);

}  // namespace anvil::diffusion
