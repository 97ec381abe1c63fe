// SiLU, MSE loss and the sinusoidal timestep embedding (kernels/ops/
// diffusion_ops.h) against float64 references, += semantics, finite
// differences, BF16 against fp32 on rounded inputs, 1-3 threads.
#include "kernels/ops/diffusion_ops.h"

#include <cmath>

#include "tests/kernels/bf16_compare.h"
#include "tests/kernels/reference_image.h"
#include "tests/kernels/test_util.h"

namespace anvil::kernels {
namespace {
using testing::AllClose;
using testing::AllCloseScaled;
using testing::DVec;
using testing::FVec;

class DiffusionOpsTest : public testing::CpuKernelTest {};

double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

TEST_P(DiffusionOpsTest, SiluMatchesReference) {
  Device& d = device();
  for (size_t n : {size_t{37}, size_t{100003}}) {
    const FVec x = testing::Random(n, 1, -8.0f, 8.0f), dy = testing::Random(n, 2);
    const FVec dx0 = testing::Random(n, 3);
    DVec want(n), want_dx(n);
    for (size_t i = 0; i < n; ++i) {
      const double s = Sigmoid(x[i]);
      want[i] = x[i] * s;
      want_dx[i] = dy[i] * s * (1.0 + x[i] * (1.0 - s));
    }
    FVec y(n), dx = dx0;
    SiluForward(d, Flat(y.data(), n), Flat(x.data(), n));
    EXPECT_TRUE(AllClose(y, want, 1e-6, 1e-6));
    for (int k = 1; k <= 2; ++k) {
      SiluBackward(d, Flat(dx.data(), n), Flat(x.data(), n), Flat(dy.data(), n));
      EXPECT_TRUE(AllClose(dx, testing::PlusScaled(dx0, want_dx, k), 1e-6, 1e-5)) << "call " << k;
    }
    FVec inplace = x;  // out may alias x
    SiluForward(d, Flat(inplace.data(), n), Flat(inplace.data(), n));
    EXPECT_EQ(inplace, y);
  }
}

TEST_P(DiffusionOpsTest, SiluFiniteDifferences) {
  Device& d = device();
  const size_t n = 23;
  FVec x = testing::Random(n, 4, -4.0f, 4.0f);
  const FVec r = testing::Random(n, 5);
  FVec y(n), dx(n, 0.f);
  auto loss = [&] {
    SiluForward(d, Flat(y.data(), n), Flat(x.data(), n));
    return testing::Dot(y, r);
  };
  SiluBackward(d, Flat(dx.data(), n), Flat(x.data(), n), Flat(r.data(), n));
  EXPECT_TRUE(AllCloseScaled(dx, testing::NumericalGrad(x, loss), 5e-3));
}

TEST_P(DiffusionOpsTest, MseLossMatchesReferenceAndFiniteDifferences) {
  Device& d = device();
  for (size_t n : {size_t{1}, size_t{4095}, size_t{64 * 32 * 32 + 5}}) {
    FVec pred = testing::Random(n, 6, -2.0f, 2.0f);
    const FVec target = testing::Random(n, 7);
    double want = 0;
    for (size_t i = 0; i < n; ++i)
      want +=
          (pred[i] - static_cast<double>(target[i])) * (pred[i] - static_cast<double>(target[i]));
    want /= static_cast<double>(n);
    float loss = -1;
    MseLossForward(d, View(&loss, {1}), View(pred.data(), {static_cast<int64_t>(n)}),
                   View(target.data(), {static_cast<int64_t>(n)}));
    EXPECT_NEAR(loss, want, 1e-6 * want + 1e-9) << "n " << n;
    const FVec g0 = testing::Random(n, 8);
    FVec g = g0;
    DVec want_g(n);
    for (size_t i = 0; i < n; ++i)
      want_g[i] = 0.75 * 2.0 * (pred[i] - static_cast<double>(target[i])) / n;
    MseLossBackward(d, Flat(g.data(), n), Flat(pred.data(), n), Flat(target.data(), n), 0.75f);
    EXPECT_TRUE(AllClose(g, testing::PlusScaled(g0, want_g, 1), 1e-7, 1e-6));
  }
  const size_t n = 9;
  FVec pred = testing::Random(n, 9), g(n, 0.f);
  const FVec target = testing::Random(n, 10);
  auto loss = [&] {
    float l = 0;
    MseLossForward(d, View(&l, {1}), Flat(pred.data(), n), Flat(target.data(), n));
    return static_cast<double>(l);
  };
  MseLossBackward(d, Flat(g.data(), n), Flat(pred.data(), n), Flat(target.data(), n), 1.0f);
  EXPECT_TRUE(AllCloseScaled(g, testing::NumericalGrad(pred, loss), 5e-3));
}

TEST_P(DiffusionOpsTest, MseLossIsTheSameForAnyThreadCount) {
  const size_t n = 300001;
  const FVec pred = testing::Random(n, 11), target = testing::Random(n, 12);
  float mine = 0, one = 0;
  MseLossForward(device(), View(&mine, {1}), Flat(pred.data(), n), Flat(target.data(), n));
  auto single = MakeCpuDevice(1);
  MseLossForward(*single, View(&one, {1}), Flat(pred.data(), n), Flat(target.data(), n));
  EXPECT_EQ(mine, one);
}

TEST_P(DiffusionOpsTest, TimestepEmbeddingMatchesReference) {
  Device& d = device();
  const int B = 6;
  const std::vector<int32_t> ti = {0, 1, 17, 250, 999, 500};
  const FVec tf = {0.0f, 1.0f, 17.0f, 250.0f, 999.0f, 500.5f};
  struct Case {
    int dim;
    TimestepEmbeddingParams p;
  };
  for (const Case& c : {Case{128, {}}, Case{33, {}},
                        Case{64, {.flip_sin_to_cos = true, .downscale_freq_shift = 0.0f}},
                        Case{10, {.max_period = 100.0f, .scale = 2.0f}}}) {
    for (bool as_float : {false, true}) {
      DVec t(B);
      for (int b = 0; b < B; ++b) t[b] = as_float ? tf[b] : ti[b];
      const DVec want = ref::TimestepEmbedding(t, c.dim, c.p.max_period, c.p.flip_sin_to_cos,
                                               c.p.downscale_freq_shift, c.p.scale);
      FVec out(static_cast<size_t>(B) * c.dim, 7.0f);
      const TensorView tv = as_float ? View(tf.data(), {B}) : View(ti.data(), {B});
      TimestepEmbedding(d, View(out.data(), {B, c.dim}), tv, c.p);
      // fp32 evaluation: the argument t * freq carries ~|t| * 2^-22 of error.
      EXPECT_TRUE(AllClose(out, want, 2000 * c.p.scale * std::ldexp(1.0, -22), 0))
          << "dim " << c.dim << " float t " << as_float;
      if (c.dim % 2 == 1) {
        EXPECT_EQ(out[c.dim - 1], 0.0f);
      }
      testing::U16 ob(out.size());
      TimestepEmbedding(d, testing::B16(ob, {B, c.dim}), tv, c.p);
      EXPECT_EQ(testing::FromBf16(ob), testing::Rounded(out));
    }
  }
}

TEST_P(DiffusionOpsTest, Bf16MatchesFp32OnRoundedInputs) {
  using testing::B16;
  using testing::Bf16Close;
  using testing::FromBf16;
  using testing::Rounded;
  using testing::ToBf16;
  Device& d = device();
  const int64_t n = 70001;
  const FVec x = Rounded(testing::Random(n, 1, -6.0f, 6.0f)), dy = Rounded(testing::Random(n, 2));
  const FVec target = testing::Random(n, 3);
  const testing::U16 xb = ToBf16(x), dyb = ToBf16(dy);
  FVec y(n), dx(n, 0.f);
  SiluForward(d, Flat(y.data(), n), Flat(x.data(), n));
  SiluBackward(d, Flat(dx.data(), n), Flat(x.data(), n), Flat(dy.data(), n));
  testing::U16 yb(n), dxb(n, 0);
  SiluForward(d, B16(yb, {n}), B16(xb, {n}));
  SiluBackward(d, B16(dxb, {n}), B16(xb, {n}), B16(dyb, {n}));
  EXPECT_TRUE(Bf16Close(FromBf16(yb), y, 1, true));
  EXPECT_TRUE(Bf16Close(FromBf16(dxb), dx, 1, true));
  float l32 = 0, l16 = 0;
  MseLossForward(d, View(&l32, {1}), Flat(x.data(), n), Flat(target.data(), n));
  MseLossForward(d, View(&l16, {1}), B16(xb, {n}), Flat(target.data(), n));
  EXPECT_EQ(l16, l32);  // identical fp32 arithmetic on identical (widened) values
  FVec g(n, 0.f);
  testing::U16 gb(n, 0);
  MseLossBackward(d, Flat(g.data(), n), Flat(x.data(), n), Flat(target.data(), n), 1.0f);
  MseLossBackward(d, B16(gb, {n}), B16(xb, {n}), Flat(target.data(), n), 1.0f);
  EXPECT_TRUE(Bf16Close(FromBf16(gb), g, 1, true));
}

ANVIL_THREADS_PARAMS(DiffusionOpsTest);

}  // namespace
}  // namespace anvil::kernels
