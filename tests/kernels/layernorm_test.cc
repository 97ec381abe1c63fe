// LayerNorm vs the reference (full-Jacobian backward), += semantics, finite
// differences on input, weight and bias.
#include "tests/kernels/reference.h"
#include "tests/kernels/test_util.h"

namespace anvil::kernels {
namespace {
using testing::AllClose;
using testing::FVec;

class LayerNormTest : public testing::CpuKernelTest {
 protected:
  void Check(int N, int C) {
    // An offset and a spread keep mean/variance non-trivial.
    FVec inp = testing::Random(static_cast<size_t>(N) * C, 1, -2.0f, 3.0f);
    const FVec w = testing::Random(C, 2, 0.5f, 1.5f), b = testing::Random(C, 3);
    FVec out(inp.size()), mean(N), rstd(N);
    be().LayerNormForward(out.data(), mean.data(), rstd.data(), inp.data(), w.data(), b.data(), N,
                          C);
    ref::Vec rout, rmean, rrstd;
    ref::LayerNormForward(rout, rmean, rrstd, testing::ToD(inp), testing::ToD(w), testing::ToD(b),
                          N, C);
    EXPECT_TRUE(AllClose(out, rout, 1e-5, 1e-5));
    EXPECT_TRUE(AllClose(mean, rmean, 1e-6, 1e-5));
    EXPECT_TRUE(AllClose(rstd, rrstd, 1e-6, 1e-5));

    const FVec dout = testing::Random(inp.size(), 4);
    ref::Vec rdinp, rdw, rdb;
    ref::LayerNormBackward(rdinp, rdw, rdb, testing::ToD(dout), testing::ToD(inp), testing::ToD(w),
                           N, C);
    const FVec dinp0 = testing::Random(inp.size(), 5), dw0 = testing::Random(C, 6),
               db0 = testing::Random(C, 7);
    FVec dinp = dinp0, dw = dw0, db = db0;
    for (int k = 1; k <= 2; ++k) {
      be().LayerNormBackward(dinp.data(), dw.data(), db.data(), dout.data(), inp.data(), w.data(),
                             mean.data(), rstd.data(), N, C);
      EXPECT_TRUE(AllClose(dinp, testing::PlusScaled(dinp0, rdinp, k), 1e-5, 1e-4)) << "call " << k;
      EXPECT_TRUE(AllClose(dw, testing::PlusScaled(dw0, rdw, k), 1e-4, 1e-4)) << "call " << k;
      EXPECT_TRUE(AllClose(db, testing::PlusScaled(db0, rdb, k), 1e-4, 1e-4)) << "call " << k;
    }
  }
};

TEST_P(LayerNormTest, OddSizesMatchReference) { Check(14, 12); }
TEST_P(LayerNormTest, ParallelSizesMatchReference) { Check(301, 200); }
TEST_P(LayerNormTest, WideRowsMatchReference) { Check(7, 1000); }

TEST_P(LayerNormTest, FiniteDifferences) {
  const int N = 3, C = 7;
  FVec inp = testing::Random(N * C, 11, -1.0f, 2.0f);
  FVec w = testing::Random(C, 12, 0.5f, 1.5f), b = testing::Random(C, 13);
  const FVec r = testing::Random(N * C, 14);
  FVec out(N * C), mean(N), rstd(N);
  auto loss = [&] {
    be().LayerNormForward(out.data(), mean.data(), rstd.data(), inp.data(), w.data(), b.data(), N,
                          C);
    return testing::Dot(out, r);
  };
  loss();
  FVec dinp(N * C, 0.0f), dw(C, 0.0f), db(C, 0.0f);
  be().LayerNormBackward(dinp.data(), dw.data(), db.data(), r.data(), inp.data(), w.data(),
                         mean.data(), rstd.data(), N, C);
  EXPECT_TRUE(testing::AllCloseScaled(dinp, testing::NumericalGrad(inp, loss), 5e-3));
  EXPECT_TRUE(testing::AllCloseScaled(dw, testing::NumericalGrad(w, loss), 5e-3));
  EXPECT_TRUE(testing::AllCloseScaled(db, testing::NumericalGrad(b, loss), 5e-3));
}

ANVIL_THREADS_PARAMS(LayerNormTest);

}  // namespace
}  // namespace anvil::kernels
