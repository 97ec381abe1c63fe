#include "models/classifier/classifier_model.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace anvil {

absl::Status ClassifierModel::SetBatch(const Batch& batch) {
  ASSIGN_OR_RETURN(const BatchTensor x, batch.Get("images", DType::kF32, 4));
  const std::vector<int64_t> want = {x.shape[0], image_size(), image_size(), image_channels()};
  if (x.shape != want) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch tensor 'images' is [", x.shape[0], ",", x.shape[1], ",", x.shape[2],
                     ",", x.shape[3], "], the classifier takes ", image_size(), "x", image_size(),
                     "x", image_channels(), " images (check --image_pad and --image_size)"));
  }
  const int32_t* labels = nullptr;
  if (batch.Has("labels")) {
    ASSIGN_OR_RETURN(const BatchTensor y, batch.Get("labels", DType::kI32, 1));
    if (y.shape[0] != x.shape[0]) {
      return absl::InvalidArgumentError("batch tensors 'images' and 'labels' differ in B");
    }
    labels = static_cast<const int32_t*>(y.data);
  }
  return SetImages(static_cast<const float*>(x.data), labels, static_cast<int>(x.shape[0]));
}

SampleWork ClassifierModel::work_per_sample() const {
  SampleWork w;
  w.unit = "images";
  w.items = 1;
  w.train_flops = FlopsPerImage();
  return w;
}

}  // namespace anvil
