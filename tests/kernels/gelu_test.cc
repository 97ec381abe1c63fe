// GELU (tanh form) vs the double reference over a wide input range, +=
// semantics, finite differences, and NaN propagation.
#include <cmath>
#include <limits>

#include "tests/kernels/reference.h"
#include "tests/kernels/test_util.h"

namespace anvil::kernels {
namespace {
using testing::AllClose;
using testing::FVec;

class GeluTest : public testing::CpuKernelTest {};

TEST_P(GeluTest, MatchesReference) {
  for (size_t n : {size_t{37}, size_t{100003}}) {
    FVec inp = testing::Random(n, 1, -12.0f, 12.0f);
    inp[0] = 0.0f;
    inp[1] = -30.0f;
    inp[2] = 30.0f;
    inp[3] = 1e-4f;
    FVec out(n);
    be().GeluForward(out.data(), inp.data(), n);
    testing::DVec want(n), grad(n);
    for (size_t i = 0; i < n; ++i) {
      want[i] = ref::Gelu(inp[i]);
      grad[i] = ref::GeluGrad(inp[i]);
    }
    EXPECT_TRUE(AllClose(out, want, 1e-6, 1e-5)) << n;

    const FVec dout = testing::Random(n, 2);
    const FVec dinp0 = testing::Random(n, 3);
    FVec dinp = dinp0;
    for (int k = 1; k <= 2; ++k) {
      be().GeluBackward(dinp.data(), inp.data(), dout.data(), n);
      testing::DVec expect(n);
      for (size_t i = 0; i < n; ++i)
        expect[i] = dinp0[i] + k * static_cast<double>(dout[i]) * grad[i];
      EXPECT_TRUE(AllClose(dinp, expect, 1e-6, 1e-5)) << n << " call " << k;
    }
  }
}

TEST_P(GeluTest, FiniteDifferences) {
  FVec inp = testing::Random(41, 4, -4.0f, 4.0f);
  const FVec r = testing::Random(41, 5);
  FVec out(41);
  auto loss = [&] {
    be().GeluForward(out.data(), inp.data(), inp.size());
    return testing::Dot(out, r);
  };
  FVec dinp(41, 0.0f);
  be().GeluBackward(dinp.data(), inp.data(), r.data(), inp.size());
  EXPECT_TRUE(testing::AllCloseScaled(dinp, testing::NumericalGrad(inp, loss), 2e-3));
}

TEST_P(GeluTest, NanPropagates) {
  const FVec inp = {1.0f, std::numeric_limits<float>::quiet_NaN()};
  FVec out(2);
  be().GeluForward(out.data(), inp.data(), 2);
  EXPECT_FALSE(std::isnan(out[0]));
  EXPECT_TRUE(std::isnan(out[1]));
}

// out may be the input itself (the op family's contract does not forbid it):
// in place gives the same bits as out of place.
TEST_P(GeluTest, InPlaceEqualsOutOfPlace) {
  const size_t n = 5003;  // whole blocks and a tail
  const FVec inp = testing::Random(n, 6, -6.0f, 6.0f);
  FVec out(n), inout = inp;
  be().GeluForward(out.data(), inp.data(), n);
  be().GeluForward(inout.data(), inout.data(), n);
  EXPECT_EQ(inout, out);
}

ANVIL_THREADS_PARAMS(GeluTest);

}  // namespace
}  // namespace anvil::kernels
