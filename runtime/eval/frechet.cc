#include "runtime/eval/frechet.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "runtime/eval/symmetric_eigen.h"

namespace anvil::eval {

absl::StatusOr<FeatureStats> ComputeFeatureStats(const float* features, int64_t n, int dim) {
  if (n < 2 || dim <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "feature statistics need at least 2 vectors of dimension >= 1, got ", n, " x ", dim));
  }
  FeatureStats s;
  s.dim = dim;
  s.count = n;
  s.mean.assign(dim, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int d = 0; d < dim; ++d) {
      const double v = features[i * dim + d];
      if (!std::isfinite(v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("feature ", d, " of vector ", i, " is not finite"));
      }
      s.mean[d] += v;
    }
  }
  for (double& m : s.mean) m /= static_cast<double>(n);
  // Centred accumulation (two passes): no cancellation for large means.
  s.cov.assign(static_cast<size_t>(dim) * dim, 0.0);
  std::vector<double> x(dim);
  for (int64_t i = 0; i < n; ++i) {
    for (int d = 0; d < dim; ++d) x[d] = features[i * dim + d] - s.mean[d];
    for (int a = 0; a < dim; ++a) {
      const double xa = x[a];
      double* row = s.cov.data() + static_cast<size_t>(a) * dim;
      for (int b = a; b < dim; ++b) row[b] += xa * x[b];
    }
  }
  const double inv = 1.0 / static_cast<double>(n - 1);
  for (int a = 0; a < dim; ++a) {
    for (int b = a; b < dim; ++b) {
      s.cov[a * dim + b] *= inv;
      s.cov[b * dim + a] = s.cov[a * dim + b];
    }
  }
  return s;
}

absl::StatusOr<double> FrechetDistance(const FeatureStats& a, const FeatureStats& b) {
  const int D = a.dim;
  if (D <= 0 || b.dim != D || a.mean.size() != static_cast<size_t>(D) ||
      b.mean.size() != static_cast<size_t>(D) || a.cov.size() != static_cast<size_t>(D) * D ||
      b.cov.size() != static_cast<size_t>(D) * D) {
    return absl::InvalidArgumentError(
        absl::StrCat("Fréchet distance of feature sets of dimensions ", a.dim, " and ", b.dim));
  }
  double mean_term = 0;
  for (int d = 0; d < D; ++d) mean_term += (a.mean[d] - b.mean[d]) * (a.mean[d] - b.mean[d]);
  double trace = 0;
  for (int d = 0; d < D; ++d) trace += a.cov[d * D + d] + b.cov[d * D + d];
  // tr((S1 S2)^(1/2)) = tr((R S2 R)^(1/2)), R = S1^(1/2): S1 S2 = R (R S2 R)
  // R^-1 is similar to R S2 R, which is symmetric PSD.
  absl::StatusOr<std::vector<double>> r = SymmetricSqrt(a.cov, D);
  if (!r.ok()) return r.status();
  std::vector<double> t(static_cast<size_t>(D) * D, 0.0), m(static_cast<size_t>(D) * D, 0.0);
  for (int i = 0; i < D; ++i)  // t = R S2
    for (int k = 0; k < D; ++k) {
      const double rik = (*r)[i * D + k];
      for (int j = 0; j < D; ++j) t[i * D + j] += rik * b.cov[k * D + j];
    }
  for (int i = 0; i < D; ++i)  // m = t R
    for (int k = 0; k < D; ++k) {
      const double tik = t[i * D + k];
      for (int j = 0; j < D; ++j) m[i * D + j] += tik * (*r)[k * D + j];
    }
  for (int i = 0; i < D; ++i)  // symmetrise away the rounding
    for (int j = i + 1; j < D; ++j)
      m[i * D + j] = m[j * D + i] = 0.5 * (m[i * D + j] + m[j * D + i]);
  absl::StatusOr<SymmetricEigenResult> e = SymmetricEigen(m, D);
  if (!e.ok()) return e.status();
  double tr_sqrt = 0;
  for (double v : e->values) tr_sqrt += std::sqrt(std::max(v, 0.0));
  return std::max(mean_term + trace - 2.0 * tr_sqrt, 0.0);
}

absl::StatusOr<AccuracyResult> Accuracy(const float* logits, const int32_t* labels, int64_t n,
                                        int k) {
  if (k <= 0 || n < 0) {
    return absl::InvalidArgumentError(absl::StrCat("accuracy of ", n, " rows of ", k, " classes"));
  }
  AccuracyResult r;
  r.class_correct.assign(k, 0);
  r.class_total.assign(k, 0);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t y = labels[i];
    if (y < 0) continue;
    if (y >= k) {
      return absl::InvalidArgumentError(
          absl::StrCat("label ", y, " of sample ", i, " outside 0..", k - 1));
    }
    const float* row = logits + i * k;
    int best = 0;
    for (int c = 1; c < k; ++c)
      if (row[c] > row[best]) best = c;
    ++r.total;
    ++r.class_total[y];
    if (best == y) {
      ++r.correct;
      ++r.class_correct[y];
    }
  }
  return r;
}

}  // namespace anvil::eval
