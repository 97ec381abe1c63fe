#include "runtime/diffusion/sampling.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "runtime/diffusion/counter_rng.h"

namespace anvil::diffusion {
namespace {

double Clip(double x, bool clip) { return clip ? std::clamp(x, -1.0, 1.0) : x; }

absl::Status CheckOptions(int T, const SampleShape& shape, const SamplingOptions& o) {
  if (shape.batch <= 0 || shape.height <= 0 || shape.width <= 0 || shape.channels <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("sample shape must be positive, got (",
                                                   shape.batch, ",", shape.height, ",", shape.width,
                                                   ",", shape.channels, ")"));
  }
  if (o.kind == SamplerKind::kDdim && (o.steps < 1 || o.steps > T)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--sample_steps must be in [1, ", T, "], got ", o.steps));
  }
  if (!(o.eta >= 0 && o.eta <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("--eta must be in [0, 1], got ", o.eta));
  }
  if (!std::isfinite(o.guidance)) {
    return absl::InvalidArgumentError("--guidance must be finite");
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<int> SamplingTimesteps(int timesteps, const SamplingOptions& o) {
  std::vector<int> ts;
  if (o.kind == SamplerKind::kDdpm) {
    for (int t = timesteps - 1; t >= 0; --t) ts.push_back(t);
    return ts;
  }
  const int ratio = timesteps / o.steps;
  for (int k = o.steps - 1; k >= 0; --k) ts.push_back(k * ratio);
  return ts;
}

void DdpmStep(const NoiseSchedule& sch, int t, Prediction prediction, bool clip_x0,
              const float* x_t, const float* model_out, const float* noise, int64_t n,
              float* x_prev) {
  const double abar = sch.alpha_bar(t), abar_prev = sch.alpha_bar_prev(t);
  const double a = std::sqrt(abar), s = std::sqrt(1.0 - abar);
  // Posterior q(x_{t-1} | x_t, x_0) mean coefficients and variance.
  const double c0 = std::sqrt(abar_prev) * sch.beta(t) / (1.0 - abar);
  const double ct = std::sqrt(sch.alpha(t)) * (1.0 - abar_prev) / (1.0 - abar);
  const double var = std::max((1.0 - abar_prev) / (1.0 - abar) * sch.beta(t), 1e-20);
  const double sigma = t > 0 ? std::sqrt(var) : 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double x0 = Clip(X0FromOutput(prediction, model_out[i], x_t[i], a, s), clip_x0);
    double x = c0 * x0 + ct * x_t[i];
    if (t > 0) x += sigma * noise[i];
    x_prev[i] = static_cast<float>(x);
  }
}

void DdimStep(const NoiseSchedule& sch, int t, int t_prev, double eta, Prediction prediction,
              bool clip_x0, const float* x_t, const float* model_out, const float* noise, int64_t n,
              float* x_prev) {
  const double abar = sch.alpha_bar(t);
  const double abar_prev = t_prev < 0 ? 1.0 : sch.alpha_bar(t_prev);
  const double a = std::sqrt(abar), s = std::sqrt(1.0 - abar);
  const double var = (1.0 - abar_prev) / (1.0 - abar) * (1.0 - abar / abar_prev);
  const double sigma = eta * std::sqrt(std::max(var, 0.0));
  const double dir = std::sqrt(std::max(1.0 - abar_prev - sigma * sigma, 0.0));
  const bool add_noise = sigma > 0;
  for (int64_t i = 0; i < n; ++i) {
    double x0 = X0FromOutput(prediction, model_out[i], x_t[i], a, s);
    double eps = EpsFromOutput(prediction, model_out[i], x_t[i], a, s);
    if (clip_x0) {
      const double c = std::clamp(x0, -1.0, 1.0);
      if (c != x0) eps = (x_t[i] - a * c) / s;
      x0 = c;
    }
    double x = std::sqrt(abar_prev) * x0 + dir * eps;
    if (add_noise) x += sigma * noise[i];
    x_prev[i] = static_cast<float>(x);
  }
}

void CombineGuidance(const float* cond, const float* uncond, double w, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    out[i] = static_cast<float>(uncond[i] + w * (static_cast<double>(cond[i]) - uncond[i]));
  }
}

absl::Status Sample(const NoiseSchedule& sch, const ModelFn& model, const SampleShape& shape,
                    const int32_t* labels, const SamplingOptions& o, float* out) {
  RETURN_IF_ERROR(CheckOptions(sch.timesteps(), shape, o));
  const int B = shape.batch;
  const int64_t per = shape.sample_numel(), n = shape.numel();
  std::vector<int32_t> cond_labels(B, o.null_class), null_labels(B, o.null_class);
  if (labels != nullptr) std::copy(labels, labels + B, cond_labels.begin());
  // Which model calls a step needs: conditional, unconditional, or both.
  const bool need_cond = labels != nullptr && o.guidance != 0.0;
  const bool need_uncond = labels == nullptr || o.guidance != 1.0;

  std::vector<float> x(n), x_next(n), out_c(n), out_u(n), noise(n);
  for (int b = 0; b < B; ++b) {
    CounterNormal(CounterKey(o.seed, RngStream::kSampleInit, o.first_sample + b),
                  x.data() + b * per, per);
  }
  const std::vector<int> ts = SamplingTimesteps(sch.timesteps(), o);
  std::vector<int32_t> tvec(B);
  for (size_t k = 0; k < ts.size(); ++k) {
    const int t = ts[k];
    const int t_prev = k + 1 < ts.size() ? ts[k + 1] : -1;
    std::fill(tvec.begin(), tvec.end(), t);
    if (need_cond) RETURN_IF_ERROR(model(x.data(), tvec.data(), cond_labels.data(), out_c.data()));
    if (need_uncond) {
      RETURN_IF_ERROR(model(x.data(), tvec.data(), null_labels.data(), out_u.data()));
    }
    const float* guided = out_u.data();
    if (need_cond && need_uncond) {
      CombineGuidance(out_c.data(), out_u.data(), o.guidance, n, out_c.data());
      guided = out_c.data();
    } else if (need_cond) {
      guided = out_c.data();
    }
    const bool noisy = o.kind == SamplerKind::kDdpm ? t > 0 : (o.eta > 0 && t_prev >= 0);
    if (noisy) {
      for (int b = 0; b < B; ++b) {
        CounterNormal(CounterKey(o.seed, RngStream::kSampleStep, o.first_sample + b,
                                 static_cast<uint64_t>(t)),
                      noise.data() + b * per, per);
      }
    }
    if (o.kind == SamplerKind::kDdpm) {
      DdpmStep(sch, t, o.prediction, o.clip_x0, x.data(), guided, noise.data(), n, x_next.data());
    } else {
      DdimStep(sch, t, t_prev, o.eta, o.prediction, o.clip_x0, x.data(), guided, noise.data(), n,
               x_next.data());
    }
    x.swap(x_next);
  }
  std::copy(x.begin(), x.end(), out);
  return absl::OkStatus();
}

}  // namespace anvil::diffusion
