#include "tests/diffusion/tiny_denoiser.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "models/init_rng.h"

namespace anvil::testing {

TinyDenoiser::TinyDenoiser(const TinyDenoiserConfig& c) : c_(c) {
  const int64_t C = c.channels;
  layout_.BeginUnit("input");
  layout_.Add("scale", {C}, false);
  layout_.Add("pixel", {c.height, c.width, C}, false);
  layout_.BeginUnit("time");
  layout_.Add("time", {kTimeBuckets, C}, false);
  layout_.BeginUnit("label");
  layout_.Add("label", {c.num_classes + 1, C}, false);
  const size_t n = static_cast<size_t>(c.max_batch * image_numel());
  x_.resize(n);
  target_.resize(n);
  pred_.resize(n);
  t_.resize(c.max_batch);
  y_.resize(c.max_batch);
}

void TinyDenoiser::InitParams(float* host, uint64_t seed) const {
  for (size_t i = 0; i < layout_.params().size(); ++i) {
    const ParamInfo& p = layout_.params()[i];
    NormalInit(host + p.offset, p.numel, 0.1f, seed, i);
  }
}

absl::Status TinyDenoiser::SetDiffusionBatch(const DiffusionBatch& b) {
  if (b.batch < 1 || b.batch > c_.max_batch) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch of ", b.batch, " images, the model holds ", c_.max_batch));
  }
  const int64_t n = b.batch * image_numel();
  for (int i = 0; i < b.batch; ++i) {
    if (b.timesteps[i] < 0 || b.timesteps[i] >= kTimeBuckets * kTimePerBucket) {
      return absl::InvalidArgumentError(absl::StrCat("timestep ", b.timesteps[i], " out of range"));
    }
    if (b.labels[i] < 0 || b.labels[i] > c_.num_classes) {
      return absl::InvalidArgumentError(absl::StrCat("label ", b.labels[i], " out of range"));
    }
  }
  batch_ = b.batch;
  std::copy(b.x_t, b.x_t + n, x_.begin());
  std::copy(b.timesteps, b.timesteps + b.batch, t_.begin());
  std::copy(b.labels, b.labels + b.batch, y_.begin());
  has_target_ = b.target != nullptr;
  if (has_target_) std::copy(b.target, b.target + n, target_.begin());
  return absl::OkStatus();
}

void TinyDenoiser::Forward(int unit, ParamPtrs params) {
  const int64_t HW = static_cast<int64_t>(c_.height) * c_.width, C = c_.channels;
  const float* p = static_cast<const float*>(params[unit]);
  for (int b = 0; b < batch_; ++b) {
    float* out = pred_.data() + b * HW * C;
    const float* x = x_.data() + b * HW * C;
    for (int64_t i = 0; i < HW; ++i) {
      for (int64_t c = 0; c < C; ++c) {
        const int64_t e = i * C + c;
        if (unit == 0) out[e] = p[c] * x[e] + p[C + e];
        if (unit == 1) out[e] += p[(t_[b] / kTimePerBucket) * C + c];
        if (unit == 2) out[e] += p[y_[b] * C + c];
      }
    }
  }
  if (unit == 2) {
    double sum = 0;
    if (has_target_) {
      for (int64_t e = 0; e < batch_ * HW * C; ++e) {
        const double d = static_cast<double>(pred_[e]) - target_[e];
        sum += d * d;
      }
    }
    loss_ = sum / static_cast<double>(batch_ * HW * C);
  }
}

void TinyDenoiser::Backward(int unit, ParamPtrs, GradPtrs grads, float loss_scale) {
  const int64_t HW = static_cast<int64_t>(c_.height) * c_.width, C = c_.channels;
  const float k = 2.0f * loss_scale / static_cast<float>(batch_ * HW * C);
  float* g = grads[unit];
  for (int b = 0; b < batch_; ++b) {
    const int64_t base = b * HW * C;
    for (int64_t i = 0; i < HW; ++i) {
      for (int64_t c = 0; c < C; ++c) {
        const int64_t e = i * C + c;
        const float d = k * (pred_[base + e] - target_[base + e]);
        if (unit == 0) {
          g[c] += d * x_[base + e];
          g[C + e] += d;
        }
        if (unit == 1) g[(t_[b] / kTimePerBucket) * C + c] += d;
        if (unit == 2) g[y_[b] * C + c] += d;
      }
    }
  }
}

void TinyDenoiser::CopyPrediction(float* host) const {
  std::copy(pred_.begin(), pred_.begin() + batch_ * image_numel(), host);
}

ModelSpec TinyDenoiserSpec(const std::string& kind, int height, int width, int channels,
                           int num_classes) {
  ModelSpec s;
  s.kind = kind;
  s.data = DataKind::kDiffusion;
  s.validate = [](const proto::TrainConfig&) { return absl::OkStatus(); };
  s.describe = [kind](const proto::ModelConfig&) { return std::string("tiny denoiser ") + kind; };
  const double params =
      channels * (1.0 + height * width + TinyDenoiser::kTimeBuckets + num_classes + 1);
  s.param_count = [params](const proto::ModelConfig&) { return params; };
  s.activation_bytes = [=](const proto::TrainConfig& c) {
    return 4.0 * 3 * c.data().batch_size() * height * width * channels;
  };
  s.create = [=](const proto::ModelConfig&, const ModelBuildOptions& o,
                 kernels::Device* device) -> absl::StatusOr<std::unique_ptr<UnitModel>> {
    if (o.compute_dtype != DType::kF32 || device->kind() != kernels::DeviceKind::kCpu) {
      return absl::InvalidArgumentError("the tiny denoiser runs in fp32 on the CPU only");
    }
    return std::unique_ptr<UnitModel>(std::make_unique<TinyDenoiser>(
        TinyDenoiserConfig{height, width, channels, num_classes, o.max_batch}));
  };
  return s;
}

}  // namespace anvil::testing
