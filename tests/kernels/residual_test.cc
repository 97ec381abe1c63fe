// Residual add, Accumulate, Scale: exact elementwise results (these ops are
// one rounding each), on sizes below and above the parallel threshold.
#include "tests/kernels/test_util.h"

namespace anvil::kernels {
namespace {
using testing::FVec;

class ResidualTest : public testing::CpuKernelTest {};

TEST_P(ResidualTest, ElementwiseOpsAreExact) {
  for (size_t n : {size_t{1}, size_t{37}, size_t{100003}}) {
    const FVec a = testing::Random(n, 1), b = testing::Random(n, 2);
    FVec out(n);
    be().ResidualForward(out.data(), a.data(), b.data(), n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(out[i], a[i] + b[i]) << i;

    FVec acc = a;
    be().Accumulate(acc.data(), b.data(), n);
    be().Accumulate(acc.data(), b.data(), n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(acc[i], (a[i] + b[i]) + b[i]) << i;

    FVec s = a;
    be().Scale(s.data(), -0.375f, n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(s[i], a[i] * -0.375f) << i;
  }
}

TEST_P(ResidualTest, OutputMayAliasInput) {
  const size_t n = 70001;
  const FVec a = testing::Random(n, 3), b = testing::Random(n, 4);
  FVec x = a;
  be().ResidualForward(x.data(), x.data(), b.data(), n);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(x[i], a[i] + b[i]) << i;
}

ANVIL_THREADS_PARAMS(ResidualTest);

}  // namespace
}  // namespace anvil::kernels
