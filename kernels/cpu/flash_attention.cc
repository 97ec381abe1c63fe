// Flash attention on the CPU (contract in flash_attention.h).
//
// Tiles are kBr = 64 queries by kBc = 64 keys. Products on tiles go through
// single-threaded OpenBLAS sgemm (inside our parallel regions): on one Zen 4
// core its 64x64x64 products run at ~85 GFLOP/s as NT (A B^T) and ~105-110
// as NN or TN, against a 2048^3 peak of ~100 and no faster with a
// hand-written register-blocked kernel measured here, so operands are laid
// out to avoid NT. fp32 views go to sgemm in place (leading dimension st);
// bf16 rows are widened into fp32 tiles first, except on CPUs with
// AVX512-BF16, where flash_attention_pairs.cc runs the same tasks with bf16
// tile products instead (1.6x faster there at B=8 T=256 HS=64; chosen per
// call by PairsApply). Exponentials use FastExp
// (vec_math.h), like attention.cc. Causal diagonal tiles skip their fully
// masked upper-right quarter (SplitDiagonal).
//
// Forward: one task per (b, query head, query block), dynamically scheduled,
// largest causal blocks first. A task transposes its Q block once and walks
// key tiles j0 = 0, kBc, ... (only those up to the diagonal when causal):
// S^T = scale K_j Q_i^T (NN), an online softmax along S^T's rows keeping per
// query the running max m and sum l of exp(s - m), and O += (S^T)^T V_j (TN)
// into an fp32 tile rescaled by exp(m_old - m_new) when the max grows
// (FlashAttention-2). At the end out = O / l and lse = m + log l.
//
// Backward, and the dq scheme: one task per (b, kv head). The task owns every
// query head of its group. It widens K once into rows and K^T, V into V^T
// (per-thread strips), then walks query blocks i (outer) and key tiles j
// (inner, j <= i when causal) and for each pair recomputes
//   S = scale Q_i K_j^T, P = exp(S - lse_i), dV_j += P^T dO_i, dP = dO_i V_j^T,
//   dS = P (dP - D_i) scale, dQ_i += dS K_j, dK_j += dS^T Q_i,
// with D = rowsum(dO * O), all five products NN or TN. dQ_i sums in a
// per-thread fp32 tile, added to dq once per (head, query block); dK and dV
// of the kv head sum in per-thread fp32 strips (T, HS), added to dk/dv when
// the task ends. Each element of dq, dk, dv therefore has a single writer
// that sums in a fixed order: no atomics, no second pass over the scores (5
// tile products per pair, not 8), and results bitwise independent of the
// thread count. The price: backward parallelism is B*NKV tasks, and the five
// strips make the scratch linear in T (~20*T*HS bytes per thread).
#include "kernels/cpu/flash_attention.h"

#include <omp.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <new>

#include "kernels/check.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/flash_attention_tiles.h"
#include "kernels/cpu/transpose.h"
#include "kernels/cpu/vec_math.h"

