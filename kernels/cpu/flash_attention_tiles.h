// Internal to the CPU flash attention (flash_attention.cc, the fp32 and
// widened-bf16 tiles; flash_attention_pairs.cc, the AVX512-BF16 tiles): the
// tile sizes, scratch carving, and the softmax and store steps both share.
#pragma once

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "kernels/check.h"
#include "kernels/cpu/flash_attention.h"
#include "kernels/cpu/vec_math.h"

namespace anvil::kernels::cpu::flash_tiles {

constexpr int kBr = 64;  // query rows per block
constexpr int kBc = 64;  // keys per tile
// Causal tiles then line up with the diagonal: the first key tile is visible
// to every query row of a block, and key tile j is first reached by query
// block j (backward relies on both to skip zeroing its accumulators).
static_assert(kBr == kBc);
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Floats rounded up to whole 64-byte lines, so every scratch array is aligned.
constexpr size_t Lines(size_t floats) { return (floats + 15) & ~size_t{15}; }

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

inline int Ld(int64_t st) {
  ANVIL_KCHECK(st > 0 && st <= INT_MAX, "time stride must fit sgemm's int leading dimension");
  return static_cast<int>(st);
}

// view rows [t0, t0+rows) of head h (+)= src rows (leading dimension hs), times
// row_scale[r] when given. bf16: widen, add in fp32, round once.
void StoreRows(const HeadsView& v, DType dt, bool accumulate, int b, int t0, int h, int rows,
               int hs, const float* src, const float* row_scale);

// Keys of tile j0 that query row t may see: all `cols`, or those <= t.
inline int ValidCols(bool causal, int t, int j0, int cols) {
  return causal ? std::clamp(t - j0 + 1, 0, cols) : cols;
}

// Online softmax over a transposed score tile, in place: st holds S^T, key
// c of the tile in row c, query r in column r (leading dimension kBr), so
// every step below runs along a row of queries, vectorised, with no
// horizontal reductions. Queries q0+r see keys j0+c <= q0+r when kMasked.
// st becomes exp(s - m_new) (0 where masked); m, l are the queries' running
// max and sum; corr gets exp(m_old - m_new), the factor by which each
// query's output accumulator must be rescaled.
template <bool kMasked>
void OnlineSoftmaxColumns(float* st, int cols, int n, int q0, int j0, float* m, float* l,
                          float* corr) {
  float mx[kBr], base[kBr], sum[kBr];
  std::copy_n(m, n, mx);
  for (int c = 0; c < cols; ++c) {
    const float* row = st + c * kBr;
    const int first = j0 + c - q0;  // first visible query column when masked
#pragma omp simd
    for (int r = 0; r < n; ++r) {
      const float x = !kMasked || r >= first ? row[r] : kNegInf;
      mx[r] = mx[r] > x ? mx[r] : x;
    }
  }
  // A query with nothing visible yet keeps m = -inf; exp(-inf - 0) = 0 then.
#pragma omp simd
  for (int r = 0; r < n; ++r) {
    base[r] = mx[r] == kNegInf ? 0.0f : mx[r];
    sum[r] = 0.0f;
  }
  for (int c = 0; c < cols; ++c) {
    float* row = st + c * kBr;
    const int first = j0 + c - q0;
#pragma omp simd
    for (int r = 0; r < n; ++r) {
      const float p = !kMasked || r >= first ? FastExp(row[r] - base[r]) : 0.0f;
      row[r] = p;
      sum[r] += p;
    }
  }
#pragma omp simd
  for (int r = 0; r < n; ++r) {
    corr[r] = FastExp(m[r] - base[r]);
    l[r] = l[r] * corr[r] + sum[r];
    m[r] = mx[r];
  }
}

// One forward tile's softmax step: S^T (st, queries [r0, r0+n) of the block
// at i0 against keys [j0, j0+cols)) becomes P^T, those queries' running max
// m and sum l advance, and their output rows ob (leading dimension hs) are
// rescaled by exp(m_old - m_new) unless this is the first key tile.
inline void SoftmaxTileStep(const AttentionDims& d, float* st, int cols, int n, int i0, int r0,
                            int j0, float* m, float* l, float* corr, float* ob, int hs) {
  if (!d.causal || j0 + cols <= i0 + r0 + 1) {  // no query of the tile is masked
    OnlineSoftmaxColumns<false>(st, cols, n, i0 + r0, j0, m + r0, l + r0, corr);
  } else {
    OnlineSoftmaxColumns<true>(st, cols, n, i0 + r0, j0, m + r0, l + r0, corr);
  }
  if (j0 == 0) return;
  for (int r = 0; r < n; ++r) {
    float* orow = ob + r * hs;
    const float f = corr[r];
#pragma omp simd
    for (int e = 0; e < hs; ++e) orow[e] *= f;
  }
}

// P = exp(S - lse) for one row of a backward tile (0 beyond `valid`).
template <bool kFull>
inline void ProbRow(float* s, int cols, int valid, float lse) {
  if constexpr (kFull) cols = valid = kBc;
#pragma omp simd
  for (int c = 0; c < cols; ++c) s[c] = kFull || c < valid ? FastExp(s[c] - lse) : 0.0f;
}

// A backward tile's probabilities in place: p (n x cols, leading dimension
// kBc) holds S for query rows i0+r0.. against keys j0..; it becomes
// P = exp(S - lse) (rl: those rows' lse), 0 where masked.
inline void ProbTile(const AttentionDims& d, float* p, int n, int cols, int i0, int r0, int j0,
                     const float* rl) {
  if (cols == kBc && (!d.causal || j0 + kBc <= i0 + r0 + 1)) {  // no mask needed
    for (int r = 0; r < n; ++r) ProbRow<true>(p + r * kBc, 0, 0, rl[r0 + r]);
  } else {
    for (int r = 0; r < n; ++r) {
      ProbRow<false>(p + r * kBc, cols, ValidCols(d.causal, i0 + r0 + r, j0, cols), rl[r0 + r]);
    }
  }
}

// ds (n x cols, leading dimension kBc) holds dP; it becomes
// dS = P (dP - D) scale, D the rows' rowsum(dO * O).
inline void ScoreGradTile(float* ds, const float* p, int n, int cols, const float* dd, float scale) {
  for (int r = 0; r < n; ++r) {
    float* dr = ds + r * kBc;
    const float* pr = p + r * kBc;
    const float dr0 = dd[r];
#pragma omp simd
    for (int cc = 0; cc < cols; ++cc) dr[cc] = pr[cc] * (dr[cc] - dr0) * scale;
  }
}

struct Views {
  HeadsView out, q, k, v, dout, dq, dk, dv;
};

// Diagonal tiles of causal attention (j0 == i0, cols == rows) are done as two
// row halves, the upper one seeing only its own half of the keys: this skips
// the tile's fully masked upper-right quarter (a quarter of the diagonal
// work; 10% of all of it at T=256), for sgemm calls still large enough to run
// near full speed. The lower half goes first (backward relies on it).
constexpr int kMinSplitRows = 32;
inline bool SplitDiagonal(const AttentionDims& d, int i0, int j0, int rows) {
  return d.causal && i0 == j0 && rows >= kMinSplitRows;
}

// The AVX512-BF16 tiles (flash_attention_pairs.cc): per-thread scratch
// floats, and the same tasks as the widened path's ForwardBlock and
// BackwardGroup. Used for bf16 when PairsApply(d, views).
bool PairsApply(const AttentionDims& d, const Views& w);
size_t PairsForwardFloats(const AttentionDims& d);
size_t PairsBackwardFloats(const AttentionDims& d);
void PairsForwardBlock(const AttentionDims& d, float scale, const Views& w, float* lse, int b,
                       int h, int i0, float* scratch);
void PairsBackwardGroup(const AttentionDims& d, float scale, const Views& w, const float* lse,
                        int b, int g, float* scratch);

}  // namespace anvil::kernels::cpu::flash_tiles
