// DiffusionModel: the UnitModel of a denoiser (UNet, DiT).
//
// It is fed diffusion batches (runtime/data, DataKind::kDiffusion): "x_t"
// (B,H,W,C) F32 NHWC in the data's range, "timesteps" (B) I32 in [0, T),
// "labels" (B) I32 where the null class (= num_classes) means unconditional,
// and "target" (B,H,W,C) F32, the eps or v the model should predict, and
// optionally "dropout_seeds" (B) I32 keying a model's dropout masks (a
// training batch without them trains with no dropout). The loss
// is the MSE between the prediction and the target. The model knows nothing
// of noise schedules or samplers (runtime/diffusion owns them): for sampling,
// a batch without "target" runs the forward only, and CopyPrediction reads
// what the model predicted.
#pragma once

#include <cstdint>

#include "models/unit_model.h"

namespace anvil {

struct DiffusionBatch {
  const float* x_t = nullptr;        // (B,H,W,C)
  const int32_t* timesteps = nullptr;  // (B)
  const int32_t* labels = nullptr;     // (B)
  const float* target = nullptr;     // (B,H,W,C), or null: forward only (sampling)
  int batch = 0;
  const int32_t* dropout_seeds = nullptr;  // (B) with target: dropout masks; null: no dropout
};

class DiffusionModel : public UnitModel {
 public:
  // Reads "x_t", "timesteps", "labels" and (optionally) "target".
  absl::Status SetBatch(const Batch& batch) final;
  // Throughput in images; FLOPs per image.
  SampleWork work_per_sample() const final;

  // Fails for a batch beyond the arena, timesteps outside [0, T) or labels
  // outside [0, num_classes] (num_classes itself is the null class).
  virtual absl::Status SetDiffusionBatch(const DiffusionBatch& b) = 0;
  // The prediction (B,H,W,C) of the last forward, as fp32, into host memory.
  virtual void CopyPrediction(float* host) const = 0;
  // Training FLOPs (forward + backward) per image.
  virtual double FlopsPerImage() const = 0;
  // The image shape the model takes (H, W, C).
  virtual int image_height() const = 0;
  virtual int image_width() const = 0;
  virtual int image_channels() const = 0;
  // Conditioning classes K (the null class is K); 0: unconditional.
  virtual int num_classes() const = 0;
};

}  // namespace anvil
