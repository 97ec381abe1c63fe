// Eigendecomposition of a real symmetric matrix by cyclic Jacobi rotations,
// in double precision, with no dependency (the quality metric's matrix
// square roots; sizes are the classifier's feature width, ~100).
//
// Invariants of the result: a = V diag(values) V^T to rounding, V
// orthonormal (its columns are the eigenvectors), values ascending. Cost
// O(n^3) per sweep; the off-diagonal mass falls quadratically once small,
// so a handful of sweeps reaches machine precision.
#pragma once

#include <vector>

#include "absl/status/statusor.h"

namespace anvil::eval {

struct SymmetricEigenResult {
  int n = 0;
  std::vector<double> values;   // (n), ascending
  std::vector<double> vectors;  // (n,n) row-major; column j is values[j]'s eigenvector
};

// a: (n,n) row-major, symmetric (checked to 1e-9 relative). Fails for a
// non-square size, an asymmetric or non-finite matrix, or no convergence.
absl::StatusOr<SymmetricEigenResult> SymmetricEigen(const std::vector<double>& a, int n);

// The square root of a symmetric positive semi-definite matrix,
// V diag(sqrt(max(values, 0))) V^T (negative rounding noise clipped).
absl::StatusOr<std::vector<double>> SymmetricSqrt(const std::vector<double>& a, int n);

}  // namespace anvil::eval