namespace anvil::kernels::cpu {
namespace flash_tiles {

// view rows [t0, t0+rows) of head h (+)= src rows (leading dimension hs), times
// row_scale[r] when given. bf16: widen, add in fp32, round once.
void StoreRows(const HeadsView& v, DType dt, bool accumulate, int b, int t0, int h, int rows,
               int hs, const float* src, const float* row_scale) {
  for (int r = 0; r < rows; ++r) {
    const float* s = src + static_cast<int64_t>(r) * hs;
    const float f = row_scale != nullptr ? row_scale[r] : 1.0f;
    if (dt == DType::kF32) {
      float* o = Row<float>(v, b, t0 + r, h);
      if (accumulate) {
#pragma omp simd
        for (int e = 0; e < hs; ++e) o[e] += s[e] * f;
      } else {
#pragma omp simd
        for (int e = 0; e < hs; ++e) o[e] = s[e] * f;
      }
    } else {
      uint16_t* o = Row<uint16_t>(v, b, t0 + r, h);
      if (accumulate) {
#pragma omp simd
        for (int e = 0; e < hs; ++e) o[e] = F32ToBF16(BF16ToF32(o[e]) + s[e] * f);
      } else {
#pragma omp simd
        for (int e = 0; e < hs; ++e) o[e] = F32ToBF16(s[e] * f);
      }
    }
  }
}

}  // namespace flash_tiles

namespace {

using namespace flash_tiles;  // NOLINT: this file is their main user

size_t ForwardFloats(const AttentionDims& d) {
  const size_t hs = d.HS;
  // q, q^T, o tiles; k, v tiles; scores; m, l, corr.
  return 3 * Lines(kBr * hs) + 2 * Lines(kBc * hs) + Lines(kBr * kBc) + 3 * Lines(kBr);
}

size_t BackwardFloats(const AttentionDims& d) {
  const size_t hs = d.HS;
  const size_t strip = static_cast<size_t>(d.T) * hs;
  // q, dout, out, dq tiles; P, dS; lse, D; strips: K, K^T, V^T, dK, dV.
  return 4 * Lines(kBr * hs) + 2 * Lines(kBr * kBc) + 2 * Lines(kBr) + 3 * Lines(strip) +
         2 * Lines(hs * Lines(d.T));
}

size_t PerThreadFloats(const AttentionDims& d) {
  return std::max({ForwardFloats(d), BackwardFloats(d), PairsForwardFloats(d),
                   PairsBackwardFloats(d)});
}

// Grow-only, 64-byte aligned; one per calling thread, sliced per OpenMP
// thread of the call. Contents are never assumed (every tile is written
// before it is read).
class ScratchPool {
 public:
  ~ScratchPool() { Release(); }
  float* Get(size_t floats) {
    if (floats > capacity_) {
      Release();
      data_ = static_cast<float*>(::operator new (floats * sizeof(float), std::align_val_t{64}));
      capacity_ = floats;
    }
    return data_;
  }
  size_t bytes() const { return capacity_ * sizeof(float); }
  void Release() {
    if (data_ != nullptr) ::operator delete (data_, std::align_val_t{64});
    data_ = nullptr;
    capacity_ = 0;
  }

