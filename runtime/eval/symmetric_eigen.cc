#include "runtime/eval/symmetric_eigen.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace anvil::eval {

absl::StatusOr<SymmetricEigenResult> SymmetricEigen(const std::vector<double>& input, int n) {
  if (n <= 0 || input.size() != static_cast<size_t>(n) * n) {
    return absl::InvalidArgumentError(absl::StrCat("SymmetricEigen: a ", n, "x", n,
                                                   " matrix needs ", int64_t{n} * n,
                                                   " values, got ", input.size()));
  }
  double scale = 0;
  for (double v : input) {
    if (!std::isfinite(v)) return absl::InvalidArgumentError("SymmetricEigen: non-finite entry");
    scale = std::max(scale, std::fabs(v));
  }
  for (int i = 0; i < n; ++i) {
    for (int j = i + 1; j < n; ++j) {
      if (std::fabs(input[i * n + j] - input[j * n + i]) > 1e-9 * std::max(scale, 1e-300)) {
        return absl::InvalidArgumentError(
            absl::StrCat("SymmetricEigen: matrix not symmetric at (", i, ",", j, ")"));
      }
    }
  }
  std::vector<double> a = input;
  std::vector<double> v(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i) v[i * n + i] = 1.0;
  auto off_norm = [&] {
    double s = 0;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        if (i != j) s += a[i * n + j] * a[i * n + j];
    return std::sqrt(s);
  };
  double total = 0;
  for (double x : a) total += x * x;
  const double tol = 1e-15 * std::sqrt(total);
  bool converged = off_norm() <= tol;
  for (int sweep = 0; sweep < 100 && !converged; ++sweep) {
    for (int p = 0; p < n - 1; ++p) {
      for (int q = p + 1; q < n; ++q) {
        const double apq = a[p * n + q];
        if (apq == 0.0) continue;
        // The rotation (c, s) that zeroes a[p][q] (Golub & Van Loan 8.5.2,
        // the smaller root of t^2 + 2 theta t - 1 = 0 for stability).
        const double theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
        const double t =
            (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c;
        for (int k = 0; k < n; ++k) {  // columns p, q: A <- A J
          const double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (int k = 0; k < n; ++k) {  // rows p, q: A <- J^T A
          const double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        a[p * n + q] = a[q * n + p] = 0.0;
        for (int k = 0; k < n; ++k) {  // V <- V J
          const double vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
    converged = off_norm() <= tol;
  }
  if (!converged)
    return absl::InternalError("SymmetricEigen: Jacobi did not converge in 100 sweeps");
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int x, int y) { return a[x * n + x] < a[y * n + y]; });
  SymmetricEigenResult r;
  r.n = n;
  r.values.resize(n);
  r.vectors.resize(static_cast<size_t>(n) * n);
  for (int j = 0; j < n; ++j) {
    r.values[j] = a[order[j] * n + order[j]];
    for (int k = 0; k < n; ++k) r.vectors[k * n + j] = v[k * n + order[j]];
  }
  return r;
}

absl::StatusOr<std::vector<double>> SymmetricSqrt(const std::vector<double>& a, int n) {
  absl::StatusOr<SymmetricEigenResult> e = SymmetricEigen(a, n);
  if (!e.ok()) return e.status();
  std::vector<double> root(static_cast<size_t>(n) * n, 0.0);
  std::vector<double> s(n);
  for (int j = 0; j < n; ++j) s[j] = std::sqrt(std::max(e->values[j], 0.0));
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < n; ++k) {
      double acc = 0;
      for (int j = 0; j < n; ++j) acc += e->vectors[i * n + j] * s[j] * e->vectors[k * n + j];
      root[i * n + k] = acc;
    }
  }
  return root;
}

}  // namespace anvil::eval
