// SquaredNorm (double accumulation, deterministic) and HasNonFinite, and
// ReduceTo, which leaves the same reductions (and a sum) in device memory.
#include <cmath>
#include <limits>

#include "kernels/ops/optim.h"
#include "tests/kernels/test_util.h"

namespace anvil::kernels {
namespace {
using testing::FVec;

class ReduceTest : public testing::CpuKernelTest {};

TEST_P(ReduceTest, SquaredNormMatchesDoubleSum) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{37}, size_t{1000003}}) {
    const FVec x = testing::Random(n, 1, -3.0f, 3.0f);
    double want = 0;
    for (float f : x) want += static_cast<double>(f) * f;
    const double got = be().SquaredNorm(x.data(), n);
    EXPECT_NEAR(got, want, 1e-12 * std::max(1.0, want)) << n;
    EXPECT_EQ(got, be().SquaredNorm(x.data(), n)) << "not deterministic";
  }
}

TEST_P(ReduceTest, SquaredNormDoesNotOverflowFloat) {
  const FVec x(1000, 1e30f);
  const double want = 1000.0 * static_cast<double>(1e30f) * static_cast<double>(1e30f);
  EXPECT_NEAR(be().SquaredNorm(x.data(), x.size()), want, 1e-12 * want);
}

TEST_P(ReduceTest, HasNonFiniteFindsInfAndNan) {
  const size_t n = 100003;
  FVec x = testing::Random(n, 2, -1e30f, 1e30f);
  x[5] = std::numeric_limits<float>::max();
  x[6] = std::numeric_limits<float>::denorm_min();
  EXPECT_FALSE(be().HasNonFinite(x.data(), n));
  for (float bad :
       {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
        std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN()}) {
    for (size_t pos : {size_t{0}, n / 2, n - 1}) {
      FVec y = x;
      y[pos] = bad;
      EXPECT_TRUE(be().HasNonFinite(y.data(), n)) << bad << " at " << pos;
    }
  }
  EXPECT_FALSE(be().HasNonFinite(x.data(), 0));
}

TEST_P(ReduceTest, ReduceToMatchesTheHostReductions) {
  const size_t n = 1003;
  FVec x = testing::Random(n, 3, -2.0f, 2.0f);
  Device& d = device();
  const TensorView xv = Flat(x.data(), n);
  float out = 7.0f;
  const TensorView ov = Flat(&out, 1);
  ReduceTo(d, ov, xv, {.kind = ReduceToKind::kSquares, .scale = 0.5});
  EXPECT_EQ(out, static_cast<float>(be().SquaredNorm(x.data(), n) * 0.5));
  double sum = 0;
  for (float f : x) sum += f;
  ReduceTo(d, ov, xv, {.kind = ReduceToKind::kSum, .scale = 0.25, .accumulate = true});
  EXPECT_EQ(out, static_cast<float>(be().SquaredNorm(x.data(), n) * 0.5) +
                     static_cast<float>(sum * 0.25));
  ReduceTo(d, ov, xv, {.kind = ReduceToKind::kNonFinite});
  EXPECT_EQ(out, 0.0f);
  x[n / 3] = std::numeric_limits<float>::quiet_NaN();
  ReduceTo(d, ov, xv, {.kind = ReduceToKind::kNonFinite});
  EXPECT_EQ(out, 1.0f);
}

ANVIL_THREADS_PARAMS(ReduceTest);

}  // namespace
}  // namespace anvil::kernels
