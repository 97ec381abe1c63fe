// The quality report of generated images: one call for `sample --eval`.
//
// Given a loaded classifier (classifier_features.h), N generated images and
// the classes they were asked for, and the real test split, it measures
//   fd        FD(classifier features of the N samples, of real images A)
//   fd_floor  FD(real images B, real images A), A and B disjoint sets of N
//             test images (A = the first N, B = the next N): the value a
//             perfect generator would get at this N (frechet.h explains)
//   accuracy  the classifier's accuracy on the samples against the
//             requested classes (conditional samples only; chance = 1/K)
//   real_accuracy  its accuracy on A and B (the ceiling)
// N is capped at half the test split so that A and B exist (5000 on
// Fashion-MNIST); the first N samples are used.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/data/image_dataset.h"
#include "runtime/eval/classifier_features.h"

namespace anvil::eval {

struct QualityReport {
  int64_t n = 0;  // samples compared (and real images in each of A, B)
  double fd = 0;
  double fd_floor = 0;
  double accuracy = -1;  // -1: no labels given (unconditional samples)
  double real_accuracy = 0;
  int classes = 0;
  // "FD 3.21 (floor 0.45: two disjoint real sets of 1000), conditional
  // accuracy 72.3% (chance 10.0%, real test images 84.0%)"
  std::string Summary() const;
};

// samples (n,h,w,c) fp32 NHWC in [-1, 1] (padded to the classifier's size
// if smaller); labels (n) the requested classes, or null. real: the labelled
// test split (LoadImageData(..., Split::kVal)). Needs n >= 2.
absl::StatusOr<QualityReport> EvaluateSamples(ClassifierEvaluator& classifier, const float* samples,
                                              const int32_t* labels, int64_t n, int h, int w, int c,
                                              const ImageDataset& real);

}  // namespace anvil::eval
