// ClassifierEvaluator: a trained classifier checkpoint run over a set of
// images, giving the penultimate-layer features and the logits that the
// quality metric (frechet.h) reads.
//
// Load takes a checkpoint directory of a `train --model classifier` run
// (the newest committed step that verifies) or one step_<N> directory,
// rebuilds the model from the config saved in its manifest through the
// model registry (fp32 compute whatever the run used), and loads its fp32
// master weights ("params"; or another saved state such as "ema"). It
// refuses a checkpoint of a model that is not a ClassifierModel.
//
// Images are NHWC fp32 in [-1, 1], of any size with the classifier's
// channels: smaller ones are centred on a canvas of -1 as --image_pad does,
// larger ones centre-cropped, the exact inverse. So one classifier trained
// on 28x28 Fashion-MNIST serves denoisers trained with --image_pad 32 (their
// 32x32 samples lose the padding border), and one trained with --image_pad
// 32 takes 28x28 images.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/device.h"
#include "models/classifier/classifier_model.h"
#include "proto/config.pb.h"
#include "runtime/data/image_dataset.h"

namespace anvil::eval {

struct ClassifierOutputs {
  int64_t count = 0;
  int dim = 0;                  // D
  int classes = 0;              // K
  std::vector<float> features;  // (count, D)
  std::vector<float> logits;    // (count, K)
};

struct ClassifierEvalOptions {
  std::string state = "params";  // the checkpoint state to load
  int batch = 256;               // images per forward
};

class ClassifierEvaluator {
 public:
  static absl::StatusOr<std::unique_ptr<ClassifierEvaluator>> Load(
      const std::string& checkpoint, kernels::Device* device, ClassifierEvalOptions options = {});
  ~ClassifierEvaluator();

  // images (n,h,w,c) fp32 NHWC in [-1, 1]; c must be the classifier's.
  absl::StatusOr<ClassifierOutputs> Run(const float* images, int64_t n, int h, int w, int c);
  // Images [begin, begin + n) of a data set, scaled to [-1, 1].
  absl::StatusOr<ClassifierOutputs> Run(const ImageDataset& data, int64_t begin, int64_t n);

  int image_size() const { return model_->image_size(); }
  int image_channels() const { return model_->image_channels(); }
  int num_classes() const { return model_->num_classes(); }
  int feature_dim() const { return model_->feature_dim(); }
  // The step directory loaded and the run config saved with it.
  const std::string& checkpoint_path() const { return path_; }
  int64_t step() const { return step_; }
  const proto::TrainConfig& train_config() const { return config_; }

 private:
  ClassifierEvaluator() = default;

  kernels::Device* device_ = nullptr;
  ClassifierEvalOptions options_;
  std::unique_ptr<UnitModel> owner_;
  ClassifierModel* model_ = nullptr;
  float* params_ = nullptr;  // device, the flat fp32 buffer
  std::string path_;
  int64_t step_ = 0;
  proto::TrainConfig config_;
};

}  // namespace anvil::eval
