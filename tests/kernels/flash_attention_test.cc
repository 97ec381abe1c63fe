// Flash attention (kernels/cpu/flash_attention.h) against today's attention
// (packed causal qkv), a float64 reference written here (non-causal, GQA,
// strided views with padding that must stay untouched, += semantics), finite
// differences, bf16 against fp32 on the same rounded inputs, bitwise
// equality across thread counts, and the scratch bound (no T x T memory).
//
// Tolerances:
//  - fp32 vs today's kernel / the float64 reference: 1e-5 of the tensor's max
//    |value| (both compute in fp32 with FastExp; errors measured ~1e-7..1e-6).
//  - bf16 vs fp32 on the bf16-rounded inputs: the bf16 path computes the same
//    fp32 values and rounds each output once to nearest, so an element may
//    differ by bf16's unit roundoff, 2^-8 of its magnitude (8-bit
//    significand), plus the fp32 accumulation noise, 1e-5 of the max |value|.
//    Gradients are checked after the += into bf16 (round(base + g)).
//    That holds for the widened tiles (kPadded's odd strides always take
//    them); the AVX512-BF16 tiles also round P and dS as operands, and get
//    their own bound (Bf16PairsMatchFp32OnRoundedInputs).
//  - finite differences: 5e-3 of the max |gradient| (fp32 loss, eps = 1e-3).
#include "kernels/cpu/flash_attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "kernels/cpu/bf16_pairs.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/ops.h"
#include "tests/kernels/alloc_counter.h"
#include "tests/kernels/test_util.h"

