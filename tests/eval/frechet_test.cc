// The quality metric's numerics: Jacobi eigendecomposition (reconstruction,
// orthonormality, known spectra), feature statistics (mean and unbiased
// covariance by hand), the Fréchet distance against closed forms (diagonal,
// a shared rotated eigenbasis, and non-commuting 2x2 covariances via
// tr sqrt(M) = sqrt(tr M + 2 sqrt(det M))), 0 for identical sets, sampled
// Gaussians converging to the closed form, and accuracy.
#include "runtime/eval/frechet.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/eval/symmetric_eigen.h"

namespace anvil::eval {
namespace {

using Matrix = std::vector<double>;

Matrix MatMul(const Matrix& a, const Matrix& b, int n) {
  Matrix c(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < n; ++k)
      for (int j = 0; j < n; ++j) c[i * n + j] += a[i * n + k] * b[k * n + j];
  return c;
}

Matrix Transpose(const Matrix& a, int n) {
  Matrix t(a.size());
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) t[j * n + i] = a[i * n + j];
  return t;
}

// A random orthonormal matrix (Gram-Schmidt on Gaussian columns).
Matrix RandomRotation(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g;
  Matrix q(static_cast<size_t>(n) * n);
  for (double& v : q) v = g(rng);
  for (int j = 0; j < n; ++j) {
    for (int p = 0; p < j; ++p) {
      double dot = 0;
      for (int i = 0; i < n; ++i) dot += q[i * n + j] * q[i * n + p];
      for (int i = 0; i < n; ++i) q[i * n + j] -= dot * q[i * n + p];
    }
    double norm = 0;
    for (int i = 0; i < n; ++i) norm += q[i * n + j] * q[i * n + j];
    for (int i = 0; i < n; ++i) q[i * n + j] /= std::sqrt(norm);
  }
  return q;
}

// Q diag(d) Q^T
Matrix WithSpectrum(const Matrix& q, const std::vector<double>& d) {
  const int n = static_cast<int>(d.size());
  Matrix qd = q;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) qd[i * n + j] *= d[j];
  return MatMul(qd, Transpose(q, n), n);
}

FeatureStats Stats(std::vector<double> mean, Matrix cov) {
  FeatureStats s;
  s.dim = static_cast<int>(mean.size());
  s.count = 1000;
  s.mean = std::move(mean);
  s.cov = std::move(cov);
  return s;
}

TEST(SymmetricEigen, ReconstructsWithOrthonormalVectors) {
  const int n = 40;
  std::mt19937 rng(3);
  std::normal_distribution<double> g;
  Matrix a(n * n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j <= i; ++j) a[i * n + j] = a[j * n + i] = g(rng);
  absl::StatusOr<SymmetricEigenResult> e = SymmetricEigen(a, n);
  ASSERT_TRUE(e.ok()) << e.status();
  for (int j = 1; j < n; ++j) EXPECT_LE(e->values[j - 1], e->values[j]);
  const Matrix back = WithSpectrum(e->vectors, e->values);
  const Matrix vtv = MatMul(Transpose(e->vectors, n), e->vectors, n);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      EXPECT_NEAR(back[i * n + j], a[i * n + j], 1e-10) << i << "," << j;
      EXPECT_NEAR(vtv[i * n + j], i == j ? 1.0 : 0.0, 1e-12) << i << "," << j;
    }
  }
  // A known spectrum in a random basis comes back.
  std::vector<double> d(n);
  for (int i = 0; i < n; ++i) d[i] = 0.5 * i - 3.0;
  e = SymmetricEigen(WithSpectrum(RandomRotation(n, 8), d), n);
  ASSERT_TRUE(e.ok());
  for (int i = 0; i < n; ++i) EXPECT_NEAR(e->values[i], d[i], 1e-11);
  // sqrt of a PSD matrix squares back.
  for (double& v : d) v = std::fabs(v) + 0.1;
  const Matrix s = WithSpectrum(RandomRotation(n, 9), d);
  absl::StatusOr<Matrix> r = SymmetricSqrt(s, n);
  ASSERT_TRUE(r.ok());
  const Matrix rr = MatMul(*r, *r, n);
  for (size_t i = 0; i < s.size(); ++i) EXPECT_NEAR(rr[i], s[i], 1e-11);
}

