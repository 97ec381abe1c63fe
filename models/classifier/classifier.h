// Classifier: the small CNN of ClassifierConfig (four 3x3 conv + SiLU
// stages, global average pool, linear head) as a ClassifierModel.
//
// Units: u = 0..3 "convs.<u>" (convs.<u>.weight (OC,C,3,3) as
// torch.nn.Conv2d stores it, convs.<u>.bias (OC)); 4 = "head" (the pool, no
// parameters, and fc.weight (K,D), fc.bias (K)). Activations are NHWC
// (B,H,W,C); all live in one arena allocated at construction for max_batch
// images.
//
// Mixed precision follows the other models: under bf16, parameters, images
// and conv activations are bf16 (bf16 x bf16 products with fp32
// accumulation), while the pooled features, the logits, the softmax, the
// loss and every parameter gradient are fp32. The activations are small, so
// --recompute changes nothing here.
#pragma once

#include <array>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/device.h"
#include "kernels/tensor.h"
#include "models/classifier/classifier_config.h"
#include "models/classifier/classifier_model.h"

namespace anvil {

struct ClassifierOptions {
  int max_batch = 8;                  // B the arena is sized for
  DType compute_dtype = DType::kF32;  // F32 or BF16
};

class Classifier : public ClassifierModel {
 public:
  static absl::StatusOr<std::unique_ptr<Classifier>> Create(const ClassifierConfig& config,
                                                            const ClassifierOptions& options,
                                                            kernels::Device* device);
  ~Classifier() override;

  const ParamLayout& layout() const override { return layout_; }
  std::vector<int> UnitDeps(int) const override { return {}; }
  void InitParams(float* host_params, uint64_t seed) const override;
  absl::Status SetImages(const float* images, const int32_t* labels, int batch) override;
  DType compute_dtype() const override { return options_.compute_dtype; }
  void Forward(int unit, ParamPtrs params) override;
  void Backward(int unit, ParamPtrs params, GradPtrs grads, float loss_scale) override;
  double Loss() override;

  void CopyFeatures(float* host) const override;
  void CopyLogits(float* host) const override;
  int batch() const override { return B_; }
  int feature_dim() const override { return config_.width; }
  int num_classes() const override { return config_.num_classes; }
  int image_size() const override { return config_.image_size; }
  int image_channels() const override { return config_.image_channels; }
  double FlopsPerImage() const override;

  const ClassifierConfig& config() const { return config_; }
  size_t arena_bytes() const { return arena_bytes_; }
  int64_t num_labelled() const { return num_labelled_; }

 private:
  using TV = kernels::TensorView;
  Classifier(const ClassifierConfig& config, const ClassifierOptions& options,
             kernels::Device* device);
  void BuildLayout();
  void AllocateArena();
  int HeadUnit() const { return kClassifierConvs; }
  // (B,S,S,C) view of a compute-dtype activation.
  TV Act(void* p, int size, int channels) const;
  // The input of conv u: the images or the previous stage's activation.
  TV ConvInput(int u) const;

  void ConvForward(int u, void* params);
  void ConvBackward(int u, void* params, float* grads);
  void HeadForward(void* params);
  void HeadBackward(void* params, float* grads, float loss_scale);

  ClassifierConfig config_;
  ClassifierOptions options_;
  kernels::Device* device_;
  std::array<ConvStage, kClassifierConvs> stages_;
  ParamLayout layout_;

  int B_ = 0;
  int64_t num_labelled_ = 0;
  bool loss_ready_ = false;
  double loss_ = 0;

  struct Acts {
    float* images;                                     // (B,S,S,Cin) fp32 as given
    void* images_cd;                                   // compute dtype (aliases images under fp32)
    int32_t* labels;                                   // (B), -1: unlabelled
    std::array<void*, kClassifierConvs> pre{}, act{};  // conv output, SiLU of it
    float* pooled;                                     // (B,D) features
    void* pooled_cd;                                   // compute dtype (aliases pooled under fp32)
    float *logits, *probs, *losses;
    // Backward scratch (compute dtype), sized for the largest stage.
    void *dact, *dpre, *dpooled, *dlogits;
  } acts_{};
  void* arena_ = nullptr;
  size_t arena_bytes_ = 0;
  mutable std::vector<float> host_losses_;
};

}  // namespace anvil
