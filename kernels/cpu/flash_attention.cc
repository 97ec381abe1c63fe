// Flash attention on the CPU (contract in flash_attention.h).
//
// Tiles are kBr query rows by kBc keys; products on tiles go through
// single-threaded OpenBLAS sgemm (inside our parallel regions), which runs
// 64x64x64 products at ~80-110 GFLOP/s on one Zen core, as fast as a
// hand-written register-blocked kernel measured here. fp32 views are handed
// to sgemm in place (leading dimension st); bf16 rows are widened into fp32
// tiles first. Scores use FastExp (vec_math.h), like attention.cc.
//
// Forward: one task per (b, query head, query block), dynamically scheduled,
// largest causal blocks first. A task walks key tiles j0 = 0, kBc, ... (only
// those left of the diagonal when causal) keeping, per row, the running max m
// and sum l of exp(s - m), and an fp32 output tile O rescaled by
// exp(m_old - m_new) whenever the max grows (FlashAttention-2). At the end
// out = O / l and lse = m + log l.
//
// Backward, and the dq scheme: one task per (b, kv head). The task owns every
// query head of its group; it walks query blocks i (outer) and key tiles j
// (inner, j <= i when causal) and for each pair recomputes
//   S = scale Q_i K_j^T, P = exp(S - lse_i), dV_j += P^T dO_i, dP = dO_i V_j^T,
//   dS = P (dP - D_i) scale, dQ_i += dS K_j, dK_j += dS^T Q_i,
// with D = rowsum(dO * O). dQ_i sums in a per-thread fp32 tile and is added
// to dq once per (head, query block); dK and dV of the kv head sum in
// per-thread fp32 strips (T, HS), added to dk/dv when the task ends. Each
// element of dq, dk, dv therefore has a single writer that sums in a fixed
// order: no atomics, no second pass over the scores (5 tile products per
// pair, not 8), and results bitwise independent of the thread count. The
// price: backward parallelism is B*NKV tasks, and the strips grow linearly
// in T (2*T*HS floats per thread).
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
#include "kernels/cpu/vec_math.h"

