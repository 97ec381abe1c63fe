// Every op family in BF16 against the same op in fp32 on the bf16-rounded
// inputs, through the family dispatchers on the CPU device, 1-3 threads.
//
// Tolerance: a BF16 output is the fp32 result rounded once to bf16's 8-bit
// significand, so its error is at most 2^-9 of its own magnitude; the fp32
// reference and the bf16 path may also accumulate in different orders
// (GEMM blocking), which costs a few fp32 ulps of the reduction, i.e.
// K * 2^-24 * max|term| for a length-K reduction. We allow
//   |got - want| <= 2^-8 * |want| + (K * 2^-22 + 2^-12) * max|want|,
// twice the rounding bound plus the reduction term (K = 1 for elementwise
// ops). An fp32 OUTPUT of a bf16 op (e.g. logits, weight gradients) gets the
// reduction term only.
//
// Attention on CPUs with AVX512-BF16 also rounds its probabilities P and
// score gradients dS to bf16 as operands of the products that follow
// (kernels/cpu/flash_attention_pairs.cc, as FlashAttention and PyTorch's bf16
// CPU kernel do): 2^-9 of each term, at most 2^-9 of the sum of the terms'
// magnitudes, which in these tests stays within 8x max|want|. Its outputs
// get that, 2^-6 * max|want|, on top.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cpu/bf16_pairs.h"
#include "kernels/cpu/convert.h"
#include "kernels/ops/activation.h"
#include "kernels/ops/attention.h"
#include "kernels/ops/embedding.h"
#include "kernels/ops/norm.h"
#include "tests/kernels/test_util.h"