 private:
  float* data_ = nullptr;
  size_t capacity_ = 0;
};

thread_local ScratchPool tls_pool;

// Rows [t0, t0+rows) of head h as fp32 with leading dimension *ld: the view
// itself for F32, else widened into `tile` (leading dimension hs).
const float* LoadRows(const HeadsView& v, DType dt, int b, int t0, int h, int rows, int hs,
                      float* tile, int* ld) {
  if (dt == DType::kF32) {
    *ld = Ld(v.st);
    return Row<const float>(v, b, t0, h);
  }
  const uint16_t* src = Row<const uint16_t>(v, b, t0, h);
  for (int r = 0; r < rows; ++r) ConvertBF16ToF32(tile + r * hs, src + r * v.st, hs);
  *ld = hs;
  return tile;
}

void ForwardBlock(const AttentionDims& d, DType dt, float scale, const Views& w, float* lse, int b,
                  int h, int i0, float* scratch) {
  const int hs = d.HS, rows = std::min(kBr, d.T - i0), kvh = h / (d.NH / d.NKV);
  Carver c{scratch};
  float* qt = c.Take(kBr * hs);
  float* qtr = c.Take(hs * kBr);
  float* o = c.Take(kBr * hs);
  float* kt = c.Take(kBc * hs);
  float* vt = c.Take(kBc * hs);
  float* st = c.Take(kBc * kBr);
  float* m = c.Take(kBr);
  float* l = c.Take(kBr);
  float* corr = c.Take(kBr);
  std::fill(m, m + rows, kNegInf);
  std::fill(l, l + rows, 0.0f);
  int ldq, ldk, ldv;
  // Scores are made transposed, S^T = K_j Q_i^T, and consumed as O += (S^T)^T
  // V_j: sgemm's NN and TN kernels run ~25% faster than NT on these tiles.
  const float* qp = LoadRows(w.q, dt, b, i0, h, rows, hs, qt, &ldq);
  Transpose32(qp, ldq, rows, hs, qtr, kBr);
  // Queries [r0, r0+n) of the block against keys [j0, j0+cols).
  auto tile = [&](int r0, int n, int j0, int cols, const float* kp, const float* vp) {
    Sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cols, n, hs, scale, kp, ldk, qtr + r0, kBr,
          0.0f, st, kBr);
    float* ob = o + static_cast<int64_t>(r0) * hs;
    SoftmaxTileStep(d, st, cols, n, i0, r0, j0, m, l, corr, ob, hs);
    // The first tile (j0 == 0, visible to every query) initialises O.
    Sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, hs, cols, 1.0f, st, kBr, vp, ldv,
          j0 == 0 ? 0.0f : 1.0f, ob, hs);
  };
  const int kend = d.causal ? i0 + rows : d.T;
  for (int j0 = 0; j0 < kend; j0 += kBc) {
    const int cols = std::min(kBc, kend - j0);
    const float* kp = LoadRows(w.k, dt, b, j0, kvh, cols, hs, kt, &ldk);
    const float* vp = LoadRows(w.v, dt, b, j0, kvh, cols, hs, vt, &ldv);
    if (SplitDiagonal(d, i0, j0, rows)) {
      const int half = rows / 2;
      tile(half, rows - half, j0, cols, kp, vp);
      tile(0, half, j0, half, kp, vp);
    } else {
      tile(0, rows, j0, cols, kp, vp);
    }
  }
  float* lse_row = lse + (static_cast<int64_t>(b) * d.NH + h) * d.T + i0;
  for (int r = 0; r < rows; ++r) {
    lse_row[r] = m[r] + std::log(l[r]);
    corr[r] = 1.0f / l[r];
  }
  StoreRows(w.out, dt, /*accumulate=*/false, b, i0, h, rows, hs, o, corr);
}

