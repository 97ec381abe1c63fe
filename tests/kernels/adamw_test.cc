// AdamW vs the reference formula over several steps (bias correction with a
// 1-based step, decoupled weight decay, grad_scale folded in).
#include "tests/kernels/reference.h"
#include "tests/kernels/test_util.h"

namespace anvil::kernels {
namespace {
using testing::AllClose;
using testing::FVec;

class AdamWTest : public testing::CpuKernelTest {};

TEST_P(AdamWTest, MatchesReferenceOverSteps) {
  for (size_t n : {size_t{13}, size_t{100003}}) {
    FVec param = testing::Random(n, 1), m(n, 0.0f), v(n, 0.0f);
    ref::Vec rparam = testing::ToD(param), rm(n, 0.0), rv(n, 0.0);
    AdamWParams p;
    p.lr = 1e-2f;
    p.weight_decay = 0.1f;
    p.grad_scale = 0.5f;
    for (int step = 1; step <= 5; ++step) {
      const FVec grad = testing::Random(n, 10 + step, -2.0f, 2.0f);
      p.step = step;
      be().AdamW(param.data(), grad.data(), m.data(), v.data(), n, p);
      ref::AdamW(rparam, testing::ToD(grad), rm, rv, p);
      ASSERT_TRUE(AllClose(param, rparam, 1e-6, 1e-5)) << "n " << n << " step " << step;
      ASSERT_TRUE(AllClose(m, rm, 1e-7, 1e-5)) << "step " << step;
      ASSERT_TRUE(AllClose(v, rv, 1e-8, 1e-5)) << "step " << step;
    }
  }
}

TEST_P(AdamWTest, FirstStepMovesByLearningRate) {
  // With zero state and no decay, step 1 moves each parameter by ~lr *
  // sign(grad), whatever the gradient's magnitude.
  FVec param(4, 1.0f), m(4, 0.0f), v(4, 0.0f);
  const FVec grad = {3.0f, -0.001f, 100.0f, -7.0f};
  AdamWParams p;
  p.lr = 0.1f;
  be().AdamW(param.data(), grad.data(), m.data(), v.data(), 4, p);
  EXPECT_NEAR(param[0], 0.9f, 1e-5);
  EXPECT_NEAR(param[1], 1.1f, 1e-4);
  EXPECT_NEAR(param[2], 0.9f, 1e-5);
  EXPECT_NEAR(param[3], 1.1f, 1e-5);
}

ANVIL_THREADS_PARAMS(AdamWTest);

}  // namespace
}  // namespace anvil::kernels
