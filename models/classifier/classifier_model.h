// ClassifierModel: the UnitModel of an image classifier, and what an
// evaluation reads from it.
//
// It is fed image batches (runtime/data, DataKind::kImages): "images"
// (B,H,W,C) F32 NHWC in [-1, 1] and "labels" (B) I32 in [0, K). The loss is
// the mean softmax cross-entropy of the logits over the labelled samples
// (labels < 0 are ignored, and a batch without "labels" has no loss: the
// evaluation path). After the last unit's Forward, CopyFeatures and
// CopyLogits read the penultimate-layer features (B,D) and the logits (B,K)
// of the batch, as fp32, into host memory (runtime/eval uses them for the
// Fréchet distance and the accuracy).
#pragma once

#include <cstdint>

#include "models/unit_model.h"

namespace anvil {

class ClassifierModel : public UnitModel {
 public:
  // Reads "images" and, when present, "labels".
  absl::Status SetBatch(const Batch& batch) final;
  // Throughput in images; FLOPs per image.
  SampleWork work_per_sample() const final;

  // images (B,H,W,C) host fp32; labels (B) host int32 or null (no loss).
  // Fails for B beyond the arena or labels >= K.
  virtual absl::Status SetImages(const float* images, const int32_t* labels, int batch) = 0;
  // Of the last forward, into host memory: (B,D) and (B,K) fp32.
  virtual void CopyFeatures(float* host) const = 0;
  virtual void CopyLogits(float* host) const = 0;
  // Samples of the last batch.
  virtual int batch() const = 0;
  virtual int feature_dim() const = 0;  // D
  virtual int num_classes() const = 0;  // K
  virtual int image_size() const = 0;   // H = W
  virtual int image_channels() const = 0;
  // Training FLOPs (forward + backward) per image.
  virtual double FlopsPerImage() const = 0;
};

}  // namespace anvil
