// Fréchet distance between two sets of feature vectors, and classifier
// accuracy: the quality metric of generated images (`sample --eval`).
//
// FID needs an Inception network we cannot download, so the features are
// the penultimate layer (the D-wide global average pool) of the project's
// own classifier (--model classifier, trained on the same data set). Each
// set is summarised by its mean m and covariance S (unbiased, N - 1, in
// double); the distance between the two Gaussians is
//   FD = |m1 - m2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)),
// with tr((S1 S2)^(1/2)) computed as tr((S1^(1/2) S2 S1^(1/2))^(1/2)), a
// symmetric positive semi-definite matrix, by Jacobi eigendecompositions
// (symmetric_eigen.h). FD >= 0, 0 for identical statistics.
//
// How to read the numbers
// - The scale is the classifier's own (its features are not Inception's):
//   compare only numbers measured with the same classifier checkpoint and
//   the same N, never with published FIDs.
// - The floor: FD between two disjoint real sets of N images each (two
//   parts of the test split). It is not 0 because N samples estimate the
//   statistics with noise (it shrinks roughly as 1/N); no generator can be
//   expected to beat it at that N. `sample --eval` prints it next to the
//   samples' FD (quality.h).
// - Samples: FD(N generated, N real test images). Measured with the
//   classifier of tests/eval/classifier_train_test (D = 64, 300 steps,
//   83% test accuracy): floor 0.10 at N = 5000, 0.67 at N = 1000; at
//   N = 1000, real training images score 0.87 (1.3x the floor), the same
//   with N(0, 0.1^2) pixel noise 1.4 (2x), with N(0, 0.4^2) noise 27 (40x);
//   uniform noise, blank canvases or a single class score 150-220 at
//   N = 2000-5000. So: within ~2x of the floor is close to real data; FD
//   grows steadily with the degradation in between (40x for images still
//   recognisable through heavy noise); 100x or more is noise or collapse.
//   Lower is better.
// - Conditional accuracy: the classifier's accuracy on class-conditional
//   samples, taking the requested class as the label. Chance is 1/K (10%
//   on Fashion-MNIST); the classifier's accuracy on real test images (the
//   ceiling, printed alongside) is the best to expect. Samples that look
//   like their class score near the ceiling; high accuracy with a high FD
//   means recognisable but unrealistic (or low-diversity) images, a low FD
//   with low accuracy means realistic images that ignore the label.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace anvil::eval {

struct FeatureStats {
  int dim = 0;
  int64_t count = 0;
  std::vector<double> mean;  // (D)
  std::vector<double> cov;   // (D,D) row-major, unbiased (N - 1)
};

// features (n,dim) row-major fp32; n >= 2. Fails for non-finite values.
absl::StatusOr<FeatureStats> ComputeFeatureStats(const float* features, int64_t n, int dim);

// The Fréchet distance between the Gaussians of `a` and `b` (same dim).
absl::StatusOr<double> FrechetDistance(const FeatureStats& a, const FeatureStats& b);

struct AccuracyResult {
  int64_t correct = 0;
  int64_t total = 0;  // samples with a label >= 0
  double accuracy() const { return total > 0 ? static_cast<double>(correct) / total : 0.0; }
  std::vector<int64_t> class_correct, class_total;  // per label, (K)
};

// The argmax of each row of logits (n,k) (ties: the lower class) against
// labels (n) in [0, k) (labels < 0 are skipped). Fails for a label >= k.
absl::StatusOr<AccuracyResult> Accuracy(const float* logits, const int32_t* labels, int64_t n,
                                        int k);

}  // namespace anvil::eval