namespace anvil::kernels {
namespace {
using testing::FVec;
using U16 = std::vector<uint16_t>;

U16 ToBf16(const FVec& v) {
  U16 r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = F32ToBF16(v[i]);
  return r;
}
FVec FromBf16(const U16& v) {
  FVec r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = BF16ToF32(v[i]);
  return r;
}
FVec Rounded(const FVec& v) { return FromBf16(ToBf16(v)); }
TensorView B16(const U16& v, std::initializer_list<int64_t> shape) {
  return View(v.data(), DType::kBF16, shape);
}

::testing::AssertionResult Close(const FVec& got, const FVec& want, int64_t K, bool bf16_out,
                                 bool bf16_operands = false) {
  double mx = 0;
  for (float w : want) mx = std::max(mx, std::fabs(static_cast<double>(w)));
  const double floor = (K * std::ldexp(1.0, -22) + std::ldexp(1.0, -12) +
                        (bf16_operands ? std::ldexp(1.0, -6) : 0.0)) *
                       std::max(mx, 1e-6);
  const double rel = bf16_out ? std::ldexp(1.0, -8) : 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(err <= rel * std::fabs(want[i]) + floor)) {
      return ::testing::AssertionFailure() << "element " << i << ": got " << got[i] << ", want "
                                           << want[i] << " (max |want| " << mx << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

class Bf16OpsTest : public testing::CpuKernelTest {};

TEST_P(Bf16OpsTest, LinearForwardAndBackward) {
  Device& d = device();
  for (auto [N, C, OC] : {std::tuple{7, 33, 65}, std::tuple{256, 96, 288}}) {
    const FVec x = Rounded(testing::Random(N * C, 1)), w = Rounded(testing::Random(OC * C, 2)),
               b = Rounded(testing::Random(OC, 3)), dy = Rounded(testing::Random(N * OC, 4));
    const U16 xb = ToBf16(x), wb = ToBf16(w), bb = ToBf16(b), dyb = ToBf16(dy);
    // fp32 reference on the rounded values.
    FVec y(N * OC), dx(N * C), dw = testing::Random(OC * C, 5), db = testing::Random(OC, 6);
    FVec dw0 = dw, db0 = db;
    be().MatmulForward(y.data(), x.data(), w.data(), b.data(), N, C, OC);
    LinearBackward(d, View(dx.data(), {N, C}), View(dw.data(), {OC, C}), View(db.data(), {OC}),
                   View(dy.data(), {N, OC}), View(x.data(), {N, C}), View(w.data(), {OC, C}),
                   {.accumulate_dx = false});
    // bf16 out and fp32 out.
    U16 yb(N * OC);
    FVec yf(N * OC);
    LinearForward(d, B16(yb, {N, OC}), B16(xb, {N, C}), B16(wb, {OC, C}), B16(bb, {OC}));
    LinearForward(d, View(yf.data(), {N, OC}), B16(xb, {N, C}), B16(wb, {OC, C}), B16(bb, {OC}));
    EXPECT_TRUE(Close(FromBf16(yb), y, C, true));
    EXPECT_TRUE(Close(yf, y, C, false));
    // accumulate into fp32: out = 1 + x W^T + b
    FVec acc(N * OC, 1.0f), want_acc = y;
    for (float& v : want_acc) v += 1.0f;
    LinearForward(d, View(acc.data(), {N, OC}), B16(xb, {N, C}), B16(wb, {OC, C}), B16(bb, {OC}),
                  {.accumulate = true});
    EXPECT_TRUE(Close(acc, want_acc, C, false));
    U16 dxb(N * C);
    FVec dwg = dw0, dbg = db0;
    LinearBackward(d, B16(dxb, {N, C}), View(dwg.data(), {OC, C}), View(dbg.data(), {OC}),
                   B16(dyb, {N, OC}), B16(xb, {N, C}), B16(wb, {OC, C}), {.accumulate_dx = false});
    EXPECT_TRUE(Close(FromBf16(dxb), dx, OC, true));
    EXPECT_TRUE(Close(dwg, dw, N, false));
    EXPECT_TRUE(Close(dbg, db, N, false));
  }
}

// LayerNormParams::eps reaches the kernel (the DiT uses 1e-6, GPT 1e-5);
// an absent bias is zero.
TEST_P(Bf16OpsTest, LayerNormHonoursEps) {
  Device& d = device();
  const int N = 3, C = 4;
  FVec x = {1, -1, 1, -1, 2, -2, 2, -2, 0, 0, 3, -3}, w(C, 1.f), y(N * C), mean(N), rstd(N);
  const double var[N] = {1.0, 4.0, 4.5};
  for (float eps : {1e-6f, 0.25f}) {
    LayerNormForward(d, View(y.data(), {N, C}), View(mean.data(), {N}), View(rstd.data(), {N}),
                     View(x.data(), {N, C}), View(w.data(), {C}), {}, {.eps = eps});
    for (int i = 0; i < N; ++i) {
      const double want = 1.0 / std::sqrt(var[i] + eps);
      EXPECT_NEAR(rstd[i], want, 1e-6 * want) << "eps " << eps << " row " << i;
      EXPECT_NEAR(y[i * C + 2], x[i * C + 2] * want, 1e-5) << "eps " << eps << " row " << i;
    }
  }
}

TEST_P(Bf16OpsTest, LayerNormGeluXentEmbedding) {
  Device& d = device();
  const int N = 70, C = 48, V = 37;
  const FVec x = Rounded(testing::Random(N * C, 1, -2.0f, 3.0f));
  const FVec w = Rounded(testing::Random(C, 2, 0.5f, 1.5f)), b = Rounded(testing::Random(C, 3));
  const U16 xb = ToBf16(x), wb = ToBf16(w), bb = ToBf16(b);
  FVec y(N * C), mean(N), rstd(N), mean2(N), rstd2(N);
  be().LayerNormForward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C);
  U16 yb(N * C);
  LayerNormForward(d, B16(yb, {N, C}), View(mean2.data(), {N}), View(rstd2.data(), {N}),
                   B16(xb, {N, C}), B16(wb, {C}), B16(bb, {C}));
  EXPECT_TRUE(Close(FromBf16(yb), y, C, true));
  EXPECT_TRUE(Close(rstd2, rstd, C, false));
  // Backward: bf16 dout and x, bf16 dx accumulated onto a start value.
  const FVec dy = Rounded(testing::Random(N * C, 4));
  const FVec dx0 = Rounded(testing::Random(N * C, 5));
  FVec dx = dx0, dw(C, 0.f), db(C, 0.f);
  be().LayerNormBackward(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(),
                         mean.data(), rstd.data(), N, C);
  U16 dxb = ToBf16(dx0);
  FVec dw2(C, 0.f), db2(C, 0.f);
  LayerNormBackward(d, B16(dxb, {N, C}), View(dw2.data(), {C}), View(db2.data(), {C}),
                    B16(ToBf16(dy), {N, C}), B16(xb, {N, C}), B16(wb, {C}), View(mean.data(), {N}),
                    View(rstd.data(), {N}));
  EXPECT_TRUE(Close(FromBf16(dxb), dx, C, true));
  EXPECT_TRUE(Close(dw2, dw, N, false));
  EXPECT_TRUE(Close(db2, db, N, false));

  // GELU forward and backward (accumulating).
  FVec g(N * C), dg(N * C, 0.f);
  be().GeluForward(g.data(), x.data(), g.size());
  be().GeluBackward(dg.data(), x.data(), dy.data(), g.size());
  U16 gb(N * C), dgb(N * C, 0);
  GeluForward(d, B16(gb, {N * C}), B16(xb, {N * C}));
  GeluBackward(d, B16(dgb, {N * C}), B16(xb, {N * C}), B16(ToBf16(dy), {N * C}));
  EXPECT_TRUE(Close(FromBf16(gb), g, 1, true));
  EXPECT_TRUE(Close(FromBf16(dgb), dg, 1, true));

  // Cross-entropy on bf16 logits (fp32 probs and losses), bf16 dlogits.
  const FVec logits = Rounded(testing::Random(N * V, 6, -4.0f, 4.0f));
  std::vector<int32_t> t = testing::RandomTokens(N, V, 7);
  t[3] = -1;
  FVec loss(N), probs(N * V), loss2(N), probs2(N * V), dl(N * V, 0.f);
  be().SoftmaxCrossEntropyForward(loss.data(), probs.data(), logits.data(), t.data(), N, V);
  SoftmaxCrossEntropyForward(d, View(loss2.data(), {N}), View(probs2.data(), {N, V}),
                             B16(ToBf16(logits), {N, V}), View(t.data(), {N}));
  EXPECT_TRUE(Close(loss2, loss, V, false));
  be().SoftmaxCrossEntropyBackward(dl.data(), probs.data(), t.data(), 0.5f, N, V);
  U16 dlb(N * V, 0);
  SoftmaxCrossEntropyBackward(d, B16(dlb, {N, V}), View(probs.data(), {N, V}), View(t.data(), {N}),
                              0.5f);
  EXPECT_TRUE(Close(FromBf16(dlb), dl, 1, true));

  // Embedding: bf16 tables, fp32 output (the residual stream).
  const int B = 2, T = 35;
  const FVec wte = Rounded(testing::Random(V * C, 8)), wpe = Rounded(testing::Random(T * C, 9));
  const auto ids = testing::RandomTokens(B * T, V, 10);
  FVec e(B * T * C), e2(B * T * C);
  be().EncoderForward(e.data(), ids.data(), wte.data(), wpe.data(), B, T, C, V);
  EmbeddingForward(d, View(e2.data(), {B, T, C}), View(ids.data(), {B, T}),
                   B16(ToBf16(wte), {V, C}), B16(ToBf16(wpe), {T, C}));
  EXPECT_EQ(e2, e);  // one add of two exactly widened values: identical
}

TEST_P(Bf16OpsTest, AttentionMatchesFp32OnRoundedInputs) {
  Device& d = device();
  const int B = 2, T = 67, NH = 4, HS = 16, C = NH * HS;
  const FVec qkv = Rounded(testing::Random(B * T * 3 * C, 1, -1.5f, 1.5f));
  const FVec dy = Rounded(testing::Random(B * T * C, 2));
  const U16 qkvb = ToBf16(qkv), dyb = ToBf16(dy);
  auto views = [&](DType dt, void* x, void* o) {
    return std::pair{PackedQkv(x, dt, B, T, C, NH), View(o, dt, {B, T, NH, HS})};
  };
  FVec x = qkv, out(B * T * C), dqkv(qkv.size(), 0.f), lse(B * NH * T), dyc = dy;
  U16 xb = qkvb, outb(B * T * C), dqkvb(qkv.size(), 0), dybc = dyb;
  FVec lseb(B * NH * T);
  const auto [v32, o32] = views(DType::kF32, x.data(), out.data());
  const auto [v16, o16] = views(DType::kBF16, xb.data(), outb.data());
  AttentionForward(d, o32, View(lse.data(), {B, NH, T}), v32.q, v32.k, v32.v);
  AttentionForward(d, o16, View(lseb.data(), {B, NH, T}), v16.q, v16.k, v16.v);
  const bool operands = cpu::Bf16PairsAvailable();  // P and dS rounded (file comment)
  EXPECT_TRUE(Close(FromBf16(outb), out, T, true, operands));
  EXPECT_TRUE(Close(lseb, lse, HS, false));
  // Backward reads out (D = rowsum(dout * out)): both runs get the bf16
  // forward's rounded output, so the comparison isolates backward.
  const FVec rounded_out = FromBf16(outb);
  std::copy(rounded_out.begin(), rounded_out.end(), out.begin());  // o32 keeps pointing at out
  const QkvViews d32 = PackedQkv(dqkv.data(), DType::kF32, B, T, C, NH);
  const QkvViews d16 = PackedQkv(dqkvb.data(), DType::kBF16, B, T, C, NH);
  AttentionBackward(d, d32.q, d32.k, d32.v, View(dyc.data(), {B, T, NH, HS}), v32.q, v32.k, v32.v,
                    o32, View(lse.data(), {B, NH, T}));
  AttentionBackward(d, d16.q, d16.k, d16.v, View(dybc.data(), DType::kBF16, {B, T, NH, HS}), v16.q,
                    v16.k, v16.v, o16, View(lseb.data(), {B, NH, T}));
  // Two chained products after the probabilities: the reduction over T twice.
  EXPECT_TRUE(Close(FromBf16(dqkvb), dqkv, 2 * T, true, operands));
}

// The Llama ops: RMSNorm (fp32 residual in, bf16 out; bf16 dout into an
// fp32 dx, the model's mix, and all-bf16), RoPE in place on a bf16 view,
// SwiGLU on the halves of one bf16 (N,2F) buffer.
TEST_P(Bf16OpsTest, RmsNormRopeSwiGlu) {
  Device& d = device();
  const int N = 70, C = 48;
  const FVec x = Rounded(testing::Random(N * C, 1, -2.0f, 3.0f));
  const FVec w = Rounded(testing::Random(C, 2, 0.5f, 1.5f));
  const U16 xb = ToBf16(x), wb = ToBf16(w);
  FVec y(N * C), rstd(N), rstd2(N);
  RmsNormForward(d, View(y.data(), {N, C}), View(rstd.data(), {N}), View(x.data(), {N, C}),
                 View(w.data(), {C}));
  U16 yb(N * C);
  RmsNormForward(d, B16(yb, {N, C}), View(rstd2.data(), {N}), View(x.data(), {N, C}),
                 B16(wb, {C}));
  EXPECT_TRUE(Close(FromBf16(yb), y, C, true));
  EXPECT_TRUE(Close(rstd2, rstd, C, false));
  const FVec dy = Rounded(testing::Random(N * C, 4));
  const FVec dx0 = Rounded(testing::Random(N * C, 5));
  FVec dx = dx0, dw(C, 0.f);
  RmsNormBackward(d, View(dx.data(), {N, C}), View(dw.data(), {C}), View(dy.data(), {N, C}),
                  View(x.data(), {N, C}), View(w.data(), {C}), View(rstd.data(), {N}));
  FVec dx2 = dx0, dw2(C, 0.f);  // fp32 dx from bf16 dout and weight
  RmsNormBackward(d, View(dx2.data(), {N, C}), View(dw2.data(), {C}), B16(ToBf16(dy), {N, C}),
                  View(x.data(), {N, C}), B16(wb, {C}), View(rstd.data(), {N}));
  EXPECT_TRUE(Close(dx2, dx, C, false));
  EXPECT_TRUE(Close(dw2, dw, N, false));
  U16 dxb = ToBf16(dx0);  // all bf16
  FVec dw3(C, 0.f);
  RmsNormBackward(d, B16(dxb, {N, C}), View(dw3.data(), {C}), B16(ToBf16(dy), {N, C}),
                  B16(xb, {N, C}), B16(wb, {C}), View(rstd.data(), {N}));
  EXPECT_TRUE(Close(FromBf16(dxb), dx, C, true));
  EXPECT_TRUE(Close(dw3, dw, N, false));

  // RoPE: forward and backward on q inside a packed (B,T,3*NH*hd) buffer.
  const int B = 2, T = 9, NH = 3, hd = 16, W = 3 * NH * hd;
  const FVec qkv = Rounded(testing::Random(B * T * W, 6, -2.0f, 2.0f));
  FVec q32 = qkv;
  U16 q16 = ToBf16(qkv);
  auto heads = [&](void* p, DType dt) {
    return Strided(p, dt, {B, T, NH, hd}, {int64_t{T} * W, W, hd, 1});
  };
  RopeForward(d, heads(q32.data(), DType::kF32));
  RopeForward(d, heads(q16.data(), DType::kBF16));
  EXPECT_TRUE(Close(FromBf16(q16), q32, 2, true));
  q32 = qkv;
  q16 = ToBf16(qkv);
  RopeBackward(d, heads(q32.data(), DType::kF32));
  RopeBackward(d, heads(q16.data(), DType::kBF16));
  EXPECT_TRUE(Close(FromBf16(q16), q32, 2, true));

  // SwiGLU on gate | up halves, bf16 out and bf16 accumulated gradients.
  const int F = 40;
  const FVec gu = Rounded(testing::Random(N * 2 * F, 7, -6.0f, 6.0f));
  const FVec dout = Rounded(testing::Random(N * F, 8));
  const U16 gub = ToBf16(gu), doutb = ToBf16(dout);
  auto half = [&](const void* p, DType dt, int off) {
    return Offset(Strided(p, dt, {N, F}, {2 * F, 1}), off);
  };
  FVec o(N * F), dgu = Rounded(testing::Random(N * 2 * F, 9));
  U16 ob(N * F), dgub = ToBf16(dgu);
  SwiGluForward(d, View(o.data(), {N, F}), half(gu.data(), DType::kF32, 0),
                half(gu.data(), DType::kF32, F));
  SwiGluForward(d, B16(ob, {N, F}), half(gub.data(), DType::kBF16, 0),
                half(gub.data(), DType::kBF16, F));
  EXPECT_TRUE(Close(FromBf16(ob), o, 1, true));
  SwiGluBackward(d, half(dgu.data(), DType::kF32, 0), half(dgu.data(), DType::kF32, F),
                 half(gu.data(), DType::kF32, 0), half(gu.data(), DType::kF32, F),
                 View(dout.data(), {N, F}));
  SwiGluBackward(d, half(dgub.data(), DType::kBF16, 0), half(dgub.data(), DType::kBF16, F),
                 half(gub.data(), DType::kBF16, 0), half(gub.data(), DType::kBF16, F),
                 B16(doutb, {N, F}));
  EXPECT_TRUE(Close(FromBf16(dgub), dgu, 1, true));
}

ANVIL_THREADS_PARAMS(Bf16OpsTest);

}  // namespace
}  // namespace anvil::kernels
