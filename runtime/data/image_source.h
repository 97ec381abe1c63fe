// ImageSource: the DataSource of image models, over an in-memory
// ImageDataset cut into batches by an ImageSampler (deterministic,
// rank-disjoint, resumable; optional horizontal flips).
//
// Plain mode (DataKind::kImages) yields "images" (B,H,W,C) F32 in [-1, 1]
// and "labels" (B) I32. Diffusion mode (DataKind::kDiffusion) passes the
// same images through a TrainingNoiser and yields "x_t" and "target"
// (B,H,W,C) F32, "timesteps" and "labels" (B) I32; its randomness is keyed
// on (noise_seed, global batch, position in the global batch), so the
// sampler's (epoch, cursor) remains the source's whole state.
// Padding (pad > 0) centres each image in a pad x pad canvas of -1.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "runtime/data/data_source.h"
#include "runtime/data/image_dataset.h"
#include "runtime/data/image_sampler.h"
#include "runtime/diffusion/noiser.h"
#include "runtime/diffusion/schedule.h"

namespace anvil {

struct ImageSourceOptions {
  ImageSamplerOptions sampler;
  int pad = 0;  // 0: images keep their size
  // Diffusion mode when set (noiser.seed is the noise seed).
  std::optional<diffusion::ScheduleOptions> schedule;
  diffusion::NoiserOptions noiser;
};

class ImageSource : public DataSource {
 public:
  static absl::StatusOr<std::unique_ptr<ImageSource>> Create(ImageDataset data,
                                                             const ImageSourceOptions& options);

  absl::Status Next(Batch* batch) override;
  void Reset() override { sampler_->Reset(); }
  uint64_t batches_per_epoch() const override { return sampler_->steps_per_epoch(); }
  void SaveState(proto::TrainingState* state) const override;
  absl::Status RestoreState(const proto::TrainingState& state) override;

  int height() const { return out_h_; }
  int width() const { return out_w_; }
  int channels() const { return data_.channels; }
  const ImageDataset& data() const { return data_; }

 private:
  ImageSource() = default;
  void CutImage(const ImageDraw& draw, float* dst) const;

  ImageDataset data_;
  ImageSourceOptions options_;
  std::unique_ptr<ImageSampler> sampler_;
  std::unique_ptr<diffusion::NoiseSchedule> schedule_;
  std::unique_ptr<diffusion::TrainingNoiser> noiser_;
  int out_h_ = 0, out_w_ = 0;
  std::vector<ImageDraw> draws_;
  std::vector<float> images_, x_t_, target_;
  std::vector<int32_t> labels_, timesteps_, labels_out_, dropout_seeds_;
};

}  // namespace anvil