namespace anvil::kernels {
namespace {

using cpu::AttentionDims;
using cpu::HeadsView;
using testing::DVec;
using testing::FVec;

// ---------------------------------------------------------------------------
// Float64 reference over canonical (B,T,H,HS) arrays.

size_t Idx(const AttentionDims& d, int H, int b, int t, int h, int e) {
  return ((static_cast<size_t>(b) * d.T + t) * H + h) * d.HS + e;
}

double RefScale(const AttentionDims& d) {  // the kernel's fp32 scale, exactly
  return d.scale != 0 ? d.scale : 1.0f / std::sqrt(static_cast<float>(d.HS));
}

// Probabilities of query row (b,h,t) over keys [0, n), and n.
int RefProbs(const AttentionDims& d, const DVec& q, const DVec& k, int b, int h, int t, DVec& p,
             double* lse) {
  const int g = h / (d.NH / d.NKV), n = d.causal ? t + 1 : d.T;
  const double scale = RefScale(d);
  p.assign(n, 0.0);
  double mx = -1e300;
  for (int j = 0; j < n; ++j) {
    double s = 0;
    for (int e = 0; e < d.HS; ++e) s += q[Idx(d, d.NH, b, t, h, e)] * k[Idx(d, d.NKV, b, j, g, e)];
    p[j] = s * scale;
    mx = std::max(mx, p[j]);
  }
  double sum = 0;
  for (int j = 0; j < n; ++j) sum += (p[j] = std::exp(p[j] - mx));
  for (int j = 0; j < n; ++j) p[j] /= sum;
  if (lse != nullptr) *lse = mx + std::log(sum);
  return n;
}

void RefForward(const AttentionDims& d, const DVec& q, const DVec& k, const DVec& v, DVec& out,
                DVec& lse) {
  out.assign(static_cast<size_t>(d.B) * d.T * d.NH * d.HS, 0.0);
  lse.assign(static_cast<size_t>(d.B) * d.NH * d.T, 0.0);
  DVec p;
  for (int b = 0; b < d.B; ++b)
    for (int h = 0; h < d.NH; ++h)
      for (int t = 0; t < d.T; ++t) {
        const int g = h / (d.NH / d.NKV);
        const int n =
            RefProbs(d, q, k, b, h, t, p, &lse[(static_cast<size_t>(b) * d.NH + h) * d.T + t]);
        for (int j = 0; j < n; ++j)
          for (int e = 0; e < d.HS; ++e)
            out[Idx(d, d.NH, b, t, h, e)] += p[j] * v[Idx(d, d.NKV, b, j, g, e)];
      }
}

// The gradients themselves (not accumulated).
void RefBackward(const AttentionDims& d, const DVec& dout, const DVec& q, const DVec& k,
                 const DVec& v, DVec& dq, DVec& dk, DVec& dv) {
  dq.assign(q.size(), 0.0);
  dk.assign(k.size(), 0.0);
  dv.assign(v.size(), 0.0);
  const double scale = RefScale(d);
  DVec p, dp;
  for (int b = 0; b < d.B; ++b)
    for (int h = 0; h < d.NH; ++h)
      for (int t = 0; t < d.T; ++t) {
        const int g = h / (d.NH / d.NKV);
        const int n = RefProbs(d, q, k, b, h, t, p, nullptr);
        dp.assign(n, 0.0);
        double dsum = 0;
        for (int j = 0; j < n; ++j) {
          for (int e = 0; e < d.HS; ++e) {
            dp[j] += dout[Idx(d, d.NH, b, t, h, e)] * v[Idx(d, d.NKV, b, j, g, e)];
            dv[Idx(d, d.NKV, b, j, g, e)] += p[j] * dout[Idx(d, d.NH, b, t, h, e)];
          }
          dsum += p[j] * dp[j];
        }
        for (int j = 0; j < n; ++j) {
          const double ds = p[j] * (dp[j] - dsum) * scale;
          for (int e = 0; e < d.HS; ++e) {
            dq[Idx(d, d.NH, b, t, h, e)] += ds * k[Idx(d, d.NKV, b, j, g, e)];
            dk[Idx(d, d.NKV, b, j, g, e)] += ds * q[Idx(d, d.NH, b, t, h, e)];
          }
        }
      }
}

// ---------------------------------------------------------------------------
// A (B,T,H,HS) tensor in one of several strided layouts, fp32 or bf16. Every
// element outside the view holds a sentinel, so stray writes are caught.

enum class Layout { kDense, kPadded, kPaddedEven, kHeadMajor };

constexpr float kSentinel = 12288.0f;  // exact in bf16

class Heads {
 public:
  Heads(int B, int T, int H, int HS, Layout layout, DType dt)
      : B_(B), T_(T), H_(H), HS_(HS), dt_(dt) {
    switch (layout) {
      case Layout::kDense:
        sh_ = HS, st_ = int64_t{H} * HS, sb_ = int64_t{T} * st_;
        break;
      case Layout::kPadded:  // (B,T,H,HS) with gaps after each head, row and batch
        sh_ = HS + 3, st_ = H * sh_ + 5, sb_ = T * st_ + 7;
        break;
      case Layout::kPaddedEven:  // the same with even gaps (AVX512-BF16 tiles take these)
        sh_ = HS + 2, st_ = H * sh_ + 4, sb_ = T * st_ + 6;
        break;
      case Layout::kHeadMajor:  // (B,H,T,HS), as a permuted tensor would be
        st_ = HS + 1, sh_ = T * st_ + 2, sb_ = H * sh_ + 3;
        break;
    }
    const size_t n = static_cast<size_t>(B * sb_ + 16);
    if (dt_ == DType::kF32) {
      f_.assign(n, kSentinel);
    } else {
      u_.assign(n, F32ToBF16(kSentinel));
    }
  }
  HeadsView View() {
    return {dt_ == DType::kF32 ? static_cast<void*>(f_.data()) : static_cast<void*>(u_.data()), sb_,
            st_, sh_};
  }
  size_t Off(int b, int t, int h) const { return static_cast<size_t>(b * sb_ + t * st_ + h * sh_); }
  size_t Elems() const { return static_cast<size_t>(B_) * T_ * H_ * HS_; }
  // From / to canonical (B,T,H,HS) order; Set rounds to bf16 for bf16.
  void Set(const FVec& c) {
    size_t i = 0;
    for (int b = 0; b < B_; ++b)
      for (int t = 0; t < T_; ++t)
        for (int h = 0; h < H_; ++h)
          for (int e = 0; e < HS_; ++e, ++i) {
            if (dt_ == DType::kF32) {
              f_[Off(b, t, h) + e] = c[i];
            } else {
              u_[Off(b, t, h) + e] = F32ToBF16(c[i]);
            }
          }
  }
  FVec Get() const {
    FVec c;
    c.reserve(Elems());
    for (int b = 0; b < B_; ++b)
      for (int t = 0; t < T_; ++t)
        for (int h = 0; h < H_; ++h)
          for (int e = 0; e < HS_; ++e)
            c.push_back(dt_ == DType::kF32 ? f_[Off(b, t, h) + e]
                                           : BF16ToF32(u_[Off(b, t, h) + e]));
    return c;
  }
  // Elements outside the view still hold the sentinel.
  bool PaddingIntact() const {
    std::vector<bool> in(dt_ == DType::kF32 ? f_.size() : u_.size(), false);
    for (int b = 0; b < B_; ++b)
      for (int t = 0; t < T_; ++t)
        for (int h = 0; h < H_; ++h)
          for (int e = 0; e < HS_; ++e) in[Off(b, t, h) + e] = true;
    for (size_t i = 0; i < in.size(); ++i) {
      const float x = dt_ == DType::kF32 ? f_[i] : BF16ToF32(u_[i]);
      if (!in[i] && x != kSentinel) return false;
    }
    return true;
  }
  // Raw bytes, for bitwise comparisons.
  std::vector<uint8_t> Bytes() const {
    const uint8_t* p = dt_ == DType::kF32 ? reinterpret_cast<const uint8_t*>(f_.data())
                                          : reinterpret_cast<const uint8_t*>(u_.data());
    return {p, p + (dt_ == DType::kF32 ? f_.size() * 4 : u_.size() * 2)};
  }

