// Linear layer vs the reference, with and without bias, += semantics, null
// gradient outputs skipped, finite differences.
#include "tests/kernels/reference.h"
#include "tests/kernels/test_util.h"

namespace anvil::kernels {
namespace {
using testing::AllClose;
using testing::FVec;

class MatmulTest : public testing::CpuKernelTest {
 protected:
  void Check(int N, int C, int OC, bool with_bias) {
    const FVec inp = testing::Random(static_cast<size_t>(N) * C, 1);
    const FVec w = testing::Random(static_cast<size_t>(OC) * C, 2);
    const FVec bias = with_bias ? testing::Random(OC, 3) : FVec();
    FVec out(static_cast<size_t>(N) * OC, 123.0f);  // forward must overwrite
    be().MatmulForward(out.data(), inp.data(), w.data(), with_bias ? bias.data() : nullptr, N, C,
                       OC);
    EXPECT_TRUE(AllClose(
        out, ref::MatmulForward(testing::ToD(inp), testing::ToD(w), testing::ToD(bias), N, C, OC),
        1e-5, 1e-5));

    const FVec dout = testing::Random(out.size(), 4);
    ref::Vec rdinp, rdw, rdb;
    ref::MatmulBackward(rdinp, rdw, rdb, testing::ToD(dout), testing::ToD(inp), testing::ToD(w), N,
                        C, OC);
    const FVec dinp0 = testing::Random(inp.size(), 5), dw0 = testing::Random(w.size(), 6),
               db0 = testing::Random(OC, 7);
    FVec dinp = dinp0, dw = dw0, db = db0;
    for (int k = 1; k <= 2; ++k) {
      be().MatmulBackward(dinp.data(), dw.data(), with_bias ? db.data() : nullptr, dout.data(),
                          inp.data(), w.data(), N, C, OC);
      EXPECT_TRUE(AllClose(dinp, testing::PlusScaled(dinp0, rdinp, k), 1e-4, 1e-5)) << k;
      EXPECT_TRUE(AllClose(dw, testing::PlusScaled(dw0, rdw, k), 1e-4, 1e-5)) << k;
      if (with_bias) {
        EXPECT_TRUE(AllClose(db, testing::PlusScaled(db0, rdb, k), 1e-4, 1e-5)) << k;
      } else {
        EXPECT_EQ(db, db0);
      }
    }
  }
};

TEST_P(MatmulTest, OddSizesWithBias) { Check(14, 12, 9, true); }
TEST_P(MatmulTest, OddSizesNoBias) { Check(14, 12, 9, false); }
TEST_P(MatmulTest, ParallelSizesWithBias) { Check(301, 37, 131, true); }
TEST_P(MatmulTest, ParallelSizesNoBias) { Check(301, 37, 131, false); }

TEST_P(MatmulTest, NullGradientsAreSkipped) {
  const int N = 5, C = 4, OC = 3;
  const FVec inp = testing::Random(N * C, 1), w = testing::Random(OC * C, 2),
             dout = testing::Random(N * OC, 3);
  FVec dw(OC * C, 0.0f), db(OC, 0.0f);
  be().MatmulBackward(nullptr, dw.data(), db.data(), dout.data(), inp.data(), w.data(), N, C, OC);
  ref::Vec rdinp, rdw, rdb;
  ref::MatmulBackward(rdinp, rdw, rdb, testing::ToD(dout), testing::ToD(inp), testing::ToD(w), N, C,
                      OC);
  EXPECT_TRUE(AllClose(dw, rdw, 1e-5, 1e-5));
  EXPECT_TRUE(AllClose(db, rdb, 1e-5, 1e-5));
  FVec dinp(N * C, 0.0f);
  be().MatmulBackward(dinp.data(), nullptr, nullptr, dout.data(), inp.data(), w.data(), N, C, OC);
  EXPECT_TRUE(AllClose(dinp, rdinp, 1e-5, 1e-5));
}

TEST_P(MatmulTest, FiniteDifferences) {
  const int N = 3, C = 5, OC = 4;
  FVec inp = testing::Random(N * C, 11), w = testing::Random(OC * C, 12),
       b = testing::Random(OC, 13);
  const FVec r = testing::Random(N * OC, 14);
  FVec out(N * OC);
  auto loss = [&] {
    be().MatmulForward(out.data(), inp.data(), w.data(), b.data(), N, C, OC);
    return testing::Dot(out, r);
  };
  FVec dinp(inp.size(), 0.0f), dw(w.size(), 0.0f), db(OC, 0.0f);
  be().MatmulBackward(dinp.data(), dw.data(), db.data(), r.data(), inp.data(), w.data(), N, C, OC);
  EXPECT_TRUE(testing::AllCloseScaled(dinp, testing::NumericalGrad(inp, loss), 2e-3));
  EXPECT_TRUE(testing::AllCloseScaled(dw, testing::NumericalGrad(w, loss), 2e-3));
  EXPECT_TRUE(testing::AllCloseScaled(db, testing::NumericalGrad(b, loss), 2e-3));
}

ANVIL_THREADS_PARAMS(MatmulTest);

}  // namespace
}  // namespace anvil::kernels
