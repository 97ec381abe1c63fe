// The image family (GroupNorm, nearest 2x upsampling, per-sample channel
// bias, adaLN modulate and gate) against float64 references: += semantics,
// strided (B,C) views cut from one (B,6C) tensor (columns outside the view
// must stay untouched), finite differences for every input, BF16 against
// fp32 on rounded inputs, 1-3 threads. Sizes include ones above the
// parallel threshold (32768 elements) so 2 and 3 threads really split work.
#include "kernels/ops/image.h"
#include "tests/kernels/bf16_compare.h"
#include "tests/kernels/reference_image.h"
#include "tests/kernels/test_util.h"

namespace anvil::kernels {
namespace {
using testing::AllClose;
using testing::AllCloseScaled;
using testing::DVec;
using testing::FVec;

class ImageOpsTest : public testing::CpuKernelTest {
 protected:
  void CheckGroupNorm(int B, int N, int C, int G) {
    Device& d = device();
    const GroupNormParams p{.groups = G, .eps = 1e-5f};
    const FVec x = testing::Random(static_cast<size_t>(B) * N * C, 1, -2.0f, 3.0f);
    const FVec w = testing::Random(C, 2, 0.5f, 1.5f), b = testing::Random(C, 3);
    FVec y(x.size()), mean(B * G), rstd(B * G);
    GroupNormForward(d, View(y.data(), {B, N, C}), View(mean.data(), {B, G}),
                     View(rstd.data(), {B, G}), View(x.data(), {B, N, C}), View(w.data(), {C}),
                     View(b.data(), {C}), p);
    ref::Vec ry, rm, rr;
    ref::GroupNormForward(ry, rm, rr, testing::ToD(x), testing::ToD(w), testing::ToD(b), B, N, C, G,
                          1e-5);
    EXPECT_TRUE(AllClose(y, ry, 1e-5, 1e-4));
    EXPECT_TRUE(AllClose(mean, rm, 1e-6, 1e-5));
    EXPECT_TRUE(AllClose(rstd, rr, 1e-6, 1e-4));

    const FVec dy = testing::Random(x.size(), 4);
    ref::Vec rdx, rdw, rdb;
    ref::GroupNormBackward(rdx, rdw, rdb, testing::ToD(dy), testing::ToD(x), testing::ToD(w), B, N,
                           C, G, 1e-5);
    const FVec dx0 = testing::Random(x.size(), 5), dw0 = testing::Random(C, 6),
               db0 = testing::Random(C, 7);
    FVec dx = dx0, dw = dw0, db = db0;
    for (int k = 1; k <= 2; ++k) {
      GroupNormBackward(d, View(dx.data(), {B, N, C}), View(dw.data(), {C}), View(db.data(), {C}),
                        View(dy.data(), {B, N, C}), View(x.data(), {B, N, C}), View(w.data(), {C}),
                        View(mean.data(), {B, G}), View(rstd.data(), {B, G}), p);
      EXPECT_TRUE(AllCloseScaled(dx, testing::PlusScaled(dx0, rdx, k), 1e-5)) << "call " << k;
      EXPECT_TRUE(AllCloseScaled(dw, testing::PlusScaled(dw0, rdw, k), 1e-5)) << "call " << k;
      EXPECT_TRUE(AllCloseScaled(db, testing::PlusScaled(db0, rdb, k), 1e-5)) << "call " << k;
    }
  }
};

TEST_P(ImageOpsTest, GroupNormSmall) { CheckGroupNorm(2, 12, 8, 4); }
TEST_P(ImageOpsTest, GroupNormTwoChannelsPerGroup) { CheckGroupNorm(3, 49, 64, 32); }
TEST_P(ImageOpsTest, GroupNormOneGroupAndOneChannelGroups) {
  CheckGroupNorm(2, 9, 6, 1);
  CheckGroupNorm(2, 9, 6, 6);
}
TEST_P(ImageOpsTest, GroupNormParallelSizes) { CheckGroupNorm(5, 256, 64, 8); }

TEST_P(ImageOpsTest, GroupNormFiniteDifferences) {
  Device& d = device();
  const int B = 2, N = 5, C = 6, G = 3;
  const GroupNormParams p{.groups = G, .eps = 1e-5f};
  FVec x = testing::Random(B * N * C, 11, -1.0f, 2.0f);
  FVec w = testing::Random(C, 12, 0.5f, 1.5f), b = testing::Random(C, 13);
  const FVec r = testing::Random(B * N * C, 14);
  FVec y(B * N * C), mean(B * G), rstd(B * G);
  auto loss = [&] {
    GroupNormForward(d, View(y.data(), {B, N, C}), View(mean.data(), {B, G}),
                     View(rstd.data(), {B, G}), View(x.data(), {B, N, C}), View(w.data(), {C}),
                     View(b.data(), {C}), p);
    return testing::Dot(y, r);
  };
  loss();
  FVec dx(B * N * C, 0.f), dw(C, 0.f), db(C, 0.f);
  GroupNormBackward(d, View(dx.data(), {B, N, C}), View(dw.data(), {C}), View(db.data(), {C}),
                    View(r.data(), {B, N, C}), View(x.data(), {B, N, C}), View(w.data(), {C}),
                    View(mean.data(), {B, G}), View(rstd.data(), {B, G}), p);
  EXPECT_TRUE(AllCloseScaled(dx, testing::NumericalGrad(x, loss), 5e-3));
  EXPECT_TRUE(AllCloseScaled(dw, testing::NumericalGrad(w, loss), 5e-3));
  EXPECT_TRUE(AllCloseScaled(db, testing::NumericalGrad(b, loss), 5e-3));
}

// Nearest 2x: every output equals its source exactly; backward sums 2x2
// blocks onto dx.
TEST_P(ImageOpsTest, Upsample2xForwardBackward) {
  Device& d = device();
  for (auto [B, H, W, C] : {std::tuple{2, 3, 5, 7}, std::tuple{4, 16, 16, 64}}) {
    const FVec x = testing::Random(static_cast<size_t>(B) * H * W * C, 1);
    FVec y(x.size() * 4);
    Upsample2xForward(d, View(y.data(), {B, 2 * H, 2 * W, C}), View(x.data(), {B, H, W, C}));
    DVec want_y(y.size()), want_dx(x.size());
    const FVec dy = testing::Random(y.size(), 2), dx0 = testing::Random(x.size(), 3);
    for (int b = 0; b < B; ++b)
      for (int i = 0; i < 2 * H; ++i)
        for (int j = 0; j < 2 * W; ++j)
          for (int c = 0; c < C; ++c) {
            const size_t o = ((static_cast<size_t>(b) * 2 * H + i) * 2 * W + j) * C + c;
            const size_t s = ((static_cast<size_t>(b) * H + i / 2) * W + j / 2) * C + c;
            want_y[o] = x[s];
            want_dx[s] += dy[o];
          }
    EXPECT_EQ(y, FVec(want_y.begin(), want_y.end()));  // exact copies
    FVec dx = dx0;
    Upsample2xBackward(d, View(dx.data(), {B, H, W, C}), View(dy.data(), {B, 2 * H, 2 * W, C}));
    EXPECT_TRUE(AllClose(dx, testing::PlusScaled(dx0, want_dx, 1), 1e-6, 1e-6));
  }
}

// Per-sample vectors live in column block `block` of a (B, 6C) tensor.
TensorView Block(const FVec& wide, int B, int C, int block) {
  return Strided(wide.data() + block * C, DType::kF32, {B, C}, {6 * C, 1});
}
// Asserts the columns of `wide` outside block `block` equal `before`'s.
void ExpectOtherBlocksUntouched(const FVec& wide, const FVec& before, int B, int C, int block) {
  for (int b = 0; b < B; ++b)
    for (int j = 0; j < 6 * C; ++j) {
      if (j / C == block) continue;
      ASSERT_EQ(wide[b * 6 * C + j], before[b * 6 * C + j]) << "b " << b << " col " << j;
    }
}

TEST_P(ImageOpsTest, ChannelBiasFromStridedView) {
  Device& d = device();
  for (auto [B, N, C] : {std::tuple{3, 10, 5}, std::tuple{4, 300, 64}}) {
    const FVec emb = testing::Random(static_cast<size_t>(B) * 6 * C, 1);
    const FVec x0 = testing::Random(static_cast<size_t>(B) * N * C, 2);
    FVec x = x0;
    AddChannelBias(d, View(x.data(), {B, N, C}), Block(emb, B, C, 2));
    DVec want(x.size()), want_db(static_cast<size_t>(B) * 6 * C, 0.0);
    for (int b = 0; b < B; ++b)
      for (int n = 0; n < N; ++n)
        for (int c = 0; c < C; ++c) {
          const size_t i = (static_cast<size_t>(b) * N + n) * C + c;
          want[i] = static_cast<double>(x0[i]) + emb[b * 6 * C + 2 * C + c];
          want_db[b * 6 * C + 2 * C + c] += x0[i];  // x0 doubles as dout below
        }
    EXPECT_TRUE(AllClose(x, want, 1e-6, 1e-6));
    const FVec g0 = testing::Random(emb.size(), 3);
    FVec g = g0;
    AddChannelBiasBackward(d, Block(g, B, C, 2), View(x0.data(), {B, N, C}));
    EXPECT_TRUE(AllCloseScaled(g, testing::PlusScaled(g0, want_db, 1), 1e-6));
    ExpectOtherBlocksUntouched(g, g0, B, C, 2);
  }
}

TEST_P(ImageOpsTest, ModulateAndGateFromOneAdaLnTensor) {
  Device& d = device();
  for (auto [B, N, C_] : {std::tuple{2, 7, 12}, std::tuple{4, 256, 48}}) {
    const int C = C_;  // lambdas below capture it (clang 14 cannot capture bindings)
    const size_t n = static_cast<size_t>(B) * N * C;
    const FVec ada = testing::Random(static_cast<size_t>(B) * 6 * C, 1);  // shift|scale|gate x2
    const FVec x = testing::Random(n, 2), dout = testing::Random(n, 3);
    const FVec out0 = testing::Random(n, 4);
    auto col = [&](int b, int block, int c) {
      return static_cast<double>(ada[b * 6 * C + block * C + c]);
    };
    DVec want_y(n), want_res(n), want_dx(n), want_dy(n), want_dada(ada.size(), 0.0);
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < N; ++t)
        for (int c = 0; c < C; ++c) {
          const size_t i = (static_cast<size_t>(b) * N + t) * C + c;
          want_y[i] = x[i] * (1.0 + col(b, 1, c)) + col(b, 0, c);
          want_res[i] = out0[i] + col(b, 2, c) * x[i];
          want_dx[i] = dout[i] * (1.0 + col(b, 1, c));
          want_dy[i] = col(b, 2, c) * dout[i];
          want_dada[b * 6 * C + 0 * C + c] += dout[i];         // dshift
          want_dada[b * 6 * C + 1 * C + c] += dout[i] * x[i];  // dscale
          want_dada[b * 6 * C + 2 * C + c] += dout[i] * x[i];  // dgate (y = x)
        }
    FVec y(n);
    ModulateForward(d, View(y.data(), {B, N, C}), View(x.data(), {B, N, C}), Block(ada, B, C, 1),
                    Block(ada, B, C, 0));
    EXPECT_TRUE(AllClose(y, want_y, 1e-6, 1e-6));
    FVec res = out0;
    GatedResidualForward(d, View(res.data(), {B, N, C}), View(x.data(), {B, N, C}),
                         Block(ada, B, C, 2));
    EXPECT_TRUE(AllClose(res, want_res, 1e-6, 1e-6));

    const FVec dada0 = testing::Random(ada.size(), 5), dx0 = testing::Random(n, 6);
    FVec dada = dada0, dx = dx0, dyv = dx0;
    ModulateBackward(d, View(dx.data(), {B, N, C}), Block(dada, B, C, 1), Block(dada, B, C, 0),
                     View(dout.data(), {B, N, C}), View(x.data(), {B, N, C}), Block(ada, B, C, 1));
    GatedResidualBackward(d, View(dyv.data(), {B, N, C}), Block(dada, B, C, 2),
                          View(dout.data(), {B, N, C}), View(x.data(), {B, N, C}),
                          Block(ada, B, C, 2));
    EXPECT_TRUE(AllCloseScaled(dx, testing::PlusScaled(dx0, want_dx, 1), 1e-6));
    EXPECT_TRUE(AllCloseScaled(dyv, testing::PlusScaled(dx0, want_dy, 1), 1e-6));
    EXPECT_TRUE(AllCloseScaled(dada, testing::PlusScaled(dada0, want_dada, 1), 1e-5));
    // Blocks 3..5 belong to nobody here.
    for (int b = 0; b < B; ++b)
      for (int j = 3 * C; j < 6 * C; ++j) ASSERT_EQ(dada[b * 6 * C + j], dada0[b * 6 * C + j]);
  }
}

// Finite differences through modulate -> gate -> upsample -> channel bias
// chained on one small image, every input perturbed.
TEST_P(ImageOpsTest, ChainFiniteDifferences) {
  Device& d = device();
  const int B = 2, H = 2, W = 3, C = 4, N = H * W;
  FVec x = testing::Random(B * N * C, 1), ada = testing::Random(B * 6 * C, 2);
  const FVec r = testing::Random(B * 4 * N * C, 3), res0 = testing::Random(B * N * C, 4);
  FVec m(B * N * C), res(B * N * C), up(B * 4 * N * C);
  auto loss = [&] {
    ModulateForward(d, View(m.data(), {B, N, C}), View(x.data(), {B, N, C}), Block(ada, B, C, 1),
                    Block(ada, B, C, 0));
    res = res0;
    GatedResidualForward(d, View(res.data(), {B, N, C}), View(m.data(), {B, N, C}),
                         Block(ada, B, C, 2));
    Upsample2xForward(d, View(up.data(), {B, 2 * H, 2 * W, C}), View(res.data(), {B, H, W, C}));
    AddChannelBias(d, View(up.data(), {B, 4 * N, C}), Block(ada, B, C, 3));
    return testing::Dot(up, r);
  };
  loss();
  FVec dada(ada.size(), 0.f), dres(res.size(), 0.f), dm(m.size(), 0.f), dx(x.size(), 0.f);
  AddChannelBiasBackward(d, Block(dada, B, C, 3), View(r.data(), {B, 4 * N, C}));
  Upsample2xBackward(d, View(dres.data(), {B, H, W, C}), View(r.data(), {B, 2 * H, 2 * W, C}));
  GatedResidualBackward(d, View(dm.data(), {B, N, C}), Block(dada, B, C, 2),
                        View(dres.data(), {B, N, C}), View(m.data(), {B, N, C}),
                        Block(ada, B, C, 2));
  ModulateBackward(d, View(dx.data(), {B, N, C}), Block(dada, B, C, 1), Block(dada, B, C, 0),
                   View(dm.data(), {B, N, C}), View(x.data(), {B, N, C}), Block(ada, B, C, 1));
  EXPECT_TRUE(AllCloseScaled(dx, testing::NumericalGrad(x, loss), 5e-3));
  EXPECT_TRUE(AllCloseScaled(dada, testing::NumericalGrad(ada, loss), 5e-3));
}

TEST_P(ImageOpsTest, Bf16MatchesFp32OnRoundedInputs) {
  using testing::B16;
  using testing::Bf16Close;
  using testing::FromBf16;
  using testing::Rounded;
  using testing::ToBf16;
  Device& d = device();
  const int B = 3, H = 8, W = 8, C = 32, N = H * W, G = 8;
  const size_t n = static_cast<size_t>(B) * N * C;
  const FVec x = Rounded(testing::Random(n, 1, -2.0f, 3.0f)), dy = Rounded(testing::Random(n, 2));
  const FVec w = Rounded(testing::Random(C, 3, 0.5f, 1.5f)), bias = Rounded(testing::Random(C, 4));
  const FVec v = Rounded(testing::Random(static_cast<size_t>(B) * C, 5));
  const testing::U16 xb = ToBf16(x), dyb = ToBf16(dy), wb = ToBf16(w), bb = ToBf16(bias),
                     vb = ToBf16(v);
  const GroupNormParams p{.groups = G};
  // GroupNorm: bf16 x, weight, bias, out, dx; fp32 statistics and dw, db.
  FVec y(n), mean(B * G), rstd(B * G), dx(n, 0.f), dw(C, 0.f), db(C, 0.f);
  GroupNormForward(d, View(y.data(), {B, N, C}), View(mean.data(), {B, G}),
                   View(rstd.data(), {B, G}), View(x.data(), {B, N, C}), View(w.data(), {C}),
                   View(bias.data(), {C}), p);
  GroupNormBackward(d, View(dx.data(), {B, N, C}), View(dw.data(), {C}), View(db.data(), {C}),
                    View(dy.data(), {B, N, C}), View(x.data(), {B, N, C}), View(w.data(), {C}),
                    View(mean.data(), {B, G}), View(rstd.data(), {B, G}), p);
  testing::U16 yb(n), dxb(n, 0);
  FVec mean2(B * G), rstd2(B * G), dw2(C, 0.f), db2(C, 0.f);
  GroupNormForward(d, B16(yb, {B, N, C}), View(mean2.data(), {B, G}), View(rstd2.data(), {B, G}),
                   B16(xb, {B, N, C}), B16(wb, {C}), B16(bb, {C}), p);
  EXPECT_TRUE(Bf16Close(FromBf16(yb), y, N * C / G, true));
  EXPECT_TRUE(Bf16Close(rstd2, rstd, N * C / G, false));
  GroupNormBackward(d, B16(dxb, {B, N, C}), View(dw2.data(), {C}), View(db2.data(), {C}),
                    B16(dyb, {B, N, C}), B16(xb, {B, N, C}), B16(wb, {C}),
                    View(mean.data(), {B, G}), View(rstd.data(), {B, G}), p);
  EXPECT_TRUE(Bf16Close(FromBf16(dxb), dx, N * C / G, true));
  EXPECT_TRUE(Bf16Close(dw2, dw, B * N, false));
  EXPECT_TRUE(Bf16Close(db2, db, B * N, false));

  // Upsample, modulate (bf16 x, scale, shift), gate into an fp32 residual.
  FVec up(4 * n);
  testing::U16 upb(4 * n);
  Upsample2xForward(d, View(up.data(), {B, 2 * H, 2 * W, C}), View(x.data(), {B, H, W, C}));
  Upsample2xForward(d, B16(upb, {B, 2 * H, 2 * W, C}), B16(xb, {B, H, W, C}));
  EXPECT_EQ(FromBf16(upb), up);  // copies of exactly representable values
  FVec m(n), res(n, 0.5f), res2(n, 0.5f), dsc(B * C, 0.f), dsc2(B * C, 0.f);
  testing::U16 mb(n);
  ModulateForward(d, View(m.data(), {B, N, C}), View(x.data(), {B, N, C}), View(v.data(), {B, C}),
                  View(v.data(), {B, C}));
  ModulateForward(d, B16(mb, {B, N, C}), B16(xb, {B, N, C}), B16(vb, {B, C}), B16(vb, {B, C}));
  EXPECT_TRUE(Bf16Close(FromBf16(mb), m, 1, true));
  GatedResidualForward(d, View(res.data(), {B, N, C}), View(x.data(), {B, N, C}),
                       View(v.data(), {B, C}));
  GatedResidualForward(d, View(res2.data(), {B, N, C}), B16(xb, {B, N, C}), B16(vb, {B, C}));
  EXPECT_TRUE(Bf16Close(res2, res, 1, false));
  ModulateBackward(d, TensorView{}, View(dsc.data(), {B, C}), TensorView{},
                   View(dy.data(), {B, N, C}), View(x.data(), {B, N, C}), View(v.data(), {B, C}));
  ModulateBackward(d, TensorView{}, View(dsc2.data(), {B, C}), TensorView{}, B16(dyb, {B, N, C}),
                   B16(xb, {B, N, C}), B16(vb, {B, C}));
  EXPECT_TRUE(Bf16Close(dsc2, dsc, N, false));
}

ANVIL_THREADS_PARAMS(ImageOpsTest);

}  // namespace
}  // namespace anvil::kernels