 private:
  int B_, T_, H_, HS_;
  DType dt_;
  int64_t sb_ = 0, st_ = 0, sh_ = 0;
  FVec f_;
  std::vector<uint16_t> u_;
};

// All tensors of one forward + backward call.
struct Problem {
  Problem(const AttentionDims& d, Layout layout, DType dt)
      : q(d.B, d.T, d.NH, d.HS, layout, dt),
        k(d.B, d.T, d.NKV, d.HS, layout, dt),
        v(d.B, d.T, d.NKV, d.HS, layout, dt),
        out(d.B, d.T, d.NH, d.HS, layout, dt),
        dout(d.B, d.T, d.NH, d.HS, layout, dt),
        dq(d.B, d.T, d.NH, d.HS, layout, dt),
        dk(d.B, d.T, d.NKV, d.HS, layout, dt),
        dv(d.B, d.T, d.NKV, d.HS, layout, dt),
        lse(static_cast<size_t>(d.B) * d.NH * d.T, -7.0f) {}
  void Forward(int nt, const AttentionDims& d, DType dt) {
    cpu::FlashAttentionForward(nt, d, dt, out.View(), q.View(), k.View(), v.View(), lse.data());
  }
  void Backward(int nt, const AttentionDims& d, DType dt) {
    cpu::FlashAttentionBackward(nt, d, dt, dq.View(), dk.View(), dv.View(), dout.View(), q.View(),
                                k.View(), v.View(), out.View(), lse.data());
  }
  Heads q, k, v, out, dout, dq, dk, dv;
  FVec lse;
};

FVec RoundBF16(const FVec& x) {
  FVec r(x.size());
  for (size_t i = 0; i < x.size(); ++i) r[i] = BF16ToF32(F32ToBF16(x[i]));
  return r;
}

DVec Sub(const FVec& a, const FVec& b) {
  DVec r(a.size());
  for (size_t i = 0; i < a.size(); ++i) r[i] = static_cast<double>(a[i]) - b[i];
  return r;
}

double MaxAbs(const DVec& x) {
  double m = 0;
  for (double e : x) m = std::max(m, std::abs(e));
  return m;
}

class FlashAttentionTest : public testing::CpuKernelTest {};

// ---------------------------------------------------------------------------
// fp32 against today's AttentionForward/Backward on packed causal qkv.

void CheckAgainstToday(int nt, int B, int T, int NH, int HS) {
  const int C = NH * HS, C3 = 3 * C;
  const FVec qkv = testing::Random(static_cast<size_t>(B) * T * C3, 21, -1.5f, 1.5f);
  const FVec dout = testing::Random(static_cast<size_t>(B) * T * C, 22);
  FVec out_old(static_cast<size_t>(B) * T * C), att(static_cast<size_t>(B) * NH * T * T);
  FVec datt(att.size()), dqkv_old(qkv.size(), 0.0f);
  cpu::AttentionForward(nt, out_old.data(), att.data(), qkv.data(), B, T, C, NH);
  cpu::AttentionBackward(nt, dqkv_old.data(), datt.data(), dout.data(), qkv.data(), att.data(), B,
                         T, C, NH);

  AttentionDims d;
  d.B = B, d.T = T, d.NH = NH, d.NKV = NH, d.HS = HS, d.causal = true;
  FVec qkv_in = qkv;  // the kernel takes void*; it does not write q/k/v
  FVec out(out_old.size(), 7.0f), dqkv(qkv.size(), 0.0f), lse(static_cast<size_t>(B) * NH * T);
  auto part = [&](float* base, int off) { return HeadsView{base + off, int64_t{T} * C3, C3, HS}; };
  const HeadsView o{out.data(), int64_t{T} * C, C, HS};
  const HeadsView g{const_cast<float*>(dout.data()), int64_t{T} * C, C, HS};
  cpu::FlashAttentionForward(nt, d, DType::kF32, o, part(qkv_in.data(), 0), part(qkv_in.data(), C),
                             part(qkv_in.data(), 2 * C), lse.data());
  EXPECT_TRUE(testing::AllCloseScaled(out, testing::ToD(out_old), 1e-5)) << "T=" << T;
  cpu::FlashAttentionBackward(nt, d, DType::kF32, part(dqkv.data(), 0), part(dqkv.data(), C),
                              part(dqkv.data(), 2 * C), g, part(qkv_in.data(), 0),
                              part(qkv_in.data(), C), part(qkv_in.data(), 2 * C), o, lse.data());
  // q, k and v gradients separately, each within 1e-5 of the max |dqkv|
  // (the whole tensor: at T=1 the q and k gradients are exactly 0, and the
  // kernels give 0 and ~1e-7).
  const double scale = MaxAbs(testing::ToD(dqkv_old));
  for (int p = 0; p < 3; ++p) {
    FVec got, want;
    for (size_t r = 0; r < static_cast<size_t>(B) * T; ++r)
      for (int c = 0; c < C; ++c) {
        got.push_back(dqkv[r * C3 + p * C + c]);
        want.push_back(dqkv_old[r * C3 + p * C + c]);
      }
    EXPECT_TRUE(testing::AllClose(got, testing::ToD(want), 1e-5 * scale, 0))
        << "T=" << T << " part "
        << "qkv"[p];
  }
}

TEST_P(FlashAttentionTest, Fp32MatchesTodaysAttention) {
  for (int T : {1, 7, 64, 65, 257}) CheckAgainstToday(GetParam(), 2, T, 3, 16);
  CheckAgainstToday(GetParam(), 1, 1024, 2, 32);
}

// ---------------------------------------------------------------------------
// fp32 against the float64 reference: non-causal, GQA, strided views, +=.

struct RefCase {
  bool causal;
  int NH, NKV, HS, T;
  Layout layout;
  float scale;
};

void CheckAgainstReference(int nt, const RefCase& c) {
  AttentionDims d;
  d.B = 2, d.T = c.T, d.NH = c.NH, d.NKV = c.NKV, d.HS = c.HS, d.causal = c.causal,
  d.scale = c.scale;
  Problem pb(d, c.layout, DType::kF32);
  const FVec q = testing::Random(pb.q.Elems(), 31, -1.5f, 1.5f);
  const FVec k = testing::Random(pb.k.Elems(), 32, -1.5f, 1.5f);
  const FVec v = testing::Random(pb.v.Elems(), 33);
  const FVec dout = testing::Random(pb.q.Elems(), 34);
  const FVec dq0 = testing::Random(pb.q.Elems(), 35);
  const FVec dk0 = testing::Random(pb.k.Elems(), 36);
  const FVec dv0 = testing::Random(pb.v.Elems(), 37);
  pb.q.Set(q), pb.k.Set(k), pb.v.Set(v), pb.dout.Set(dout);
  pb.dq.Set(dq0), pb.dk.Set(dk0), pb.dv.Set(dv0);

  DVec rout, rlse, rdq, rdk, rdv;
  RefForward(d, testing::ToD(q), testing::ToD(k), testing::ToD(v), rout, rlse);
  RefBackward(d, testing::ToD(dout), testing::ToD(q), testing::ToD(k), testing::ToD(v), rdq, rdk,
              rdv);
  pb.Forward(nt, d, DType::kF32);
  const std::string what = std::string(c.causal ? "causal" : "full") +
                           " NH=" + std::to_string(c.NH) + " NKV=" + std::to_string(c.NKV) +
                           " T=" + std::to_string(c.T);
  EXPECT_TRUE(testing::AllCloseScaled(pb.out.Get(), rout, 1e-5)) << what;
  EXPECT_TRUE(testing::AllClose(pb.lse, rlse, 1e-5, 1e-6)) << what;
  // Twice: the second call must add the same gradient again. The slack beyond
  // 1e-5 max|g| is the fp32 rounding of base + g (|base| <= 1).
  for (int rep = 1; rep <= 2; ++rep) {
    pb.Backward(nt, d, DType::kF32);
    const struct {
      const char* name;
      const Heads& got;
      const FVec& base;
      const DVec& grad;
    } grads[] = {{"dq", pb.dq, dq0, rdq}, {"dk", pb.dk, dk0, rdk}, {"dv", pb.dv, dv0, rdv}};
    for (const auto& g : grads) {
      EXPECT_TRUE(testing::AllClose(g.got.Get(), testing::PlusScaled(g.base, g.grad, rep),
                                    rep * (1e-5 * MaxAbs(g.grad) + 2.5e-7), 0))
          << what << " " << g.name << " call " << rep;
    }
  }
  for (const Heads* h : {&pb.q, &pb.k, &pb.v, &pb.out, &pb.dout, &pb.dq, &pb.dk, &pb.dv})
    EXPECT_TRUE(h->PaddingIntact()) << what;
}

TEST_P(FlashAttentionTest, Fp32MatchesFloat64Reference) {
  const RefCase cases[] = {
      {false, 4, 4, 24, 70, Layout::kPadded, 0.0f},      // non-causal MHA
      {true, 8, 2, 16, 70, Layout::kPadded, 0.0f},       // GQA, group of 4
      {false, 8, 2, 16, 130, Layout::kHeadMajor, 0.0f},  // GQA non-causal, 3 blocks
      {true, 8, 1, 20, 97, Layout::kHeadMajor, 0.3f},    // MQA, custom scale
      {false, 8, 1, 8, 1, Layout::kPadded, 0.0f},        // one token
  };
  for (const RefCase& c : cases) CheckAgainstReference(GetParam(), c);
}

// ---------------------------------------------------------------------------
// Finite differences of loss = sum(out * r) in fp32 (double accumulation).

TEST_P(FlashAttentionTest, FiniteDifferences) {
  for (bool causal : {true, false}) {
    AttentionDims d;
    d.B = 2, d.T = 5, d.NH = 4, d.NKV = 2, d.HS = 3, d.causal = causal;
    const int nt = GetParam();
    FVec q = testing::Random(static_cast<size_t>(d.B) * d.T * d.NH * d.HS, 41);
    FVec k = testing::Random(static_cast<size_t>(d.B) * d.T * d.NKV * d.HS, 42);
    FVec v = testing::Random(k.size(), 43);
    const FVec r = testing::Random(q.size(), 44);
    FVec out(q.size()), lse(static_cast<size_t>(d.B) * d.NH * d.T);
    auto view = [&](FVec& x, int H) {
      return HeadsView{x.data(), int64_t{d.T} * H * d.HS, int64_t{H} * d.HS, d.HS};
    };
    auto loss = [&] {
      cpu::FlashAttentionForward(nt, d, DType::kF32, view(out, d.NH), view(q, d.NH), view(k, d.NKV),
                                 view(v, d.NKV), lse.data());
      return testing::Dot(out, r);
    };
    loss();
    FVec dq(q.size(), 0.0f), dk(k.size(), 0.0f), dv(v.size(), 0.0f), rr = r;
    cpu::FlashAttentionBackward(nt, d, DType::kF32, view(dq, d.NH), view(dk, d.NKV),
                                view(dv, d.NKV), view(rr, d.NH), view(q, d.NH), view(k, d.NKV),
                                view(v, d.NKV), view(out, d.NH), lse.data());
    EXPECT_TRUE(testing::AllCloseScaled(dq, testing::NumericalGrad(q, loss), 5e-3)) << causal;
    EXPECT_TRUE(testing::AllCloseScaled(dk, testing::NumericalGrad(k, loss), 5e-3)) << causal;
    EXPECT_TRUE(testing::AllCloseScaled(dv, testing::NumericalGrad(v, loss), 5e-3)) << causal;
  }
}

// ---------------------------------------------------------------------------
// bf16 against fp32 on the same (bf16-rounded) values.

// |got - want| <= 2^-8 |want| + 1e-5 max|want|: one bf16 rounding of the
// fp32 value plus fp32 accumulation noise (see the file comment).
::testing::AssertionResult Bf16Close(const FVec& got, const FVec& want) {
  const DVec w = testing::ToD(want);
  return testing::AllClose(got, w, 1e-5 * std::max(MaxAbs(w), 1e-6), std::ldexp(1.0, -8));
}

TEST_P(FlashAttentionTest, Bf16MatchesFp32OnRoundedInputs) {
  for (bool causal : {true, false}) {
    AttentionDims d;
    d.B = 2, d.T = 100, d.NH = 4, d.NKV = 2, d.HS = 32, d.causal = causal;
    const int nt = GetParam();
    Problem b16(d, Layout::kPadded, DType::kBF16), f32(d, Layout::kPadded, DType::kF32);
    const FVec q = RoundBF16(testing::Random(b16.q.Elems(), 51, -2.0f, 2.0f));
    const FVec k = RoundBF16(testing::Random(b16.k.Elems(), 52, -2.0f, 2.0f));
    const FVec v = RoundBF16(testing::Random(b16.v.Elems(), 53));
    const FVec dout = RoundBF16(testing::Random(b16.q.Elems(), 54));
    const FVec dq0 = RoundBF16(testing::Random(b16.q.Elems(), 55, -0.1f, 0.1f));
    const FVec dk0 = RoundBF16(testing::Random(b16.k.Elems(), 56, -0.1f, 0.1f));
    const FVec dv0 = RoundBF16(testing::Random(b16.v.Elems(), 57, -0.1f, 0.1f));
    for (Problem* p : {&b16, &f32}) {
      p->q.Set(q), p->k.Set(k), p->v.Set(v), p->dout.Set(dout);
      p->dq.Set(dq0), p->dk.Set(dk0), p->dv.Set(dv0);
    }
    b16.Forward(nt, d, DType::kBF16);
    f32.Forward(nt, d, DType::kF32);
    EXPECT_TRUE(Bf16Close(b16.out.Get(), f32.out.Get())) << causal;
    EXPECT_TRUE(testing::AllClose(b16.lse, testing::ToD(f32.lse), 1e-6, 1e-6)) << causal;
    // Backward reads out: give the fp32 run the bf16 forward's (rounded) output.
    f32.out.Set(b16.out.Get());
    b16.Backward(nt, d, DType::kBF16);
    f32.Backward(nt, d, DType::kF32);
    EXPECT_TRUE(Bf16Close(b16.dq.Get(), f32.dq.Get())) << causal;
    EXPECT_TRUE(Bf16Close(b16.dk.Get(), f32.dk.Get())) << causal;
    EXPECT_TRUE(Bf16Close(b16.dv.Get(), f32.dv.Get())) << causal;
    // The gradient is not lost in the bf16 += (it is ~10x the base here).
    EXPECT_GT(MaxAbs(Sub(b16.dq.Get(), dq0)), 0.05);
    for (const Heads* h : {&b16.out, &b16.dq, &b16.dk, &b16.dv}) EXPECT_TRUE(h->PaddingIntact());
  }
}

// The AVX512-BF16 tiles (flash_attention_pairs.cc) also round P and dS to
// bf16 as product operands, 2^-9 relative each: an output's extra error is
// at most 2^-9 of the sum of its terms' magnitudes, which here stays within
// 8x the largest |output|, so the bound is 2^-8 |want| + 2^-6 max|want|.
// Measured on these shapes: the largest error is 0.45% of max|want| (the
// widened tiles: 0.35%; both mostly the output's own rounding). Checked
// against fp32 and against the widened tiles on the same data.
TEST_P(FlashAttentionTest, Bf16PairsMatchFp32OnRoundedInputs) {
  if (!cpu::Bf16PairsAvailable()) GTEST_SKIP() << "no AVX512-BF16 here (or oneDNN capped below it)";
  struct Shape {
    int B, T, NH, NKV, HS;
  };
  for (const Shape& s : {Shape{2, 100, 4, 2, 32}, Shape{1, 77, 2, 1, 40}, Shape{1, 1, 1, 1, 2},
                         Shape{1, 130, 3, 3, 64}}) {
    for (bool causal : {true, false}) {
      AttentionDims d;
      d.B = s.B, d.T = s.T, d.NH = s.NH, d.NKV = s.NKV, d.HS = s.HS, d.causal = causal;
      const int nt = GetParam();
      Problem pairs(d, Layout::kPaddedEven, DType::kBF16), widened(d, Layout::kPaddedEven, DType::kBF16);
      Problem f32(d, Layout::kPaddedEven, DType::kF32);
      const FVec q = RoundBF16(testing::Random(f32.q.Elems(), 81, -2.0f, 2.0f));
      const FVec k = RoundBF16(testing::Random(f32.k.Elems(), 82, -2.0f, 2.0f));
      const FVec v = RoundBF16(testing::Random(f32.v.Elems(), 83));
      const FVec dout = RoundBF16(testing::Random(f32.q.Elems(), 84));
      for (Problem* p : {&pairs, &widened, &f32}) {
        p->q.Set(q), p->k.Set(k), p->v.Set(v), p->dout.Set(dout);
        p->dq.Set(FVec(q.size(), 0.0f)), p->dk.Set(FVec(k.size(), 0.0f));
        p->dv.Set(FVec(v.size(), 0.0f));
      }
      auto close = [](const FVec& got, const FVec& want) {
        const DVec w = testing::ToD(want);
        return testing::AllClose(got, w, std::ldexp(std::max(MaxAbs(w), 1e-6), -6),
                                 std::ldexp(1.0, -8));
      };
      const std::string what = "T=" + std::to_string(d.T) + " HS=" + std::to_string(d.HS) +
                               (causal ? " causal" : " full");
      pairs.Forward(nt, d, DType::kBF16);
      cpu::flash_internal::AllowBf16Pairs(false);
      widened.Forward(nt, d, DType::kBF16);
      cpu::flash_internal::AllowBf16Pairs(true);
      f32.Forward(nt, d, DType::kF32);
      EXPECT_TRUE(close(pairs.out.Get(), f32.out.Get())) << what;
      EXPECT_TRUE(close(pairs.out.Get(), widened.out.Get())) << what;
      EXPECT_TRUE(testing::AllClose(pairs.lse, testing::ToD(f32.lse), 1e-6, 1e-6)) << what;
      widened.out.Set(pairs.out.Get());
      f32.out.Set(pairs.out.Get());
      pairs.Backward(nt, d, DType::kBF16);
      cpu::flash_internal::AllowBf16Pairs(false);
      widened.Backward(nt, d, DType::kBF16);
      cpu::flash_internal::AllowBf16Pairs(true);
      f32.Backward(nt, d, DType::kF32);
      for (auto [got, wid, want] : {std::tuple{&pairs.dq, &widened.dq, &f32.dq},
                                    std::tuple{&pairs.dk, &widened.dk, &f32.dk},
                                    std::tuple{&pairs.dv, &widened.dv, &f32.dv}}) {
        EXPECT_TRUE(close(got->Get(), want->Get())) << what;
        EXPECT_TRUE(close(got->Get(), wid->Get())) << what;
        if (d.T > 1) {  // at T=1, dq = dk = 0
          EXPECT_GT(MaxAbs(testing::ToD(got->Get())), 0.0) << what;
        }
      }
      for (const Heads* h : {&pairs.out, &pairs.dq, &pairs.dk, &pairs.dv}) {
        EXPECT_TRUE(h->PaddingIntact()) << what;
      }
    }
  }
}

ANVIL_THREADS_PARAMS(FlashAttentionTest);

// ---------------------------------------------------------------------------
// 1, 2 and 3 threads: bitwise identical (each output element has one writer
// summing in a fixed order, whatever thread runs it).

TEST(FlashAttentionThreads, BitwiseIdenticalAcrossThreadCounts) {
  // kPaddedEven bf16 runs the AVX512-BF16 tiles where the CPU has them.
  for (auto [dt, layout] : {std::pair{DType::kF32, Layout::kPadded}, std::pair{DType::kBF16, Layout::kPadded},
                            std::pair{DType::kBF16, Layout::kPaddedEven}}) {
    AttentionDims d;
    d.B = 2, d.T = 150, d.NH = 4, d.NKV = 2, d.HS = 32, d.causal = true;
    std::vector<std::vector<uint8_t>> first;
    for (int nt : {1, 2, 3}) {
      Problem p(d, layout, dt);
      p.q.Set(testing::Random(p.q.Elems(), 61)), p.k.Set(testing::Random(p.k.Elems(), 62));
      p.v.Set(testing::Random(p.v.Elems(), 63)), p.dout.Set(testing::Random(p.q.Elems(), 64));
      p.dq.Set(FVec(p.q.Elems(), 0.0f)), p.dk.Set(FVec(p.k.Elems(), 0.0f));
      p.dv.Set(FVec(p.v.Elems(), 0.0f));
      p.Forward(nt, d, dt);
      p.Backward(nt, d, dt);
      const uint8_t* l = reinterpret_cast<const uint8_t*>(p.lse.data());
      std::vector<std::vector<uint8_t>> got = {
          p.out.Bytes(), p.dq.Bytes(), p.dk.Bytes(), p.dv.Bytes(), {l, l + p.lse.size() * 4}};
      if (first.empty()) {
        first = got;
        continue;
      }
      for (size_t i = 0; i < got.size(); ++i)
        EXPECT_TRUE(got[i] == first[i])
            << "tensor " << i << " nt=" << nt << " dtype " << DTypeName(dt);
    }
  }
}

// ---------------------------------------------------------------------------
// No T x T memory: the declared scratch is linear in T and far below T*T*4,
// and what a T=4096 call actually allocates stays within it.

TEST(FlashAttentionScratch, LinearInTAndFarBelowTxT) {
  // Per thread: fixed tiles plus the backward's five (T, HS) fp32 strips
  // (~20 T HS bytes), against 4 T^2 bytes for one (T, T) fp32 matrix (today's
  // kernel keeps B*NH of them, twice). Independent of B and the head counts.
  AttentionDims d;
  d.B = 8, d.NH = 8, d.NKV = 2, d.HS = 64;
  auto bytes = [&](int nt, int T) {
    AttentionDims e = d;
    e.T = T;
    return cpu::FlashAttentionScratchBytes(nt, e);
  };
  const size_t txt = size_t{4096} * 4096 * 4;
  EXPECT_LT(bytes(1, 4096), txt / 10);
  EXPECT_LT(bytes(3, 4096), 3 * txt / 10);
  EXPECT_EQ(bytes(3, 4096), 3 * bytes(1, 4096));  // per-thread tiles, nothing shared
  for (int T = 256; T <= 8192; T *= 2) {
    EXPECT_LE(bytes(2, 2 * T), 2 * bytes(2, T)) << T;  // at most linear
    EXPECT_EQ(bytes(2, 4 * T) - bytes(2, 2 * T), 2 * (bytes(2, 2 * T) - bytes(2, T))) << T;
  }
  std::printf("scratch per thread, HS=64: T=1024 %zu B, T=4096 %zu B (one T x T fp32: %zu B)\n",
              bytes(1, 1024), bytes(1, 4096), txt);
}

// Bytes allocated through operator new (by any thread) while fn runs, with
// the calling thread's scratch pool emptied first.
size_t AllocatedBy(const std::function<void()>& fn) {
  cpu::flash_internal::ReleaseScratchPool();
  testing::ArmAllocCounter();
  fn();
  return static_cast<size_t>(testing::DisarmAllocCounter().bytes);
}

TEST(FlashAttentionScratch, ActualAllocationsWithinDeclaredScratch) {
  const int nt = 2;
  const size_t txt = size_t{4096} * 4096 * 4;
  size_t fwd_bytes[2];
  for (int pass = 0; pass < 2; ++pass) {
    AttentionDims d;
    d.B = 1, d.T = pass == 0 ? 64 : 4096, d.NH = 2, d.NKV = 1, d.HS = 16, d.causal = true;
    Problem p(d, Layout::kDense, DType::kF32);
    p.q.Set(testing::Random(p.q.Elems(), 71)), p.k.Set(testing::Random(p.k.Elems(), 72));
    p.v.Set(testing::Random(p.v.Elems(), 73)), p.dout.Set(testing::Random(p.q.Elems(), 74));
    p.dq.Set(FVec(p.q.Elems(), 0.0f)), p.dk.Set(FVec(p.k.Elems(), 0.0f));
    p.dv.Set(FVec(p.v.Elems(), 0.0f));
    const size_t declared = cpu::FlashAttentionScratchBytes(nt, d);
    fwd_bytes[pass] = AllocatedBy([&] { p.Forward(nt, d, DType::kF32); });
    EXPECT_LE(fwd_bytes[pass], declared);
    const size_t bwd_bytes = AllocatedBy([&] { p.Backward(nt, d, DType::kF32); });
    EXPECT_LE(bwd_bytes, declared);
    EXPECT_EQ(cpu::flash_internal::ScratchPoolBytes(), bwd_bytes);  // the pool is all of it
    if (pass == 1) {
      EXPECT_LT(declared, txt / 16);
      std::printf(
          "T=4096 NH=2 HS=16 nt=2: forward allocated %zu B, backward %zu B (declared %zu, "
          "T*T*4 = %zu)\n",
          fwd_bytes[pass], bwd_bytes, declared, txt);
      // The run itself is sane: finite outputs, non-zero gradients.
      const FVec out = p.out.Get(), dk = p.dk.Get();
      EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](float x) { return std::isfinite(x); }));
      EXPECT_GT(MaxAbs(testing::ToD(dk)), 0.0);
    }
  }
  // Forward uses fixed tiles only: the same bytes at T=64 and T=4096.
  EXPECT_EQ(fwd_bytes[0], fwd_bytes[1]);
  EXPECT_GT(fwd_bytes[0], 0u);
}

}  // namespace
}  // namespace anvil::kernels
