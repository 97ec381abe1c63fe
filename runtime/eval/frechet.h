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
// How to read the numbers (the floor, the scale, what 2x or 100x the floor
// means, conditional accuracy against chance and the classifier's own
// accuracy): README.md, section "Diffusion".
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
