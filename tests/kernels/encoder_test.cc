// Token + position embedding vs the reference, += semantics, repeated tokens
// (scatter collisions in backward), finite differences.
#include "tests/kernels/reference.h"
#include "tests/kernels/test_util.h"

namespace anvil::kernels {
namespace {
using testing::AllClose;
using testing::FVec;

class EncoderTest : public testing::CpuKernelTest {
 protected:
  void Check(int B, int T, int C, int V, int maxT) {
    const auto tokens = testing::RandomTokens(static_cast<size_t>(B) * T, V, 1);
    FVec wte = testing::Random(static_cast<size_t>(V) * C, 2);
    FVec wpe = testing::Random(static_cast<size_t>(maxT) * C, 3);
    FVec out(static_cast<size_t>(B) * T * C);
    be().EncoderForward(out.data(), tokens.data(), wte.data(), wpe.data(), B, T, C);
    EXPECT_TRUE(AllClose(out,
                         ref::EncoderForward(tokens, testing::ToD(wte), testing::ToD(wpe), B, T, C),
                         1e-6, 1e-6));

    const FVec dout = testing::Random(out.size(), 4);
    ref::Vec rdwte, rdwpe;
    ref::EncoderBackward(rdwte, rdwpe, testing::ToD(dout), tokens, B, T, C, V, maxT);
    const FVec dwte0 = testing::Random(wte.size(), 5), dwpe0 = testing::Random(wpe.size(), 6);
    FVec dwte = dwte0, dwpe = dwpe0;
    be().EncoderBackward(dwte.data(), dwpe.data(), dout.data(), tokens.data(), B, T, C);
    EXPECT_TRUE(AllClose(dwte, testing::PlusScaled(dwte0, rdwte, 1), 1e-5, 1e-5));
    EXPECT_TRUE(AllClose(dwpe, testing::PlusScaled(dwpe0, rdwpe, 1), 1e-5, 1e-5));
    be().EncoderBackward(dwte.data(), dwpe.data(), dout.data(), tokens.data(), B, T, C);
    EXPECT_TRUE(AllClose(dwte, testing::PlusScaled(dwte0, rdwte, 2), 1e-5, 1e-5));
    EXPECT_TRUE(AllClose(dwpe, testing::PlusScaled(dwpe0, rdwpe, 2), 1e-5, 1e-5));
  }
};

TEST_P(EncoderTest, OddSizesMatchReference) { Check(2, 7, 12, 5, 9); }
TEST_P(EncoderTest, ParallelSizesMatchReference) { Check(4, 65, 200, 11, 70); }
TEST_P(EncoderTest, ChannelsNotMultipleOf16) { Check(3, 33, 37, 3, 33); }

TEST_P(EncoderTest, FiniteDifferences) {
  const int B = 2, T = 3, C = 5, V = 4;
  const auto tokens = testing::RandomTokens(B * T, V, 7);
  FVec wte = testing::Random(V * C, 8), wpe = testing::Random(T * C, 9);
  const FVec r = testing::Random(B * T * C, 10);
  FVec out(B * T * C);
  auto loss = [&] {
    be().EncoderForward(out.data(), tokens.data(), wte.data(), wpe.data(), B, T, C);
    return testing::Dot(out, r);
  };
  FVec dwte(wte.size(), 0.0f), dwpe(wpe.size(), 0.0f);
  be().EncoderBackward(dwte.data(), dwpe.data(), r.data(), tokens.data(), B, T, C);
  EXPECT_TRUE(testing::AllCloseScaled(dwte, testing::NumericalGrad(wte, loss), 1e-3));
  EXPECT_TRUE(testing::AllCloseScaled(dwpe, testing::NumericalGrad(wpe, loss), 1e-3));
}

ANVIL_THREADS_PARAMS(EncoderTest);

}  // namespace
}  // namespace anvil::kernels
