// elementwise.dropout (kernels/ops/elementwise.h): the dropped fraction is p
// (within 5 standard deviations), kept elements are scaled by exactly
// 1/(1-p), a sample's mask depends only on its seed and the salt (not on its
// row or the thread count), BF16 drops the same elements as F32, applying it
// to the gradient is the backward (a finite-difference check through a
// fixed mask), p = 0 is the identity and bad arguments abort.
#include <cmath>

#include "kernels/cpu/convert.h"
#include "kernels/ops/elementwise.h"
#include "tests/kernels/test_util.h"

namespace anvil::kernels {
namespace {
using testing::FVec;

class DropoutTest : public testing::CpuKernelTest {};

TensorView Rows(float* x, int64_t rows, int64_t n) { return View(x, {rows, n}); }
TensorView Seeds(const std::vector<int32_t>& s) {
  return View(s.data(), {static_cast<int64_t>(s.size())});
}

TEST_P(DropoutTest, FractionAndScale) {
  const int64_t rows = 7, n = 150001;
  const std::vector<int32_t> seeds = {3, -17, 99, 1 << 30, 0, 5, 123456};
  for (float p : {0.1f, 0.5f, 0.9f}) {
    const FVec x = testing::Random(static_cast<size_t>(rows * n), 1, 0.5f, 2.0f);  // nonzero
    FVec y = x;
    Dropout(device(), Rows(y.data(), rows, n), Seeds(seeds), {.p = p, .salt = 4});
    int64_t dropped = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      if (y[i] == 0.0f) {
        ++dropped;
      } else {
        ASSERT_EQ(y[i], x[i] * (1.0f / (1.0f - p))) << i;
      }
    }
    const double total = static_cast<double>(rows * n);
    const double sd = std::sqrt(p * (1.0 - p) / total);
    EXPECT_NEAR(dropped / total, p, 5 * sd) << "p=" << p;
  }
}

TEST_P(DropoutTest, MaskIsAFunctionOfSeedSaltAndIndexOnly) {
  const int64_t n = 40000;
  const FVec ones(static_cast<size_t>(2 * n), 1.0f);
  FVec a = ones, b = ones, c = ones, e = ones;
  Dropout(device(), Rows(a.data(), 2, n), Seeds({11, 22}), {.p = 0.5f, .salt = 1});
  Dropout(device(), Rows(b.data(), 2, n), Seeds({22, 11}), {.p = 0.5f, .salt = 1});
  // Swapping the seeds swaps the rows: the mask follows the sample.
  EXPECT_EQ(FVec(a.begin(), a.begin() + n), FVec(b.begin() + n, b.end()));
  EXPECT_EQ(FVec(a.begin() + n, a.end()), FVec(b.begin(), b.begin() + n));
  // Another salt or seed: another mask (about half the elements differ).
  Dropout(device(), Rows(c.data(), 2, n), Seeds({11, 22}), {.p = 0.5f, .salt = 2});
  Dropout(device(), Rows(e.data(), 2, n), Seeds({12, 22}), {.p = 0.5f, .salt = 1});
  int64_t salt_diff = 0, seed_diff = 0;
  for (int64_t i = 0; i < n; ++i) {
    salt_diff += a[i] != c[i];
    seed_diff += a[i] != e[i];
  }
  EXPECT_NEAR(salt_diff / static_cast<double>(n), 0.5, 0.02);
  EXPECT_NEAR(seed_diff / static_cast<double>(n), 0.5, 0.02);
  EXPECT_EQ(FVec(a.begin() + n, a.end()), FVec(e.begin() + n, e.end()));
  // The same on one thread as on this fixture's thread count.
  auto one = MakeCpuDevice(1);
  FVec f = ones;
  Dropout(*one, Rows(f.data(), 2, n), Seeds({11, 22}), {.p = 0.5f, .salt = 1});
  EXPECT_EQ(f, a);
}

TEST_P(DropoutTest, Bf16DropsTheSameElements) {
  const int64_t rows = 3, n = 50003;
  const std::vector<int32_t> seeds = {7, 8, 9};
  const FVec x = testing::Random(static_cast<size_t>(rows * n), 2, 0.5f, 2.0f);
  FVec y = x;
  Dropout(device(), Rows(y.data(), rows, n), Seeds(seeds), {.p = 0.3f, .salt = 9});
  std::vector<uint16_t> xb(x.size());
  for (size_t i = 0; i < x.size(); ++i) xb[i] = F32ToBF16(x[i]);
  std::vector<uint16_t> yb = xb;
  Dropout(device(), View(yb.data(), DType::kBF16, {rows, n}), Seeds(seeds), {.p = 0.3f, .salt = 9});
  for (size_t i = 0; i < x.size(); ++i) {
    const float want = y[i] == 0.0f ? 0.0f : BF16ToF32(xb[i]) / 0.7f;
    ASSERT_EQ(BF16ToF32(yb[i]), BF16ToF32(F32ToBF16(want))) << i;
  }
}

// L(x) = sum(w * dropout(x)): dL/dx = dropout(w), checked numerically.
TEST_P(DropoutTest, BackwardIsTheSameMaskFiniteDifferences) {
  const int64_t rows = 2, n = 29;
  const std::vector<int32_t> seeds = {5, 6};
  const DropoutParams p{.p = 0.4f, .salt = 3};
  FVec x = testing::Random(static_cast<size_t>(rows * n), 3);
  const FVec w = testing::Random(x.size(), 4);
  auto loss = [&](const FVec& at) {
    FVec y = at;
    Dropout(device(), Rows(y.data(), rows, n), Seeds(seeds), p);
    double l = 0;
    for (size_t i = 0; i < y.size(); ++i) l += static_cast<double>(w[i]) * y[i];
    return l;
  };
  FVec grad = w;
  Dropout(device(), Rows(grad.data(), rows, n), Seeds(seeds), p);
  for (size_t i = 0; i < x.size(); ++i) {
    const float saved = x[i], h = 1e-2f;
    x[i] = saved + h;
    const double lp = loss(x);
    x[i] = saved - h;
    const double lm = loss(x);
    x[i] = saved;
    EXPECT_NEAR(grad[i], (lp - lm) / (2 * h), 1e-3) << i;
  }
}

TEST_P(DropoutTest, ZeroIsIdentityAndBadArgumentsAbort) {
  const FVec x = testing::Random(100, 5);
  FVec y = x;
  Dropout(device(), Rows(y.data(), 2, 50), Seeds({1, 2}), {.p = 0.0f});
  EXPECT_EQ(y, x);
  EXPECT_DEATH(Dropout(device(), Rows(y.data(), 2, 50), Seeds({1, 2}), {.p = 1.0f}), "p must be");
  EXPECT_DEATH(Dropout(device(), Rows(y.data(), 2, 50), Seeds({1, 2, 3}), {.p = 0.5f}),
               "multiple of the seeds");
}

ANVIL_THREADS_PARAMS(DropoutTest);

}  // namespace
}  // namespace anvil::kernels
