#include "models/diffusion_model.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace anvil {

absl::Status DiffusionModel::SetBatch(const Batch& batch) {
  ASSIGN_OR_RETURN(const BatchTensor x, batch.Get("x_t", DType::kF32, 4));
  ASSIGN_OR_RETURN(const BatchTensor t, batch.Get("timesteps", DType::kI32, 1));
  ASSIGN_OR_RETURN(const BatchTensor y, batch.Get("labels", DType::kI32, 1));
  const std::vector<int64_t> want = {x.shape[0], image_height(), image_width(), image_channels()};
  if (x.shape != want) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch tensor 'x_t' is [", x.shape[0], ",", x.shape[1], ",", x.shape[2], ",", x.shape[3],
        "], the model takes ", image_height(), "x", image_width(), "x", image_channels(),
        " images (check --image_pad and the model's image size)"));
  }
  if (t.shape[0] != x.shape[0] || y.shape[0] != x.shape[0]) {
    return absl::InvalidArgumentError("batch tensors 'x_t', 'timesteps', 'labels' differ in B");
  }
  DiffusionBatch b;
  b.x_t = static_cast<const float*>(x.data);
  b.timesteps = static_cast<const int32_t*>(t.data);
  b.labels = static_cast<const int32_t*>(y.data);
  b.batch = static_cast<int>(x.shape[0]);
  if (batch.Has("target")) {
    ASSIGN_OR_RETURN(const BatchTensor target, batch.Get("target", DType::kF32, 4));
    if (target.shape != x.shape) {
      return absl::InvalidArgumentError("batch tensors 'x_t' and 'target' differ in shape");
    }
    b.target = static_cast<const float*>(target.data);
    if (batch.Has("dropout_seeds")) {
      ASSIGN_OR_RETURN(const BatchTensor s, batch.Get("dropout_seeds", DType::kI32, 1));
      if (s.shape[0] != x.shape[0]) {
        return absl::InvalidArgumentError("batch tensors 'x_t' and 'dropout_seeds' differ in B");
      }
      b.dropout_seeds = static_cast<const int32_t*>(s.data);
    }
  }
  return SetDiffusionBatch(b);
}

SampleWork DiffusionModel::work_per_sample() const {
  SampleWork w;
  w.unit = "images";
  w.items = 1;
  w.train_flops = FlopsPerImage();
  return w;
}

}  // namespace anvil
