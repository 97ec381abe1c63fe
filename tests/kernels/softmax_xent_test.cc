// Fused softmax + cross-entropy vs the reference, ignored targets (< 0),
// += semantics, large logits (no overflow), finite differences.
#include <cmath>

#include "tests/kernels/reference.h"
#include "tests/kernels/test_util.h"

namespace anvil::kernels {
namespace {
using testing::AllClose;
using testing::FVec;

class SoftmaxXentTest : public testing::CpuKernelTest {
 protected:
  void Check(int N, int V, float spread) {
    const FVec logits = testing::Random(static_cast<size_t>(N) * V, 1, -spread, spread);
    auto targets = testing::RandomTokens(N, V, 2);
    targets[0] = -1;
    if (N > 3) targets[3] = -100;
    FVec losses(N, 9.0f), probs(logits.size());
    be().SoftmaxCrossEntropyForward(losses.data(), probs.data(), logits.data(), targets.data(), N,
                                    V);
    ref::Vec rl, rp;
    ref::SoftmaxCrossEntropyForward(rl, rp, testing::ToD(logits), targets, N, V);
    EXPECT_TRUE(AllClose(losses, rl, 1e-5, 1e-5));
    EXPECT_TRUE(AllClose(probs, rp, 1e-7, 1e-5));
    EXPECT_EQ(losses[0], 0.0f);

    const float dloss = 0.37f;
    const ref::Vec rd =
        ref::SoftmaxCrossEntropyBackward(testing::ToD(logits), targets, dloss, N, V);
    const FVec d0 = testing::Random(logits.size(), 3);
    FVec d = d0;
    for (int k = 1; k <= 2; ++k) {
      be().SoftmaxCrossEntropyBackward(d.data(), probs.data(), targets.data(), dloss, N, V);
      EXPECT_TRUE(AllClose(d, testing::PlusScaled(d0, rd, k), 1e-6, 1e-5)) << k;
    }
    for (int j = 0; j < V; ++j) ASSERT_EQ(d[j], d0[j]) << "ignored row got a gradient";
  }
};

TEST_P(SoftmaxXentTest, OddSizesMatchReference) { Check(14, 13, 3.0f); }
TEST_P(SoftmaxXentTest, ParallelSizesMatchReference) { Check(301, 257, 5.0f); }
TEST_P(SoftmaxXentTest, LargeLogitsDoNotOverflow) { Check(9, 50, 300.0f); }

TEST_P(SoftmaxXentTest, FiniteDifferences) {
  const int N = 4, V = 6;
  FVec logits = testing::Random(N * V, 11, -2.0f, 2.0f);
  auto targets = testing::RandomTokens(N, V, 12);
  targets[2] = -1;
  FVec losses(N), probs(N * V);
  const float dloss = 0.5f;
  auto loss = [&] {
    be().SoftmaxCrossEntropyForward(losses.data(), probs.data(), logits.data(), targets.data(), N,
                                    V);
    double s = 0;
    for (float l : losses) s += l;
    return s * dloss;
  };
  loss();
  FVec d(N * V, 0.0f);
  be().SoftmaxCrossEntropyBackward(d.data(), probs.data(), targets.data(), dloss, N, V);
  EXPECT_TRUE(testing::AllCloseScaled(d, testing::NumericalGrad(logits, loss), 2e-3));
}

ANVIL_THREADS_PARAMS(SoftmaxXentTest);

}  // namespace
}  // namespace anvil::kernels