void BackwardGroup(const AttentionDims& d, DType dt, float scale, const Views& w, const float* lse,
                   int b, int g, float* scratch) {
  const int hs = d.HS, T = d.T, group = d.NH / d.NKV;
  const int tp = static_cast<int>(Lines(T));  // leading dimension of the transposed strips
  Carver c{scratch};
  float* qt = c.Take(kBr * hs);
  float* gt = c.Take(kBr * hs);
  float* ot = c.Take(kBr * hs);
  float* dqt = c.Take(kBr * hs);
  float* p = c.Take(kBr * kBc);
  float* ds = c.Take(kBr * kBc);
  float* rl = c.Take(kBr);
  float* dd = c.Take(kBr);
  float* kstrip = c.Take(static_cast<size_t>(T) * hs);
  float* ktr = c.Take(static_cast<size_t>(hs) * tp);
  float* vtr = c.Take(static_cast<size_t>(hs) * tp);
  float* dks = c.Take(static_cast<size_t>(T) * hs);
  float* dvs = c.Take(static_cast<size_t>(T) * hs);
  // K and V of this kv head in fp32, once per task: K as rows (for dQ = dS K;
  // the view itself for fp32) and transposed, V transposed only, so that
  // S = Q K^T and dP = dO V^T are NN products, which sgemm runs ~25% faster
  // than NT on these tiles. bf16 V rows pass through dvs, not yet in use.
  int ldk, ldv;
  const float* kr = LoadRows(w.k, dt, b, 0, g, T, hs, kstrip, &ldk);
  const float* vr = LoadRows(w.v, dt, b, 0, g, T, hs, dvs, &ldv);
  Transpose32(kr, ldk, T, hs, ktr, tp);
  Transpose32(vr, ldv, T, hs, vtr, tp);
  int ldq, ldg, ldo;
  const float* qp = nullptr;
  const float* gp = nullptr;
  // Query rows [i0+r0, i0+r0+n) against keys [j0, j0+cols); strip_beta 0
  // when this is the first product into those keys' dK/dV rows.
  auto step = [&](int i0, int r0, int n, int j0, int cols, float strip_beta) {
    const float* qb = qp + static_cast<int64_t>(r0) * ldq;
    const float* gb = gp + static_cast<int64_t>(r0) * ldg;
    Sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, cols, hs, scale, qb, ldq, ktr + j0, tp,
          0.0f, p, kBc);
    ProbTile(d, p, n, cols, i0, r0, j0, rl);
    Sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, hs, n, 1.0f, p, kBc, gb, ldg, strip_beta,
          dvs + static_cast<int64_t>(j0) * hs, hs);
    Sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, cols, hs, 1.0f, gb, ldg, vtr + j0, tp, 0.0f,
          ds, kBc);
    ScoreGradTile(ds, p, n, cols, dd + r0, scale);
    // The first key tile (j0 == 0) is visible to every row and initialises dQ.
    Sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hs, cols, 1.0f, ds, kBc,
          kr + static_cast<int64_t>(j0) * ldk, ldk, j0 == 0 ? 0.0f : 1.0f,
          dqt + static_cast<int64_t>(r0) * hs, hs);
    Sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, hs, n, 1.0f, ds, kBc, qb, ldq, strip_beta,
          dks + static_cast<int64_t>(j0) * hs, hs);
  };
  for (int h = g * group; h < (g + 1) * group; ++h) {
    for (int i0 = 0; i0 < T; i0 += kBr) {
      const int rows = std::min(kBr, T - i0);
      qp = LoadRows(w.q, dt, b, i0, h, rows, hs, qt, &ldq);
      gp = LoadRows(w.dout, dt, b, i0, h, rows, hs, gt, &ldg);
      const float* op = LoadRows(w.out, dt, b, i0, h, rows, hs, ot, &ldo);
      const float* lse_row = lse + (static_cast<int64_t>(b) * d.NH + h) * T + i0;
      for (int r = 0; r < rows; ++r) {
        const float* gr = gp + static_cast<int64_t>(r) * ldg;
        const float* orow = op + static_cast<int64_t>(r) * ldo;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int e = 0; e < hs; ++e) dot += gr[e] * orow[e];
        dd[r] = dot;
        rl[r] = lse_row[r];
      }
      const int kend = d.causal ? i0 + rows : T;
      for (int j0 = 0; j0 < kend; j0 += kBc) {
        const int cols = std::min(kBc, kend - j0);
        // The strips are never zeroed: key tile j0 is first reached by the
        // group's first head at query block j0 (causal) or 0, whose product
        // (the lower half, for a split diagonal tile) overwrites.
        const float beta = h == g * group && i0 == (d.causal ? j0 : 0) ? 0.0f : 1.0f;
        if (SplitDiagonal(d, i0, j0, rows)) {
          const int half = rows / 2;
          step(i0, half, rows - half, j0, cols, beta);
          step(i0, 0, half, j0, half, 1.0f);
        } else {
          step(i0, 0, rows, j0, cols, beta);
        }
      }
      StoreRows(w.dq, dt, /*accumulate=*/true, b, i0, h, rows, hs, dqt, nullptr);
    }
  }
  StoreRows(w.dk, dt, /*accumulate=*/true, b, 0, g, T, hs, dks, nullptr);
  StoreRows(w.dv, dt, /*accumulate=*/true, b, 0, g, T, hs, dvs, nullptr);
}

void CheckArgs(int nt, const AttentionDims& d, DType dtype) {
  ANVIL_KCHECK(nt >= 1, "nt >= 1");
  ANVIL_KCHECK(d.B >= 0 && d.T >= 0 && d.HS > 0, "dims");
  ANVIL_KCHECK(d.NKV > 0 && d.NH > 0 && d.NH % d.NKV == 0, "NH must be a multiple of NKV");
  ANVIL_KCHECK(dtype == DType::kF32 || dtype == DType::kBF16, "dtype must be F32 or BF16");
}