TEST(SymmetricEigen, RefusesBadInput) {
  EXPECT_FALSE(SymmetricEigen({1, 2, 3}, 2).ok());
  EXPECT_NE(SymmetricEigen({1, 2, 3, 4}, 2).status().message().find("not symmetric"),
            std::string::npos);
  EXPECT_FALSE(SymmetricEigen({1, NAN, NAN, 4}, 2).ok());
}

TEST(FeatureStats, MeanAndUnbiasedCovarianceByHand) {
  // Three 2-d vectors: mean (2, 1); deviations (-1,-1), (0,-1), (1,2).
  const std::vector<float> f = {1, 0, 2, 0, 3, 3};
  absl::StatusOr<FeatureStats> s = ComputeFeatureStats(f.data(), 3, 2);
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(s->mean[0], 2.0);
  EXPECT_DOUBLE_EQ(s->mean[1], 1.0);
  EXPECT_DOUBLE_EQ(s->cov[0], 1.0);  // (1 + 0 + 1) / 2
  EXPECT_DOUBLE_EQ(s->cov[1], 1.5);  // (1 + 0 + 2) / 2
  EXPECT_DOUBLE_EQ(s->cov[2], 1.5);
  EXPECT_DOUBLE_EQ(s->cov[3], 3.0);  // (1 + 1 + 4) / 2
  EXPECT_FALSE(ComputeFeatureStats(f.data(), 1, 2).ok());
  const std::vector<float> bad = {1, INFINITY, 0, 0};
  EXPECT_NE(ComputeFeatureStats(bad.data(), 2, 2).status().message().find("not finite"),
            std::string::npos);
}

TEST(FrechetDistance, DiagonalClosedForm) {
  const std::vector<double> m1 = {0, 1, 2}, m2 = {1, 1, 0};
  const std::vector<double> a = {1, 4, 9}, b = {4, 1, 0.25};
  Matrix s1(9, 0.0), s2(9, 0.0);
  for (int i = 0; i < 3; ++i) {
    s1[i * 3 + i] = a[i];
    s2[i * 3 + i] = b[i];
  }
  // |dm|^2 = 1 + 0 + 4; sum (sqrt a - sqrt b)^2 = 1 + 1 + 6.25.
  absl::StatusOr<double> fd = FrechetDistance(Stats(m1, s1), Stats(m2, s2));
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_NEAR(*fd, 5.0 + 8.25, 1e-12);
}

TEST(FrechetDistance, SharedRotatedEigenbasisClosedForm) {
  const int n = 16;
  const Matrix q = RandomRotation(n, 21);
  std::vector<double> a(n), b(n), m1(n), m2(n);
  double expect = 0;
  for (int i = 0; i < n; ++i) {
    a[i] = 0.2 + 0.3 * i;
    b[i] = 5.0 / (1 + i);
    m1[i] = 0.1 * i;
    m2[i] = -0.05 * i;
    expect += (m1[i] - m2[i]) * (m1[i] - m2[i]) +
              (std::sqrt(a[i]) - std::sqrt(b[i])) * (std::sqrt(a[i]) - std::sqrt(b[i]));
  }
  absl::StatusOr<double> fd =
      FrechetDistance(Stats(m1, WithSpectrum(q, a)), Stats(m2, WithSpectrum(q, b)));
  ASSERT_TRUE(fd.ok());
  EXPECT_NEAR(*fd, expect, 1e-9 * expect);
}

TEST(FrechetDistance, NonCommutingTwoByTwoClosedForm) {
  // S1 S2 != S2 S1. For 2x2, tr (S1 S2)^(1/2) = sqrt(tr(S1 S2) + 2 sqrt(det S1
  // det S2)).
  const Matrix s1 = {2.0, 0.8, 0.8, 1.0}, s2 = {0.5, -0.3, -0.3, 3.0};
  const Matrix p = MatMul(s1, s2, 2);
  ASSERT_GT(std::fabs(p[1] - MatMul(s2, s1, 2)[1]),
            0.1);  // really non-commuting
  const double det1 = s1[0] * s1[3] - s1[1] * s1[2], det2 = s2[0] * s2[3] - s2[1] * s2[2];
  const double tr_sqrt = std::sqrt(p[0] + p[3] + 2 * std::sqrt(det1 * det2));
  const double expect = (1.0 * 1.0 + 2.0 * 2.0) + (2.0 + 1.0 + 0.5 + 3.0) - 2 * tr_sqrt;
  absl::StatusOr<double> fd = FrechetDistance(Stats({0, 0}, s1), Stats({1, -2}, s2));
  ASSERT_TRUE(fd.ok());
  EXPECT_NEAR(*fd, expect, 1e-12);
  // Symmetric in its arguments.
  EXPECT_NEAR(*FrechetDistance(Stats({1, -2}, s2), Stats({0, 0}, s1)), expect, 1e-12);
}

