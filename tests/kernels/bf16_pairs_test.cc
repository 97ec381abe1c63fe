// bf16 pair-form products (kernels/cpu/bf16_pairs.h) against a float64
// product of the same bf16 values, for every operand form attention uses:
// A as bf16 rows and as paired rows of A^T (fp32, rounded by the packer),
// B as paired rows and as a 32-bit transpose, with odd K (zero padding),
// column tails (N % 16), row tails (M % 6), alpha and accumulation.
//
// Tolerance: the products of bf16 pairs are exact in fp32; only the fp32
// accumulation rounds, at most once per product added (K <= 130 here), each
// time by 2^-24 of a partial sum no larger than sum |a||b| (plus |C| when
// accumulating): |got - want| <= 130 * 2^-24 * that < 2^-16 of it.
// Skipped where the CPU lacks AVX512-BF16 (the products cannot run there).
#include "kernels/cpu/bf16_pairs.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/convert.h"
#include "tests/kernels/test_util.h"

namespace anvil::kernels {
namespace {

using testing::FVec;

float Bf(float x) { return BF16ToF32(F32ToBF16(x)); }

struct Case {
  int m, n, k;
};

class Bf16PairsTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (!cpu::Bf16PairsAvailable()) GTEST_SKIP() << "no AVX512-BF16 here (or oneDNN capped below it)";
  }
};

// Checks C = alpha A B (+ C0) for A given as a (m x k) bf16 row-major
// matrix (a_rows) or as the paired rows of A^T (fp32, k x m).
void Check(const Case& c, bool a_from_transposed, bool b_transposed, bool accumulate) {
  const int m = c.m, n = c.n, k = c.k, kp = (k + 1) / 2;
  const float alpha = 0.75f;
  FVec a = testing::Random(static_cast<size_t>(m) * k, 101 + k, -2.0f, 2.0f);
  FVec b = testing::Random(static_cast<size_t>(k) * n, 202 + n, -2.0f, 2.0f);
  for (float& x : a) x = Bf(x);
  for (float& x : b) x = Bf(x);
  // A operand.
  std::vector<uint32_t> ap;
  int64_t sm, sk;
  if (a_from_transposed) {
    FVec at(static_cast<size_t>(k) * m);  // A^T, fp32 rows of length m
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < k; ++j) at[j * m + i] = a[i * k + j];
    ap.assign(static_cast<size_t>(kp) * m, 0xdeadbeef);
    cpu::PackPairRows(at.data(), m, k, m, ap.data(), m);
    sm = 1, sk = m;
  } else {
    const int lda = 2 * kp + 2;  // even, with a gap after each row
    std::vector<uint16_t> a16(static_cast<size_t>(m) * lda, F32ToBF16(NAN));
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < k; ++j) a16[i * lda + j] = F32ToBF16(a[i * k + j]);
      a16[i * lda + k] = 0;  // the pad of an odd K is the caller's zero
    }
    ap.resize(a16.size() / 2);
    std::memcpy(ap.data(), a16.data(), a16.size() * 2);
    sm = lda / 2, sk = 1;
  }
  // B operand, leading dimension n + 3 (odd: rows of words need no alignment).
  const int64_t ldb = n + 3;
  std::vector<uint32_t> bp(static_cast<size_t>(kp) * ldb, 0xdeadbeef);
  if (b_transposed) {
    // B = Y^T with Y (n x k) bf16 rows; k odd is padded by the caller.
    const int ke = 2 * kp, ldy = ke + 4;
    std::vector<uint16_t> y(static_cast<size_t>(n) * ldy, 0);
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < k; ++i) y[j * ldy + i] = F32ToBF16(b[i * n + j]);
    cpu::PackPairsOfTransposed(y.data(), ldy, n, ke, bp.data(), ldb);
  } else {
    std::vector<uint16_t> b16(static_cast<size_t>(k) * (n + 1));
    for (int i = 0; i < k; ++i)
      for (int j = 0; j < n; ++j) b16[i * (n + 1) + j] = F32ToBF16(b[i * n + j]);
    cpu::PackPairRows(b16.data(), n + 1, k, n, bp.data(), ldb);
  }
  const int64_t ldc = n + 5;
  FVec cmat = testing::Random(static_cast<size_t>(m) * ldc, 303, -1.0f, 1.0f);
  const FVec c0 = cmat;
  cpu::PairGemm(m, n, kp, ap.data(), sm, sk, bp.data(), ldb, alpha, accumulate, cmat.data(), ldc);
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      double want = 0, mag = 0;
      for (int l = 0; l < k; ++l) {
        want += static_cast<double>(a[i * k + l]) * b[l * n + j];
        mag += std::abs(static_cast<double>(a[i * k + l]) * b[l * n + j]);
      }
      want *= alpha, mag *= alpha;
      if (accumulate) want += c0[i * ldc + j], mag += std::abs(c0[i * ldc + j]);
      ASSERT_NEAR(cmat[i * ldc + j], want, std::ldexp(mag, -16) + 1e-30)
          << "m=" << m << " n=" << n << " k=" << k << " at (" << i << "," << j << ") a^T "
          << a_from_transposed << " b^T " << b_transposed << " acc " << accumulate;
    }
    for (int j = n; j < ldc; ++j) ASSERT_EQ(cmat[i * ldc + j], c0[i * ldc + j]) << "gap written";
  }
}

TEST_P(Bf16PairsTest, MatchesFloat64OnEveryOperandForm) {
  for (bool at : {false, true})
    for (bool bt : {false, true})
      for (bool acc : {false, true}) Check(GetParam(), at, bt, acc);
}

INSTANTIATE_TEST_SUITE_P(Shapes, Bf16PairsTest,
                         ::testing::Values(Case{1, 1, 1}, Case{1, 16, 2}, Case{6, 64, 64},
                                           Case{7, 33, 9}, Case{64, 64, 64}, Case{13, 100, 31},
                                           Case{64, 40, 130}, Case{5, 130, 2}));

TEST(Bf16Pairs, PackersRoundAndPad) {
  if (!cpu::Bf16PairsAvailable()) GTEST_SKIP() << "no AVX512-BF16 here";
  // fp32 rows are rounded to nearest even; an odd row count pads with 0.
  const float x[3][2] = {{1.0f + 0x1p-8f, -2.0f}, {3.0f + 0x1p-7f + 0x1p-9f, 4.0f}, {5.0f, 6.0f}};
  uint32_t out[2][2];
  cpu::PackPairRows(&x[0][0], 2, 3, 2, &out[0][0], 2);
  EXPECT_EQ(out[0][0], F32ToBF16(1.0f) | uint32_t{F32ToBF16(3.0f + 0x1p-7f + 0x1p-9f)} << 16);
  EXPECT_EQ(F32ToBF16(1.0f + 0x1p-8f), F32ToBF16(1.0f));  // the tie went to even
  EXPECT_EQ(out[1][0] >> 16, 0u);
  EXPECT_EQ(out[1][1], F32ToBF16(6.0f));
  uint32_t cols[3][2];
  cpu::PackPairColumns(&x[0][0], 2, 3, 1, &cols[0][0], 2);  // one column: pad high halves
  EXPECT_EQ(cols[2][0], F32ToBF16(5.0f));
}

}  // namespace
}  // namespace anvil::kernels
