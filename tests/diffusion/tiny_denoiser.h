// TinyDenoiser: a DiffusionModel with a handful of parameters, for testing
// what surrounds a denoiser (EMA, sharding, checkpoints, the sample tool)
// without the UNet or the DiT.
//
// Per element (b, h, w, c) of an H x W x C image:
//   pred = scale[c] * x_t + pixel[h, w, c] + time[t / 64, c] + label[y, c]
// with 16 time buckets (timesteps up to 1023) and num_classes + 1 label rows
// (the last is the null class). Three units, so sharding splits it:
//   0 "input": scale, pixel   1 "time": time   2 "label": label
// Loss: mean over B*H*W*C of (pred - target)^2. fp32 on a host-memory (CPU)
// device; computation is on the host and deterministic.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "models/diffusion_model.h"
#include "models/model_spec.h"

namespace anvil::testing {

struct TinyDenoiserConfig {
  int height = 4, width = 4, channels = 1;
  int num_classes = 10;
  int max_batch = 8;
};

class TinyDenoiser : public DiffusionModel {
 public:
  static constexpr int kTimeBuckets = 16;
  static constexpr int kTimePerBucket = 64;

  explicit TinyDenoiser(const TinyDenoiserConfig& c);
  const ParamLayout& layout() const override { return layout_; }
  std::vector<int> UnitDeps(int) const override { return {}; }
  void InitParams(float* host, uint64_t seed) const override;
  DType compute_dtype() const override { return DType::kF32; }
  void Forward(int unit, ParamPtrs params) override;
  void Backward(int unit, ParamPtrs params, GradPtrs grads, float loss_scale) override;
  double Loss() override { return loss_; }
  absl::Status SetDiffusionBatch(const DiffusionBatch& b) override;
  void CopyPrediction(float* host) const override;
  double FlopsPerImage() const override { return 12.0 * image_numel(); }
  int image_height() const override { return c_.height; }
  int image_width() const override { return c_.width; }
  int image_channels() const override { return c_.channels; }
  int num_classes() const override { return c_.num_classes; }

 private:
  int64_t image_numel() const { return static_cast<int64_t>(c_.height) * c_.width * c_.channels; }

  TinyDenoiserConfig c_;
  ParamLayout layout_;
  int batch_ = 0;
  bool has_target_ = false;
  std::vector<float> x_, target_, pred_;
  std::vector<int32_t> t_, y_;
  double loss_ = 0;
};

// A spec for the registry: kind `kind`, diffusion data, images of the given
// shape (the default data, Fashion-MNIST, is 28 x 28 x 1).
ModelSpec TinyDenoiserSpec(const std::string& kind, int height, int width, int channels,
                           int num_classes);

}  // namespace anvil::testing