namespace anvil::kernels::cpu {
namespace {

constexpr int kBr = 64;  // query rows per block
constexpr int kBc = 64;  // keys per tile
// Causal tiles then line up with the diagonal: the first key tile is visible
// to every query row of a block, and key tile j is first reached by query
// block j (backward relies on both to skip zeroing its accumulators).
static_assert(kBr == kBc);
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Floats rounded up to whole 64-byte lines, so every scratch array is aligned.
constexpr size_t Lines(size_t floats) { return (floats + 15) & ~size_t{15}; }

size_t ForwardFloats(const AttentionDims& d) {
  const size_t hs = d.HS;
  // q, o tiles; k, v tiles; scores; m, l, corr.
  return 2 * Lines(kBr * hs) + 2 * Lines(kBc * hs) + Lines(kBr * kBc) + 3 * Lines(kBr);
}

size_t BackwardFloats(const AttentionDims& d) {
  const size_t hs = d.HS;
  // q, dout, out, dq tiles; k, v tiles; P, dS; lse, D; dk, dv strips.
  return 4 * Lines(kBr * hs) + 2 * Lines(kBc * hs) + 2 * Lines(kBr * kBc) + 2 * Lines(kBr) +
         2 * Lines(static_cast<size_t>(d.T) * hs);
}

size_t PerThreadFloats(const AttentionDims& d) {
  return std::max(ForwardFloats(d), BackwardFloats(d));
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

// Hands out consecutive line-aligned arrays of one thread's slice.
struct Carver {
  float* next;
  float* Take(size_t floats) {
    float* r = next;
    next += Lines(floats);
    return r;
  }
};

template <typename E>
E* Row(const HeadsView& v, int b, int t, int h) {
  return static_cast<E*>(v.data) + b * v.sb + t * v.st + h * v.sh;
}

int Ld(int64_t st) {
  ANVIL_KCHECK(st > 0 && st <= INT_MAX, "time stride must fit sgemm's int leading dimension");
  return static_cast<int>(st);
}

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

// Keys of tile j0 that query row t may see: all `cols`, or those <= t.
inline int ValidCols(bool causal, int t, int j0, int cols) {
  return causal ? std::clamp(t - j0 + 1, 0, cols) : cols;
}

// One row of one score tile, in place: s becomes exp(s - m_new) (0 beyond
// `valid`); m, l are the row's running max and sum. Returns the factor
// exp(m_old - m_new) by which the row's output accumulator must be rescaled.
// kFull: a whole unmasked tile (cols == valid == kBc), so the loops have a
// fixed trip count and no masks.
template <bool kFull>
inline float OnlineSoftmaxRow(float* s, int cols, int valid, float* m, float* l) {
  if constexpr (kFull) cols = valid = kBc;
  float mx = *m;
#pragma omp simd reduction(max : mx)
  for (int c = 0; c < cols; ++c) {
    const float x = kFull || c < valid ? s[c] : kNegInf;
    mx = mx > x ? mx : x;
  }
  // A row with nothing visible yet keeps m = -inf; exp(-inf - 0) = 0 then.
  const float base = mx == kNegInf ? 0.0f : mx;
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int c = 0; c < cols; ++c) {
    const float p = kFull || c < valid ? FastExp(s[c] - base) : 0.0f;
    s[c] = p;
    sum += p;
  }
  const float corr = FastExp(*m - base);
  *l = *l * corr + sum;
  *m = mx;
  return corr;
}

// P = exp(S - lse) for one row of a backward tile (0 beyond `valid`).
template <bool kFull>
inline void ProbRow(float* s, int cols, int valid, float lse) {
  if constexpr (kFull) cols = valid = kBc;
#pragma omp simd
  for (int c = 0; c < cols; ++c) s[c] = kFull || c < valid ? FastExp(s[c] - lse) : 0.0f;
}

struct Views {
  HeadsView out, q, k, v, dout, dq, dk, dv;
};

void ForwardBlock(const AttentionDims& d, DType dt, float scale, const Views& w, float* lse, int b,
                  int h, int i0, float* scratch) {
  const int hs = d.HS, rows = std::min(kBr, d.T - i0), kvh = h / (d.NH / d.NKV);
  Carver c{scratch};
  float* qt = c.Take(kBr * hs);
  float* o = c.Take(kBr * hs);
  float* kt = c.Take(kBc * hs);
  float* vt = c.Take(kBc * hs);
  float* s = c.Take(kBr * kBc);
  float* m = c.Take(kBr);
  float* l = c.Take(kBr);
  float* corr = c.Take(kBr);
  std::fill(m, m + rows, kNegInf);
  std::fill(l, l + rows, 0.0f);
  int ldq, ldk, ldv;
  const float* qp = LoadRows(w.q, dt, b, i0, h, rows, hs, qt, &ldq);
  const int kend = d.causal ? i0 + rows : d.T;
  for (int j0 = 0; j0 < kend; j0 += kBc) {
    const int cols = std::min(kBc, kend - j0);
    const float* kp = LoadRows(w.k, dt, b, j0, kvh, cols, hs, kt, &ldk);
    const float* vp = LoadRows(w.v, dt, b, j0, kvh, cols, hs, vt, &ldv);
    Sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, hs, scale, qp, ldq, kp, ldk, 0.0f, s,
          kBc);
    // Whole tiles left of the diagonal need no mask.
    if (cols == kBc && (!d.causal || j0 + kBc <= i0 + 1)) {
      for (int r = 0; r < rows; ++r)
        corr[r] = OnlineSoftmaxRow<true>(s + r * kBc, 0, 0, &m[r], &l[r]);
    } else {
      for (int r = 0; r < rows; ++r) {
        corr[r] = OnlineSoftmaxRow<false>(s + r * kBc, cols, ValidCols(d.causal, i0 + r, j0, cols),
                                          &m[r], &l[r]);
      }
    }
    if (j0 > 0) {
      for (int r = 0; r < rows; ++r) {
        float* orow = o + r * hs;
        const float f = corr[r];
#pragma omp simd
        for (int e = 0; e < hs; ++e) orow[e] *= f;
      }
    }
    // The first tile (j0 == 0, always visible to every row) initialises O.
    Sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hs, cols, 1.0f, s, kBc, vp, ldv,
          j0 == 0 ? 0.0f : 1.0f, o, hs);
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
  Carver c{scratch};
  float* qt = c.Take(kBr * hs);
  float* gt = c.Take(kBr * hs);
  float* ot = c.Take(kBr * hs);
  float* dqt = c.Take(kBr * hs);
  float* kt = c.Take(kBc * hs);
  float* vt = c.Take(kBc * hs);
  float* p = c.Take(kBr * kBc);
  float* ds = c.Take(kBr * kBc);
  float* rl = c.Take(kBr);
  float* dd = c.Take(kBr);
  float* dks = c.Take(static_cast<size_t>(T) * hs);
  float* dvs = c.Take(static_cast<size_t>(T) * hs);
  for (int h = g * group; h < (g + 1) * group; ++h) {
    for (int i0 = 0; i0 < T; i0 += kBr) {
      const int rows = std::min(kBr, T - i0);
      int ldq, ldg, ldo, ldk, ldv;
      const float* qp = LoadRows(w.q, dt, b, i0, h, rows, hs, qt, &ldq);
      const float* gp = LoadRows(w.dout, dt, b, i0, h, rows, hs, gt, &ldg);
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
        const float* kp = LoadRows(w.k, dt, b, j0, g, cols, hs, kt, &ldk);
        const float* vp = LoadRows(w.v, dt, b, j0, g, cols, hs, vt, &ldv);
        Sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, hs, scale, qp, ldq, kp, ldk,
              0.0f, p, kBc);
        if (cols == kBc && (!d.causal || j0 + kBc <= i0 + 1)) {
          for (int r = 0; r < rows; ++r) ProbRow<true>(p + r * kBc, 0, 0, rl[r]);
        } else {
          for (int r = 0; r < rows; ++r) {
            ProbRow<false>(p + r * kBc, cols, ValidCols(d.causal, i0 + r, j0, cols), rl[r]);
          }
        }
        // The strips are not zeroed: the first product into key tile j0 (first
        // head of the group; query block j0 when causal, else block 0) overwrites.
        const float strip_beta = h == g * group && i0 == (d.causal ? j0 : 0) ? 0.0f : 1.0f;
        Sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, hs, rows, 1.0f, p, kBc, gp, ldg,
              strip_beta, dvs + static_cast<int64_t>(j0) * hs, hs);
        Sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, hs, 1.0f, gp, ldg, vp, ldv, 0.0f,
              ds, kBc);
        for (int r = 0; r < rows; ++r) {
          float* dr = ds + r * kBc;
          const float* pr = p + r * kBc;
          const float dr0 = dd[r];
#pragma omp simd
          for (int cc = 0; cc < cols; ++cc) dr[cc] = pr[cc] * (dr[cc] - dr0) * scale;
        }
        // The first tile (j0 == 0) is visible to every row and initialises dQ_i.
        Sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hs, cols, 1.0f, ds, kBc, kp, ldk,
              j0 == 0 ? 0.0f : 1.0f, dqt, hs);
        Sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, hs, rows, 1.0f, ds, kBc, qp, ldq,
              strip_beta, dks + static_cast<int64_t>(j0) * hs, hs);
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
  const size_t per = PerThreadFloats(d);
  float* pool = tls_pool.Get(per * nt);
  const Views w{out, q, k, v, {}, {}, {}, {}};
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
      ForwardBlock(d, dtype, scale, w, lse, bh / d.NH, bh % d.NH, ib * kBr,
                   pool + per * omp_get_thread_num());
    }
  }
}

void FlashAttentionBackward(int nt, const AttentionDims& d, DType dtype, HeadsView dq, HeadsView dk,
                            HeadsView dv, HeadsView dout, HeadsView q, HeadsView k, HeadsView v,
                            HeadsView out, const float* lse) {
  CheckArgs(nt, d, dtype);
  if (d.B == 0 || d.T == 0) return;
  const size_t per = PerThreadFloats(d);
  float* pool = tls_pool.Get(per * nt);
  const Views w{out, q, k, v, dout, dq, dk, dv};
  const float scale = Scale(d);
  const int tasks = d.B * d.NKV;
  BlasSingleThreadScope single;
#pragma omp parallel num_threads(nt)
  {
    SingleThreadedBlasHere();
#pragma omp for schedule(dynamic, 1)
    for (int task = 0; task < tasks; ++task) {
      BackwardGroup(d, dtype, scale, w, lse, task / d.NKV, task % d.NKV,
                    pool + per * omp_get_thread_num());
    }
  }
}

namespace flash_internal {
size_t ScratchPoolBytes() { return tls_pool.bytes(); }
void ReleaseScratchPool() { tls_pool.Release(); }
}  // namespace flash_internal

}  // namespace anvil::kernels::cpu