std::vector<float> SampleGaussian(const std::vector<double>& mean, const Matrix& root, int64_t n,
                                  uint32_t seed) {
  const int d = static_cast<int>(mean.size());
  std::mt19937 rng(seed);
  std::normal_distribution<double> g;
  std::vector<float> out(static_cast<size_t>(n) * d);
  std::vector<double> z(d);
  for (int64_t i = 0; i < n; ++i) {
    for (double& v : z) v = g(rng);
    for (int r = 0; r < d; ++r) {
      double acc = mean[r];
      for (int c = 0; c < d; ++c) acc += root[r * d + c] * z[c];
      out[i * d + r] = static_cast<float>(acc);
    }
  }
  return out;
}

TEST(FrechetDistance, IdenticalSetsZeroAndSamplesConverge) {
  const int d = 8;
  std::vector<double> spec1(d), spec2(d), m1(d, 0.0), m2(d, 0.0);
  for (int i = 0; i < d; ++i) {
    spec1[i] = 1.0 + i;
    spec2[i] = 2.0;
    m2[i] = i % 2 ? 0.5 : -0.5;
  }
  const Matrix s1 = WithSpectrum(RandomRotation(d, 1), spec1);
  const Matrix s2 = WithSpectrum(RandomRotation(d, 2), spec2);
  const std::vector<float> x = SampleGaussian(m1, *SymmetricSqrt(s1, d), 40000, 5);
  const std::vector<float> y = SampleGaussian(m2, *SymmetricSqrt(s2, d), 40000, 6);
  const FeatureStats a = *ComputeFeatureStats(x.data(), 40000, d);
  const FeatureStats b = *ComputeFeatureStats(y.data(), 40000, d);
  EXPECT_NEAR(*FrechetDistance(a, a), 0.0, 1e-9);
  const double exact = *FrechetDistance(Stats(m1, s1), Stats(m2, s2));
  const double sampled = *FrechetDistance(a, b);
  std::printf("Gaussians d=8: exact FD %.4f, from 40000 samples each %.4f\n", exact, sampled);
  EXPECT_NEAR(sampled, exact, 0.03 * exact);
  // Two halves of one set: small, positive (the floor at that N).
  const FeatureStats h1 = *ComputeFeatureStats(x.data(), 20000, d);
  const FeatureStats h2 = *ComputeFeatureStats(x.data() + 20000 * d, 20000, d);
  const double floor = *FrechetDistance(h1, h2);
  EXPECT_GT(floor, 0.0);
  EXPECT_LT(floor, 0.02 * exact);
  EXPECT_FALSE(FrechetDistance(a, Stats({0, 0}, {1, 0, 0, 1})).ok());
}

TEST(Accuracy, ArgmaxAgainstLabels) {
  const std::vector<float> logits = {0.1f, 0.9f, 0.0f,   //  1
                                     2.0f, 1.0f, 0.0f,   //  0
                                     0.0f, 0.0f, 0.5f,   //  2
                                     0.3f, 0.3f, 0.1f};  //  0 (tie: the lower class)
  const std::vector<int32_t> labels = {1, 2, 2, 0};
  absl::StatusOr<AccuracyResult> r = Accuracy(logits.data(), labels.data(), 4, 3);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->correct, 3);
  EXPECT_EQ(r->total, 4);
  EXPECT_DOUBLE_EQ(r->accuracy(), 0.75);
  EXPECT_EQ(r->class_total[2], 2);
  EXPECT_EQ(r->class_correct[2], 1);
  const std::vector<int32_t> skip = {1, -1, 2, -1};
  EXPECT_DOUBLE_EQ(Accuracy(logits.data(), skip.data(), 4, 3)->accuracy(), 1.0);
  const std::vector<int32_t> bad = {1, 3, 2, 0};
  EXPECT_FALSE(Accuracy(logits.data(), bad.data(), 4, 3).ok());
}

}  // namespace
}  // namespace anvil::eval