// The OpenMP OpenBLAS runs single-threaded inside an active parallel region,
// but a one-thread region (nt == 1) is inactive and it would use the caller's
// omp_get_max_threads(); the tiles are sized for one thread either way. This
// sets the ICV of the current implicit task only.
void SingleThreadedBlasHere() { omp_set_num_threads(1); }

float Scale(const AttentionDims& d) {
  return d.scale != 0.0f ? d.scale : 1.0f / std::sqrt(static_cast<float>(d.HS));
}

}  // namespace

size_t FlashAttentionScratchBytes(int nt, const AttentionDims& d) {
  return static_cast<size_t>(std::max(nt, 1)) * PerThreadFloats(d) * sizeof(float);
}

void FlashAttentionForward(int nt, const AttentionDims& d, DType dtype, HeadsView out, HeadsView q,
                           HeadsView k, HeadsView v, float* lse) {
  CheckArgs(nt, d, dtype);
  if (d.B == 0 || d.T == 0) return;
  const Views w{out, q, k, v, {}, {}, {}, {}};
  const bool pairs = dtype == DType::kBF16 && PairsApply(d, w);
  // Fixed tiles, independent of T.
  const size_t per = pairs ? PairsForwardFloats(d) : ForwardFloats(d);
  float* pool = tls_pool.Get(per * nt);
  const float scale = Scale(d);
  const int nblk = (d.T + kBr - 1) / kBr;
  const int64_t heads = static_cast<int64_t>(d.B) * d.NH, tasks = heads * nblk;
  BlasSingleThreadScope single;
#pragma omp parallel num_threads(nt)
  {
    SingleThreadedBlasHere();
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int ib = nblk - 1 - static_cast<int>(task / heads);  // long causal blocks first
      const int bh = static_cast<int>(task % heads);
      float* scratch = pool + per * omp_get_thread_num();
      if (pairs) {
        PairsForwardBlock(d, scale, w, lse, bh / d.NH, bh % d.NH, ib * kBr, scratch);
      } else {
        ForwardBlock(d, dtype, scale, w, lse, bh / d.NH, bh % d.NH, ib * kBr, scratch);
      }
    }
  }
}

void FlashAttentionBackward(int nt, const AttentionDims& d, DType dtype, HeadsView dq, HeadsView dk,
                            HeadsView dv, HeadsView dout, HeadsView q, HeadsView k, HeadsView v,
                            HeadsView out, const float* lse) {
  CheckArgs(nt, d, dtype);
  if (d.B == 0 || d.T == 0) return;
  const Views w{out, q, k, v, dout, dq, dk, dv};
  const bool pairs = dtype == DType::kBF16 && PairsApply(d, w);
  const size_t per = pairs ? PairsBackwardFloats(d) : BackwardFloats(d);
  float* pool = tls_pool.Get(per * nt);
  const float scale = Scale(d);
  const int tasks = d.B * d.NKV;
  BlasSingleThreadScope single;
#pragma omp parallel num_threads(nt)
  {
    SingleThreadedBlasHere();
#pragma omp for schedule(dynamic, 1)
    for (int task = 0; task < tasks; ++task) {
      float* scratch = pool + per * omp_get_thread_num();
      if (pairs) {
        PairsBackwardGroup(d, scale, w, lse, task / d.NKV, task % d.NKV, scratch);
      } else {
        BackwardGroup(d, dtype, scale, w, lse, task / d.NKV, task % d.NKV, scratch);
      }
    }
  }
}

namespace flash_internal {
size_t ScratchPoolBytes() { return tls_pool.bytes(); }
void ReleaseScratchPool() { tls_pool.Release(); }
}  // namespace flash_internal

}  // namespace anvil::kernels::cpu
