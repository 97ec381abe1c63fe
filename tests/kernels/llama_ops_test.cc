// The ops the Llama model adds, in fp32 through the family dispatchers,
// against the float64 reference (reference.cc), with += semantics and
// central finite differences, on 1-3 threads: RMSNorm (norm), rotary
// position embedding on strided q/k views inside a packed qkv buffer
// (embedding), SwiGLU on the two halves of one (N,2F) buffer (activation).
// Their BF16 paths are checked against fp32 in bf16_ops_test.cc.
#include <cmath>
#include <vector>

#include "kernels/ops/activation.h"
#include "kernels/ops/embedding.h"
#include "kernels/ops/norm.h"
#include "tests/kernels/reference.h"
#include "tests/kernels/test_util.h"

namespace anvil::kernels {
namespace {
using testing::AllClose;
using testing::FVec;

class LlamaOpsTest : public testing::CpuKernelTest {};

// ---- RMSNorm ----

void CheckRmsNorm(Device& d, int N, int C) {
  const double eps = 1e-6;
  const FVec x = testing::Random(static_cast<size_t>(N) * C, 1, -2.0f, 3.0f);
  const FVec w = testing::Random(C, 2, 0.5f, 1.5f);
  FVec out(x.size()), rstd(N);
  RmsNormForward(d, View(out.data(), {N, C}), View(rstd.data(), {N}), View(x.data(), {N, C}),
                 View(w.data(), {C}), {.eps = static_cast<float>(eps)});
  ref::Vec rout, rrstd;
  ref::RmsNormForward(rout, rrstd, testing::ToD(x), testing::ToD(w), N, C, eps);
  EXPECT_TRUE(AllClose(out, rout, 1e-5, 1e-5));
  EXPECT_TRUE(AllClose(rstd, rrstd, 1e-6, 1e-5));

  const FVec dout = testing::Random(x.size(), 4);
  ref::Vec rdx, rdw;
  ref::RmsNormBackward(rdx, rdw, testing::ToD(dout), testing::ToD(x), testing::ToD(w), N, C, eps);
  const FVec dx0 = testing::Random(x.size(), 5), dw0 = testing::Random(C, 6);
  FVec dx = dx0, dw = dw0;
  for (int k = 1; k <= 2; ++k) {  // accumulates: twice gives base + 2 * grad
    RmsNormBackward(d, View(dx.data(), {N, C}), View(dw.data(), {C}), View(dout.data(), {N, C}),
                    View(x.data(), {N, C}), View(w.data(), {C}), View(rstd.data(), {N}));
    EXPECT_TRUE(AllClose(dx, testing::PlusScaled(dx0, rdx, k), 1e-5, 1e-4)) << "call " << k;
    EXPECT_TRUE(AllClose(dw, testing::PlusScaled(dw0, rdw, k), 1e-4, 1e-4)) << "call " << k;
  }
}

TEST_P(LlamaOpsTest, RmsNormOddSizes) { CheckRmsNorm(device(), 14, 12); }
TEST_P(LlamaOpsTest, RmsNormParallelSizes) { CheckRmsNorm(device(), 301, 200); }
TEST_P(LlamaOpsTest, RmsNormWideRows) { CheckRmsNorm(device(), 7, 1000); }

TEST_P(LlamaOpsTest, RmsNormFiniteDifferences) {
  Device& d = device();
  const int N = 3, C = 7;
  FVec x = testing::Random(N * C, 11, -1.0f, 2.0f), w = testing::Random(C, 12, 0.5f, 1.5f);
  const FVec r = testing::Random(N * C, 14);
  FVec out(N * C), rstd(N);
  auto loss = [&] {
    RmsNormForward(d, View(out.data(), {N, C}), View(rstd.data(), {N}), View(x.data(), {N, C}),
                   View(w.data(), {C}));
    return testing::Dot(out, r);
  };
  loss();
  FVec dx(N * C, 0.0f), dw(C, 0.0f);
  RmsNormBackward(d, View(dx.data(), {N, C}), View(dw.data(), {C}), View(r.data(), {N, C}),
                  View(x.data(), {N, C}), View(w.data(), {C}), View(rstd.data(), {N}));
  EXPECT_TRUE(testing::AllCloseScaled(dx, testing::NumericalGrad(x, loss), 5e-3));
  EXPECT_TRUE(testing::AllCloseScaled(dw, testing::NumericalGrad(w, loss), 5e-3));
}

// ---- RoPE ----

// q (NH heads) and k (NKV heads) as strided views of a packed (B,T,W) buffer,
// W = (NH + 2 NKV) hd, the layout of the Llama's fused qkv GEMM output.
struct Packed {
  int B, T, NH, NKV, hd;
  int W() const { return (NH + 2 * NKV) * hd; }
  TensorView Heads(float* base, int first_head, int heads) const {
    return Strided(base + first_head * hd, DType::kF32, {B, T, heads, hd},
                   {int64_t{T} * W(), W(), hd, 1});
  }
  // The contiguous (B,T,heads,hd) copy of those heads.
  FVec Gather(const FVec& buf, int first_head, int heads) const {
    FVec r;
    for (int bt = 0; bt < B * T; ++bt) {
      for (int e = 0; e < heads * hd; ++e) r.push_back(buf[bt * W() + first_head * hd + e]);
    }
    return r;
  }
};

void CheckRope(Device& d, Packed p, double theta) {
  const FVec buf0 = testing::Random(static_cast<size_t>(p.B) * p.T * p.W(), 1, -2.0f, 2.0f);
  FVec buf = buf0;
  RopeForward(d, p.Heads(buf.data(), 0, p.NH), {.theta = static_cast<float>(theta)});
  RopeForward(d, p.Heads(buf.data(), p.NH, p.NKV), {.theta = static_cast<float>(theta)});
  const ref::Vec rq = ref::Rope(testing::ToD(p.Gather(buf0, 0, p.NH)), p.B, p.T, p.NH, p.hd, theta,
                                false);
  const ref::Vec rk = ref::Rope(testing::ToD(p.Gather(buf0, p.NH, p.NKV)), p.B, p.T, p.NKV, p.hd,
                                theta, false);
  EXPECT_TRUE(AllClose(p.Gather(buf, 0, p.NH), rq, 1e-6, 1e-5));
  EXPECT_TRUE(AllClose(p.Gather(buf, p.NH, p.NKV), rk, 1e-6, 1e-5));
  // v (the last NKV heads) is untouched.
  EXPECT_EQ(p.Gather(buf, p.NH + p.NKV, p.NKV), p.Gather(buf0, p.NH + p.NKV, p.NKV));
  // Backward = the inverse rotation: it undoes forward, and matches the
  // reference's transpose on arbitrary data.
  RopeBackward(d, p.Heads(buf.data(), 0, p.NH), {.theta = static_cast<float>(theta)});
  EXPECT_TRUE(AllClose(p.Gather(buf, 0, p.NH), testing::ToD(p.Gather(buf0, 0, p.NH)), 1e-5, 1e-5));
  FVec g = buf0;
  RopeBackward(d, p.Heads(g.data(), p.NH, p.NKV), {.theta = static_cast<float>(theta)});
  const ref::Vec rg = ref::Rope(testing::ToD(p.Gather(buf0, p.NH, p.NKV)), p.B, p.T, p.NKV, p.hd,
                                theta, true);
  EXPECT_TRUE(AllClose(p.Gather(g, p.NH, p.NKV), rg, 1e-6, 1e-5));
}

TEST_P(LlamaOpsTest, RopeOnPackedQkvSmall) { CheckRope(device(), {2, 5, 4, 2, 8}, 10000.0); }
// The CPU op caches its cos/sin table: a shorter sequence after a longer one
// (same theta and head size) reads the longer table's first rows.
TEST_P(LlamaOpsTest, RopeShorterAfterLonger) {
  FVec warm(40 * 8, 1.0f);
  RopeForward(device(), View(warm.data(), {1, 40, 1, 8}), {.theta = 10000.0f});
  CheckRope(device(), {2, 5, 4, 2, 8}, 10000.0);
}
TEST_P(LlamaOpsTest, RopeOnPackedQkvParallel) { CheckRope(device(), {2, 64, 8, 2, 64}, 500000.0); }

TEST_P(LlamaOpsTest, RopeFiniteDifferences) {
  Device& d = device();
  const Packed p{2, 3, 2, 1, 6};
  FVec buf = testing::Random(static_cast<size_t>(p.B) * p.T * p.W(), 21, -1.0f, 1.0f);
  const FVec r = testing::Random(buf.size(), 22);
  auto loss = [&] {  // <rope(q) and rope(k) in a copy, r>
    FVec y = buf;
    RopeForward(d, p.Heads(y.data(), 0, p.NH), {.theta = 100.0f});
    RopeForward(d, p.Heads(y.data(), p.NH, p.NKV), {.theta = 100.0f});
    return testing::Dot(y, r);
  };
  FVec g = r;  // d loss / d y; backward rotates the q and k parts in place
  RopeBackward(d, p.Heads(g.data(), 0, p.NH), {.theta = 100.0f});
  RopeBackward(d, p.Heads(g.data(), p.NH, p.NKV), {.theta = 100.0f});
  EXPECT_TRUE(testing::AllCloseScaled(g, testing::NumericalGrad(buf, loss), 5e-3));
}

// ---- SwiGLU ----

void CheckSwiGlu(Device& d, int N, int F) {
  // gate | up: the two halves of one (N, 2F) buffer, as the fused GEMM writes.
  const FVec gu = testing::Random(static_cast<size_t>(N) * 2 * F, 1, -6.0f, 6.0f);
  const TensorView gate = Strided(gu.data(), DType::kF32, {N, F}, {2 * F, 1});
  const TensorView up = Offset(gate, F);
  FVec g, u;
  for (int i = 0; i < N; ++i) {
    g.insert(g.end(), gu.begin() + i * 2 * F, gu.begin() + i * 2 * F + F);
    u.insert(u.end(), gu.begin() + i * 2 * F + F, gu.begin() + (i + 1) * 2 * F);
  }
  FVec out(static_cast<size_t>(N) * F);
  SwiGluForward(d, View(out.data(), {N, F}), gate, up);
  EXPECT_TRUE(AllClose(out, ref::SwiGluForward(testing::ToD(g), testing::ToD(u)), 1e-6, 1e-5));

  const FVec dout = testing::Random(out.size(), 3);
  ref::Vec rdg, rdu;
  ref::SwiGluBackward(rdg, rdu, testing::ToD(g), testing::ToD(u), testing::ToD(dout));
  const FVec dgu0 = testing::Random(gu.size(), 4);
  FVec dgu = dgu0;
  const TensorView dgate = Strided(dgu.data(), DType::kF32, {N, F}, {2 * F, 1});
  ref::Vec want0(gu.size()), want(gu.size());  // interleave the reference halves
  for (int i = 0; i < N; ++i) {
    for (int c = 0; c < F; ++c) {
      want0[i * 2 * F + c] = rdg[i * F + c];
      want0[i * 2 * F + F + c] = rdu[i * F + c];
    }
  }
  for (int k = 1; k <= 2; ++k) {
    SwiGluBackward(d, dgate, Offset(dgate, F), gate, up, View(dout.data(), {N, F}));
    EXPECT_TRUE(AllClose(dgu, testing::PlusScaled(dgu0, want0, k), 1e-5, 1e-5)) << "call " << k;
  }
}

TEST_P(LlamaOpsTest, SwiGluOddSizes) { CheckSwiGlu(device(), 9, 13); }
TEST_P(LlamaOpsTest, SwiGluParallelSizes) { CheckSwiGlu(device(), 130, 344); }

TEST_P(LlamaOpsTest, SwiGluFiniteDifferences) {
  Device& d = device();
  const int N = 3, F = 5;
  FVec gu = testing::Random(N * 2 * F, 31, -3.0f, 3.0f);
  const FVec r = testing::Random(N * F, 32);
  FVec out(N * F);
  const TensorView gate = Strided(gu.data(), DType::kF32, {N, F}, {2 * F, 1});
  auto loss = [&] {
    SwiGluForward(d, View(out.data(), {N, F}), gate, Offset(gate, F));
    return testing::Dot(out, r);
  };
  FVec dgu(gu.size(), 0.0f);
  const TensorView dgate = Strided(dgu.data(), DType::kF32, {N, F}, {2 * F, 1});
  SwiGluBackward(d, dgate, Offset(dgate, F), gate, Offset(gate, F), View(r.data(), {N, F}));
  EXPECT_TRUE(testing::AllCloseScaled(dgu, testing::NumericalGrad(gu, loss), 5e-3));
}

ANVIL_THREADS_PARAMS(LlamaOpsTest);

}  // namespace
}  // namespace anvil::kernels
