// conv2d (oneDNN, NHWC, PyTorch weights) against the float64 reference over
// strides, paddings, kernel sizes (3x3, strided 3x3, 1x1, 4x4 patchify,
// rectangular) and odd sizes; += semantics of every gradient and the
// accumulate_dx=false overwrite; finite differences on x, weight and bias;
// BF16 against fp32 on bf16-rounded inputs; 1-3 threads.
#include "kernels/ops/conv.h"

#include "tests/kernels/bf16_compare.h"
#include "tests/kernels/reference_image.h"
#include "tests/kernels/test_util.h"

namespace anvil::kernels {
namespace {
using ref::ConvShape;
using testing::AllClose;
using testing::AllCloseScaled;
using testing::FVec;

Conv2dParams ParamsOf(const ConvShape& s) {
  return Conv2dParams{.stride_h = s.sh, .stride_w = s.sw, .pad_h = s.ph, .pad_w = s.pw};
}
size_t XSize(const ConvShape& s) { return static_cast<size_t>(s.B) * s.H * s.W * s.C; }
size_t YSize(const ConvShape& s) { return static_cast<size_t>(s.B) * s.OH() * s.OW() * s.OC; }
size_t WSize(const ConvShape& s) { return static_cast<size_t>(s.OC) * s.C * s.KH * s.KW; }

struct ConvViews {
  TensorView x, y, w, b;
};
ConvViews F32Views(const ConvShape& s, const FVec& x, const FVec& y, const FVec& w, const FVec& b) {
  return {View(x.data(), {s.B, s.H, s.W, s.C}), View(y.data(), {s.B, s.OH(), s.OW(), s.OC}),
          View(w.data(), {s.OC, s.C, s.KH, s.KW}),
          b.empty() ? TensorView{} : View(b.data(), {s.OC})};
}

class ConvTest : public testing::CpuKernelTest {
 protected:
  void Check(const ConvShape& s, bool with_bias) {
    Device& d = device();
    const FVec x = testing::Random(XSize(s), 1), w = testing::Random(WSize(s), 2);
    const FVec b = with_bias ? testing::Random(s.OC, 3) : FVec();
    FVec y(YSize(s));
    const ConvViews v = F32Views(s, x, y, w, b);
    Conv2dForward(d, v.y, v.x, v.w, v.b, ParamsOf(s));
    const ref::Vec ry = ref::Conv2dForward(testing::ToD(x), testing::ToD(w), testing::ToD(b), s);
    EXPECT_TRUE(AllClose(y, ry, 1e-5, 1e-4));

    const FVec dy = testing::Random(YSize(s), 4);
    ref::Vec rdx, rdw, rdb;
    ref::Conv2dBackward(rdx, rdw, rdb, testing::ToD(dy), testing::ToD(x), testing::ToD(w), s);
    const FVec dx0 = testing::Random(x.size(), 5), dw0 = testing::Random(w.size(), 6),
               db0 = testing::Random(s.OC, 7);
    FVec dx = dx0, dw = dw0, db = db0;
    const TensorView dyv = View(dy.data(), {s.B, s.OH(), s.OW(), s.OC});
    for (int k = 1; k <= 2; ++k) {
      Conv2dBackward(
          d, View(dx.data(), {s.B, s.H, s.W, s.C}), View(dw.data(), {s.OC, s.C, s.KH, s.KW}),
          with_bias ? View(db.data(), {s.OC}) : TensorView{}, dyv, v.x, v.w, ParamsOf(s));
      EXPECT_TRUE(AllCloseScaled(dx, testing::PlusScaled(dx0, rdx, k), 1e-5)) << "call " << k;
      EXPECT_TRUE(AllCloseScaled(dw, testing::PlusScaled(dw0, rdw, k), 1e-5)) << "call " << k;
      if (with_bias) {
        EXPECT_TRUE(AllCloseScaled(db, testing::PlusScaled(db0, rdb, k), 1e-5)) << "call " << k;
      }
    }
    // accumulate_dx = false overwrites dx; dbias alone (no dweight) still accumulates.
    Conv2dParams over = ParamsOf(s);
    over.accumulate_dx = false;
    FVec db2 = db0;
    Conv2dBackward(d, View(dx.data(), {s.B, s.H, s.W, s.C}), TensorView{}, View(db2.data(), {s.OC}),
                   dyv, v.x, v.w, over);
    EXPECT_TRUE(AllCloseScaled(dx, rdx, 1e-5));
    EXPECT_TRUE(AllCloseScaled(db2, testing::PlusScaled(db0, rdb, 1), 1e-5));
  }
};

TEST_P(ConvTest, Same3x3OddSizes) { Check({2, 7, 9, 5, 6, 3, 3, 1, 1, 1, 1}, true); }
TEST_P(ConvTest, Stride2Downsample) { Check({2, 9, 7, 8, 16, 3, 3, 2, 2, 1, 1}, true); }
TEST_P(ConvTest, Stride2EvenNoBias) { Check({3, 8, 8, 16, 16, 3, 3, 2, 2, 1, 1}, false); }
TEST_P(ConvTest, Pointwise1x1) { Check({2, 8, 5, 16, 12, 1, 1, 1, 1, 0, 0}, true); }
TEST_P(ConvTest, Patchify4x4Stride4) { Check({2, 8, 12, 3, 16, 4, 4, 4, 4, 0, 0}, true); }
TEST_P(ConvTest, RectangularKernelStrideAndPadding) {
  Check({1, 6, 10, 4, 5, 5, 3, 1, 2, 2, 1}, true);
}
TEST_P(ConvTest, SingleInputChannel) { Check({3, 11, 13, 1, 8, 3, 3, 1, 1, 1, 1}, true); }
TEST_P(ConvTest, ValidPaddingLargerBatch) { Check({4, 16, 16, 32, 32, 3, 3, 1, 1, 0, 0}, true); }

TEST_P(ConvTest, FiniteDifferences) {
  Device& d = device();
  for (const ConvShape s :
       {ConvShape{1, 5, 4, 3, 2, 3, 3, 2, 2, 1, 1}, ConvShape{2, 3, 4, 2, 3, 2, 2, 1, 1, 0, 1}}) {
    FVec x = testing::Random(XSize(s), 11), w = testing::Random(WSize(s), 12),
         b = testing::Random(s.OC, 13);
    const FVec r = testing::Random(YSize(s), 14);
    FVec y(YSize(s));
    const ConvViews v = F32Views(s, x, y, w, b);
    auto loss = [&] {
      Conv2dForward(d, v.y, v.x, v.w, v.b, ParamsOf(s));
      return testing::Dot(y, r);
    };
    FVec dx(x.size(), 0.f), dw(w.size(), 0.f), db(s.OC, 0.f);
    Conv2dBackward(d, View(dx.data(), {s.B, s.H, s.W, s.C}),
                   View(dw.data(), {s.OC, s.C, s.KH, s.KW}), View(db.data(), {s.OC}),
                   View(r.data(), {s.B, s.OH(), s.OW(), s.OC}), v.x, v.w, ParamsOf(s));
    EXPECT_TRUE(AllCloseScaled(dx, testing::NumericalGrad(x, loss), 5e-3));
    EXPECT_TRUE(AllCloseScaled(dw, testing::NumericalGrad(w, loss), 5e-3));
    EXPECT_TRUE(AllCloseScaled(db, testing::NumericalGrad(b, loss), 5e-3));
  }
}

// BF16 x/weights/dout (bf16 products, fp32 accumulation) against the fp32 op
// on the same rounded values; bf16 and fp32 outputs; fp32 weights with bf16
// x; bf16 dx accumulated.
TEST_P(ConvTest, Bf16MatchesFp32OnRoundedInputs) {
  using testing::B16;
  using testing::Bf16Close;
  using testing::FromBf16;
  using testing::Rounded;
  using testing::ToBf16;
  Device& d = device();
  for (const ConvShape s :
       {ConvShape{2, 9, 7, 8, 16, 3, 3, 2, 2, 1, 1}, ConvShape{2, 16, 16, 32, 32, 3, 3, 1, 1, 1, 1},
        ConvShape{2, 8, 8, 3, 16, 4, 4, 4, 4, 0, 0}}) {
    const FVec x = Rounded(testing::Random(XSize(s), 1)), w = Rounded(testing::Random(WSize(s), 2)),
               b = Rounded(testing::Random(s.OC, 3)), dy = Rounded(testing::Random(YSize(s), 4)),
               dx0 = Rounded(testing::Random(XSize(s), 5));
    const int64_t Kf = int64_t{s.C} * s.KH * s.KW, Kd = int64_t{s.OC} * s.KH * s.KW,
                  Kw = int64_t{s.B} * s.OH() * s.OW();
    // fp32 reference.
    FVec y(YSize(s)), dx = dx0, dw(WSize(s), 0.f), db(s.OC, 0.f);
    const ConvViews v = F32Views(s, x, y, w, b);
    const TensorView xs4 = View(x.data(), {s.B, s.H, s.W, s.C});
    Conv2dForward(d, v.y, v.x, v.w, v.b, ParamsOf(s));
    Conv2dBackward(d, View(dx.data(), {s.B, s.H, s.W, s.C}),
                   View(dw.data(), {s.OC, s.C, s.KH, s.KW}), View(db.data(), {s.OC}),
                   View(dy.data(), {s.B, s.OH(), s.OW(), s.OC}), xs4, v.w, ParamsOf(s));
    const testing::U16 xb = ToBf16(x), wb = ToBf16(w), bb = ToBf16(b), dyb = ToBf16(dy);
    const TensorView xv = B16(xb, {s.B, s.H, s.W, s.C}), wv = B16(wb, {s.OC, s.C, s.KH, s.KW});
    testing::U16 yb(YSize(s));
    FVec yf(YSize(s)), yf2(YSize(s));
    Conv2dForward(d, B16(yb, {s.B, s.OH(), s.OW(), s.OC}), xv, wv, B16(bb, {s.OC}), ParamsOf(s));
    EXPECT_TRUE(Bf16Close(FromBf16(yb), y, Kf, true));
    Conv2dForward(d, View(yf.data(), {s.B, s.OH(), s.OW(), s.OC}), xv, wv, View(b.data(), {s.OC}),
                  ParamsOf(s));
    EXPECT_TRUE(Bf16Close(yf, y, Kf, false));
    // fp32 weights (bf16-representable) with bf16 x: converted in the reorder.
    Conv2dForward(d, View(yf2.data(), {s.B, s.OH(), s.OW(), s.OC}), xv, v.w, TensorView{},
                  ParamsOf(s));
    FVec y_nobias = y;
    for (size_t i = 0; i < y.size(); ++i) y_nobias[i] -= b[i % s.OC];
    EXPECT_TRUE(Bf16Close(yf2, y_nobias, Kf, false));

    testing::U16 dxb = ToBf16(dx0);
    FVec dwb(WSize(s), 0.f), dbb(s.OC, 0.f);
    Conv2dBackward(d, B16(dxb, {s.B, s.H, s.W, s.C}), View(dwb.data(), {s.OC, s.C, s.KH, s.KW}),
                   View(dbb.data(), {s.OC}), B16(dyb, {s.B, s.OH(), s.OW(), s.OC}), xv, wv,
                   ParamsOf(s));
    EXPECT_TRUE(Bf16Close(FromBf16(dxb), dx, Kd, true));
    EXPECT_TRUE(Bf16Close(dwb, dw, Kw, false));
    EXPECT_TRUE(Bf16Close(dbb, db, Kw, false));
  }
}

TEST_P(ConvTest, PrimitivesAreCachedAcrossCalls) {
  // Same shape twice, different data: the cached primitive must pick up the
  // new pointers (a stale handle would reproduce the first result).
  Device& d = device();
  const ConvShape s{2, 6, 6, 4, 4, 3, 3, 1, 1, 1, 1};
  for (uint32_t seed : {21u, 22u}) {
    const FVec x = testing::Random(XSize(s), seed), w = testing::Random(WSize(s), seed + 10);
    FVec y(YSize(s));
    const ConvViews v = F32Views(s, x, y, w, FVec());
    Conv2dForward(d, v.y, v.x, v.w, v.b, ParamsOf(s));
    EXPECT_TRUE(
        AllClose(y, ref::Conv2dForward(testing::ToD(x), testing::ToD(w), {}, s), 1e-5, 1e-4));
  }
}

ANVIL_THREADS_PARAMS(ConvTest);

TEST(ConvDeathTest, WrongOutputShapeIsOneLine) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto dev = MakeCpuDevice(1);
  FVec x(1 * 5 * 5 * 2), w(3 * 2 * 3 * 3), y(1 * 5 * 5 * 3);
  EXPECT_DEATH(Conv2dForward(*dev, View(y.data(), {1, 4, 5, 3}), View(x.data(), {1, 5, 5, 2}),
                             View(w.data(), {3, 2, 3, 3}), TensorView{}, Conv2dSquare(1, 1)),
               "op conv.conv2d_forward: out must be \\(B,OH,OW,OC\\)");
}

}  // namespace
}  // namespace anvil::kernels
