// Causal multi-head self-attention, forward and backward.
//
// qkv (B,T,3C) packed [q | k | v]; head h reads columns h*hs..(h+1)*hs of
// each part (hs = C/NH), addressed in place with leading dimension 3C, so no
// permute/copy is ever made. One (b,h) pair is one task; tasks run in
// parallel on OpenMP threads, each calling single-threaded sgemm.
//
// Causality is exploited by blocks of kRowBlock: query-row block i0 only
// needs key columns [0, i0+rows) (Q K^T, P V, dP, dQ), and key-column block
// j0 only needs query rows [j0, T) (dV, dK), which cuts every product to
// ~(1/2 + kRowBlock/2T) of the full square.
//
// Forward: att[b,h] (T,T) = softmax(scale * Q K^T) with zeros above the
// diagonal (saved for backward); out[b,:,h] = att V.
// Backward (accumulating into dqkv; datt is the caller's scratch, holding
// dP then dS in place):
//   dP = dout V^T;  dV += P^T dout;  dS = P * (dP - rowsum(P*dP)) * scale;
//   dQ += dS K;     dK += dS^T Q.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/blas.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/vec_math.h"

namespace anvil::kernels::cpu {
namespace {

constexpr int kRowBlock = 64;

// The row loops below run over [0, n) with n = t+1 rounded up to a multiple
// of 16 (capped at T), masking j > t by selects, so they vectorise without a
// scalar remainder (kernels/CMakeLists.txt turns off GCC's loop splitting,
// which would otherwise split them at j == t); entries in (t, n) may be stale
// scratch and are never let through the masks.
inline int PaddedEnd(int t, int T) { return std::min(T, (t + 16) & ~15); }

// Row t of a causal score matrix (length T), in place: softmax over [0, t],
// zeros over (t, zero_end).
inline void CausalSoftmaxRow(float* row, int t, int T, int zero_end) {
  const int n = PaddedEnd(t, T);
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  float mx = kNegInf;
#pragma omp simd reduction(max : mx)
  for (int j = 0; j < n; ++j) {
    const float v = j <= t ? row[j] : kNegInf;
    mx = mx > v ? mx : v;
  }
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int j = 0; j < n; ++j) {
    const float e = j <= t ? FastExp(row[j] - mx) : 0.0f;
    row[j] = e;
    sum += e;
  }
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int j = 0; j < n; ++j) row[j] *= inv;
#pragma omp simd
  for (int j = n; j < zero_end; ++j) row[j] = 0.0f;
}

// Softmax backward for row t, in place over d (which holds dP on entry):
// d = p * (d - sum_j p_j d_j) * scale over [0, t], zeros over (t, zero_end).
inline void CausalSoftmaxBackwardRow(float* d, const float* p, int t, int T, int zero_end,
                                     float scale) {
  const int n = PaddedEnd(t, T);
  float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
  for (int j = 0; j < n; ++j) dot += j <= t ? p[j] * d[j] : 0.0f;
#pragma omp simd
  for (int j = 0; j < n; ++j) d[j] = j <= t ? p[j] * (d[j] - dot) * scale : 0.0f;
#pragma omp simd
  for (int j = n; j < zero_end; ++j) d[j] = 0.0f;
}

}  // namespace

void AttentionForward(int nt, float* out, float* att, const float* qkv, int B, int T, int C,
                      int NH) {
  const int hs = C / NH, C3 = 3 * C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  BlasSingleThreadScope single;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int bh = 0; bh < B * NH; ++bh) {
    const int b = bh / NH, h = bh % NH;
    const float* q = qkv + static_cast<int64_t>(b) * T * C3 + h * hs;
    const float* k = q + C;
    const float* v = q + 2 * C;
    float* a = att + static_cast<int64_t>(bh) * T * T;
    float* o = out + static_cast<int64_t>(b) * T * C + h * hs;
    for (int i0 = 0; i0 < T; i0 += kRowBlock) {
      const int rows = std::min(kRowBlock, T - i0), cols = i0 + rows;
      float* ab = a + static_cast<int64_t>(i0) * T;
      Sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, hs, scale,
                  q + static_cast<int64_t>(i0) * C3, C3, k, C3, 0.0f, ab, T);
      for (int r = 0; r < rows; ++r) {
        CausalSoftmaxRow(ab + static_cast<int64_t>(r) * T, i0 + r, T, T);
      }
      Sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hs, cols, 1.0f, ab, T, v, C3,
                  0.0f, o + static_cast<int64_t>(i0) * C, C);
    }
  }
}

void AttentionBackward(int nt, float* dqkv, float* datt, const float* dout, const float* qkv,
                       const float* att, int B, int T, int C, int NH) {
  const int hs = C / NH, C3 = 3 * C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  BlasSingleThreadScope single;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int bh = 0; bh < B * NH; ++bh) {
    const int b = bh / NH, h = bh % NH;
    const int64_t base = static_cast<int64_t>(b) * T * C3 + h * hs;
    const float* q = qkv + base;
    const float* k = q + C;
    const float* v = q + 2 * C;
    float* dq = dqkv + base;
    float* dk = dq + C;
    float* dv = dq + 2 * C;
    const float* a = att + static_cast<int64_t>(bh) * T * T;
    float* da = datt + static_cast<int64_t>(bh) * T * T;
    const float* g = dout + static_cast<int64_t>(b) * T * C + h * hs;
    for (int i0 = 0; i0 < T; i0 += kRowBlock) {
      const int rows = std::min(kRowBlock, T - i0), cols = i0 + rows;
      const float* ab = a + static_cast<int64_t>(i0) * T;
      float* dab = da + static_cast<int64_t>(i0) * T;
      const float* gb = g + static_cast<int64_t>(i0) * C;
      Sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, hs, 1.0f, gb, C, v, C3, 0.0f,
                  dab, T);
      for (int r = 0; r < rows; ++r) {
        CausalSoftmaxBackwardRow(dab + static_cast<int64_t>(r) * T,
                                 ab + static_cast<int64_t>(r) * T, i0 + r, T, cols, scale);
      }
      Sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hs, cols, 1.0f, dab, T, k, C3,
                  1.0f, dq + static_cast<int64_t>(i0) * C3, C3);
    }
    // dV and dK reduce over query rows: walk key-column blocks instead, so
    // each product has the long dimension (T - j0) as its inner one.
    for (int j0 = 0; j0 < T; j0 += kRowBlock) {
      const int width = std::min(kRowBlock, T - j0), depth = T - j0;
      const int64_t corner = static_cast<int64_t>(j0) * T + j0;
      Sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, width, hs, depth, 1.0f, a + corner, T,
                  g + static_cast<int64_t>(j0) * C, C, 1.0f, dv + static_cast<int64_t>(j0) * C3,
                  C3);
      Sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, width, hs, depth, 1.0f, da + corner, T,
                  q + static_cast<int64_t>(j0) * C3, C3, 1.0f, dk + static_cast<int64_t>(j0) * C3,
                  C3);
    }
  }
}

}  // namespace anvil::kernels::cpu
