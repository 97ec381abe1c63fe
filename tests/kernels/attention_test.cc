// Causal attention vs the reference: outputs, saved probabilities (zeros
// above the diagonal), dqkv with += semantics, T spanning several row
// blocks, and finite differences.
#include "tests/kernels/reference.h"
#include "tests/kernels/test_util.h"

namespace anvil::kernels {
namespace {
using testing::AllClose;
using testing::FVec;

class AttentionTest : public testing::CpuKernelTest {
 protected:
  void Check(int B, int T, int C, int NH) {
    const FVec qkv = testing::Random(static_cast<size_t>(B) * T * 3 * C, 1, -1.5f, 1.5f);
    FVec out(static_cast<size_t>(B) * T * C, 7.0f);
    FVec att(static_cast<size_t>(B) * NH * T * T, 7.0f);  // forward must overwrite all of it
    be().AttentionForward(out.data(), att.data(), qkv.data(), B, T, C, NH);
    ref::Vec rout, ratt;
    ref::AttentionForward(rout, ratt, testing::ToD(qkv), B, T, C, NH);
    EXPECT_TRUE(AllClose(out, rout, 1e-5, 1e-4));
    EXPECT_TRUE(AllClose(att, ratt, 1e-6, 1e-4));
    for (int bh = 0; bh < B * NH; ++bh)
      for (int t = 0; t < T; ++t)
        for (int s = t + 1; s < T; ++s)
          ASSERT_EQ(att[(static_cast<size_t>(bh) * T + t) * T + s], 0.0f) << bh << " " << t;

    const FVec dout = testing::Random(out.size(), 2);
    const ref::Vec rdqkv =
        ref::AttentionBackward(testing::ToD(dout), testing::ToD(qkv), B, T, C, NH);
    const FVec dqkv0 = testing::Random(qkv.size(), 3);
    FVec dqkv = dqkv0;
    FVec datt(att.size(), -5.0f);  // scratch contents must not matter
    for (int k = 1; k <= 2; ++k) {
      be().AttentionBackward(dqkv.data(), datt.data(), dout.data(), qkv.data(), att.data(), B, T, C,
                             NH);
      EXPECT_TRUE(AllClose(dqkv, testing::PlusScaled(dqkv0, rdqkv, k), 1e-5, 1e-4)) << k;
    }
  }
};

TEST_P(AttentionTest, OddSizesMatchReference) { Check(2, 7, 12, 3); }
TEST_P(AttentionTest, SeveralRowBlocks) { Check(2, 131, 24, 3); }
TEST_P(AttentionTest, OneHeadOneToken) { Check(3, 1, 8, 1); }
TEST_P(AttentionTest, HeadSizeNotMultipleOf16) { Check(1, 70, 30, 2); }

TEST_P(AttentionTest, FiniteDifferences) {
  const int B = 2, T = 4, C = 6, NH = 2;
  FVec qkv = testing::Random(B * T * 3 * C, 11);
  const FVec r = testing::Random(B * T * C, 12);
  FVec out(B * T * C), att(B * NH * T * T);
  auto loss = [&] {
    be().AttentionForward(out.data(), att.data(), qkv.data(), B, T, C, NH);
    return testing::Dot(out, r);
  };
  loss();
  FVec dqkv(qkv.size(), 0.0f), datt(att.size());
  be().AttentionBackward(dqkv.data(), datt.data(), r.data(), qkv.data(), att.data(), B, T, C, NH);
  EXPECT_TRUE(testing::AllCloseScaled(dqkv, testing::NumericalGrad(qkv, loss), 5e-3));
}

ANVIL_THREADS_PARAMS(AttentionTest);

}  // namespace
}  // namespace anvil::kernels
