// Flash attention's bf16 tiles on AVX512-BF16 (flash_attention.h is the
// contract; flash_attention.cc the fp32 path and the task scheme, which this
// file follows task for task).
//
// The widened path turns bf16 rows into fp32 and multiplies with sgemm; here
// every tile product is bf16 x bf16 with fp32 accumulation (PairGemm,
// bf16_pairs.h), reading q, k, v and dout rows from the views in place.
// Scores, the online softmax, P, dP and dS stay fp32; the operands P and dS
// of the products that consume them are rounded to bf16 first, as
// FlashAttention does on GPUs and PyTorch's bf16 CPU kernel does: a relative
// error of at most 2^-9 per element of P and dS on top of the widened path's.
//
// Operand forms (see bf16_pairs.h): a bf16 row read from a view is an A
// operand as it stands; P^T and dS^T (A operands of dV, dK) and P of the
// forward (which holds S^T) are paired rows of the fp32 tile, no transpose;
// B operands are paired rows of V, Q, dO, K or 32-bit transposes of Q, K, V.
// Forward: Q^T pairs once per task, V tile pairs once per key tile.
// Backward: K^T, V^T and K pairs once per (b, kv head) task as strips (their
// (T, HS) fp32 counterparts are not needed), Q and dO pairs once per query
// block. Diagonal tiles split at an even row so that pairs of query rows
// never straddle the halves.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>

#include "kernels/cpu/bf16_pairs.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/flash_attention_tiles.h"

namespace anvil::kernels::cpu::flash_tiles {
namespace {

// Words (32-bit) of scratch have the size of floats: carve both alike.
uint32_t* TakeWords(Carver& c, size_t words) { return reinterpret_cast<uint32_t*>(c.Take(words)); }

// Word pointer to row t of head h: rows of a view with even strides start on
// a pair boundary.
const uint32_t* RowWords(const HeadsView& v, int b, int t, int h) {
  return reinterpret_cast<const uint32_t*>(Row<const uint16_t>(v, b, t, h));
}

int Pairs(int n) { return (n + 1) / 2; }

// Rows of a diagonal tile's upper half: even, so paired query rows stay whole.
int EvenHalf(int rows) { return (rows / 2) & ~1; }

bool EvenView(const HeadsView& v) {
  return v.data == nullptr || (reinterpret_cast<uintptr_t>(v.data) % 4 == 0 && v.sb % 2 == 0 &&
                               v.st % 2 == 0 && v.sh % 2 == 0);
}

std::atomic<bool> pairs_allowed{true};

}  // namespace

bool PairsApply(const AttentionDims& d, const Views& w) {
  if (!pairs_allowed.load(std::memory_order_relaxed)) return false;
  if (!Bf16PairsAvailable() || d.HS % 2 != 0) return false;
  for (const HeadsView* v : {&w.out, &w.q, &w.k, &w.v, &w.dout, &w.dq, &w.dk, &w.dv}) {
    if (!EvenView(*v)) return false;
  }
  return true;
}

size_t PairsForwardFloats(const AttentionDims& d) {
  const size_t hs = d.HS;
  // Q^T pairs, o, V pairs, scores, P pairs; m, l, corr.
  return Lines(hs / 2 * kBr) + Lines(kBr * hs) + Lines(kBc / 2 * hs) + Lines(kBc * kBr) +
         Lines(kBc / 2 * kBr) + 3 * Lines(kBr);
}

size_t PairsBackwardFloats(const AttentionDims& d) {
  const size_t hs = d.HS, tp = Lines(d.T);
  // Q and dO pairs, dq; P, dS; P^T, dS^T and dS pairs; lse, D; strips: K^T
  // and V^T pairs, K pairs, dK, dV.
  return 2 * Lines(kBr / 2 * hs) + Lines(kBr * hs) + 2 * Lines(kBr * kBc) +
         3 * Lines(kBr / 2 * kBc) + 2 * Lines(kBr) + 2 * Lines(hs / 2 * tp) +
         Lines(tp / 2 * hs) + 2 * Lines(static_cast<size_t>(d.T) * hs);
}

void PairsForwardBlock(const AttentionDims& d, float scale, const Views& w, float* lse, int b,
                       int h, int i0, float* scratch) {
  const int hs = d.HS, hp = hs / 2, rows = std::min(kBr, d.T - i0), kvh = h / (d.NH / d.NKV);
  Carver c{scratch};
  uint32_t* qtp = TakeWords(c, hp * kBr);  // word (p, r): Q[r][2p..2p+1]
  float* o = c.Take(kBr * hs);
  uint32_t* vp = TakeWords(c, kBc / 2 * hs);  // V tile, pairs of keys
  float* st = c.Take(kBc * kBr);              // S^T, then P^T
  uint32_t* pp = TakeWords(c, kBc / 2 * kBr);  // P as an A operand: word (key pair, query)
  float* m = c.Take(kBr);
  float* l = c.Take(kBr);
  float* corr = c.Take(kBr);
  std::fill(m, m + rows, kNegInf);
  std::fill(l, l + rows, 0.0f);
  PackPairsOfTransposed(Row<const uint16_t>(w.q, b, i0, h), w.q.st, rows, hs, qtp, kBr);
  const int64_t smk = w.k.st / 2;
  auto tile = [&](int r0, int n, int j0, int cols) {
    // S^T = scale K_j Q_i^T: keys as rows, queries as columns.
    PairGemm(cols, n, hp, RowWords(w.k, b, j0, kvh), smk, 1, qtp + r0, kBr, scale, false, st, kBr);
    float* ob = o + static_cast<int64_t>(r0) * hs;
    SoftmaxTileStep(d, st, cols, n, i0, r0, j0, m, l, corr, ob, hs);
    // O += P V_j, P's pairs of keys taken from pairs of S^T's rows.
    PackPairRows(st, kBr, cols, n, pp, kBr);
    PairGemm(n, hs, Pairs(cols), pp, 1, kBr, vp, hs, 1.0f, j0 != 0, ob, hs);
  };
  const int kend = d.causal ? i0 + rows : d.T;
  for (int j0 = 0; j0 < kend; j0 += kBc) {
    const int cols = std::min(kBc, kend - j0);
    PackPairRows(Row<const uint16_t>(w.v, b, j0, kvh), w.v.st, cols, hs, vp, hs);
    if (SplitDiagonal(d, i0, j0, rows)) {
      const int half = EvenHalf(rows);
      tile(half, rows - half, j0, cols);
      tile(0, half, j0, half);
    } else {
      tile(0, rows, j0, cols);
    }
  }
  float* lse_row = lse + (static_cast<int64_t>(b) * d.NH + h) * d.T + i0;
  for (int r = 0; r < rows; ++r) {
    lse_row[r] = m[r] + std::log(l[r]);
    corr[r] = 1.0f / l[r];
  }
  StoreRows(w.out, DType::kBF16, /*accumulate=*/false, b, i0, h, rows, hs, o, corr);
}

void PairsBackwardGroup(const AttentionDims& d, float scale, const Views& w, const float* lse,
                        int b, int g, float* scratch) {
  const int hs = d.HS, hp = hs / 2, T = d.T, group = d.NH / d.NKV;
  const int tp = static_cast<int>(Lines(T));  // leading dimension of the transposed strips
  Carver c{scratch};
  uint32_t* qp = TakeWords(c, kBr / 2 * hs);  // Q_i, pairs of query rows
  uint32_t* gp = TakeWords(c, kBr / 2 * hs);  // dO_i, pairs of query rows
  float* dqt = c.Take(kBr * hs);
  float* p = c.Take(kBr * kBc);
  float* ds = c.Take(kBr * kBc);
  uint32_t* ptp = TakeWords(c, kBr / 2 * kBc);   // P^T: word (query pair, key)
  uint32_t* dstp = TakeWords(c, kBr / 2 * kBc);  // dS^T: word (query pair, key)
  uint32_t* dsp = TakeWords(c, kBr / 2 * kBc);   // dS: word (query, key pair), ld kBc / 2
  float* rl = c.Take(kBr);
  float* dd = c.Take(kBr);
  uint32_t* ktp = TakeWords(c, hp * tp);  // K^T: word (p, t) = K[t][2p..2p+1]
  uint32_t* vtp = TakeWords(c, hp * tp);  // V^T likewise
  uint32_t* kp = TakeWords(c, tp / 2 * hs);  // K, pairs of keys
  float* dks = c.Take(static_cast<size_t>(T) * hs);
  float* dvs = c.Take(static_cast<size_t>(T) * hs);
  PackPairsOfTransposed(Row<const uint16_t>(w.k, b, 0, g), w.k.st, T, hs, ktp, tp);
  PackPairsOfTransposed(Row<const uint16_t>(w.v, b, 0, g), w.v.st, T, hs, vtp, tp);
  PackPairRows(Row<const uint16_t>(w.k, b, 0, g), w.k.st, T, hs, kp, hs);
  const int64_t smq = w.q.st / 2, smg = w.dout.st / 2;
  int h = 0;
  // Query rows [i0+r0, i0+r0+n) (r0 even) against keys [j0, j0+cols);
  // accumulate_strips false when this is the first product into those keys'
  // dK/dV rows.
  auto step = [&](int i0, int r0, int n, int j0, int cols, bool accumulate_strips) {
    PairGemm(n, cols, hp, RowWords(w.q, b, i0 + r0, h), smq, 1, ktp + j0, tp, scale, false, p,
             kBc);
    ProbTile(d, p, n, cols, i0, r0, j0, rl);
    // dV_j += P^T dO_i.
    PackPairRows(p, kBc, n, cols, ptp, kBc);
    PairGemm(cols, hs, Pairs(n), ptp, 1, kBc, gp + r0 / 2 * hs, hs, 1.0f, accumulate_strips,
             dvs + static_cast<int64_t>(j0) * hs, hs);
    // dP = dO_i V_j^T, then dS = P (dP - D) scale.
    PairGemm(n, cols, hp, RowWords(w.dout, b, i0 + r0, h), smg, 1, vtp + j0, tp, 1.0f, false, ds,
             kBc);
    ScoreGradTile(ds, p, n, cols, dd + r0, scale);
    // dQ_i += dS K_j (the first key tile, visible to every row, initialises
    // dQ), and dK_j += dS^T Q_i.
    PackPairColumns(ds, kBc, n, cols, dsp, kBc / 2);
    PairGemm(n, hs, Pairs(cols), dsp, kBc / 2, 1, kp + j0 / 2 * hs, hs, 1.0f, j0 != 0,
             dqt + static_cast<int64_t>(r0) * hs, hs);
    PackPairRows(ds, kBc, n, cols, dstp, kBc);
    PairGemm(cols, hs, Pairs(n), dstp, 1, kBc, qp + r0 / 2 * hs, hs, 1.0f, accumulate_strips,
             dks + static_cast<int64_t>(j0) * hs, hs);
  };
  for (h = g * group; h < (g + 1) * group; ++h) {
    for (int i0 = 0; i0 < T; i0 += kBr) {
      const int rows = std::min(kBr, T - i0);
      PackPairRows(Row<const uint16_t>(w.q, b, i0, h), w.q.st, rows, hs, qp, hs);
      PackPairRows(Row<const uint16_t>(w.dout, b, i0, h), w.dout.st, rows, hs, gp, hs);
      const float* lse_row = lse + (static_cast<int64_t>(b) * d.NH + h) * T + i0;
      for (int r = 0; r < rows; ++r) {
        const uint16_t* gr = Row<const uint16_t>(w.dout, b, i0 + r, h);
        const uint16_t* orow = Row<const uint16_t>(w.out, b, i0 + r, h);
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int e = 0; e < hs; ++e) dot += BF16ToF32(gr[e]) * BF16ToF32(orow[e]);
        dd[r] = dot;
        rl[r] = lse_row[r];
      }
      const int kend = d.causal ? i0 + rows : T;
      for (int j0 = 0; j0 < kend; j0 += kBc) {
        const int cols = std::min(kBc, kend - j0);
        // As in BackwardGroup: the strips are never zeroed, the first
        // product into key tile j0's rows overwrites them.
        const bool acc = !(h == g * group && i0 == (d.causal ? j0 : 0));
        if (SplitDiagonal(d, i0, j0, rows)) {
          const int half = EvenHalf(rows);
          step(i0, half, rows - half, j0, cols, acc);
          step(i0, 0, half, j0, half, true);
        } else {
          step(i0, 0, rows, j0, cols, acc);
        }
      }
      StoreRows(w.dq, DType::kBF16, /*accumulate=*/true, b, i0, h, rows, hs, dqt, nullptr);
    }
  }
  StoreRows(w.dk, DType::kBF16, /*accumulate=*/true, b, 0, g, T, hs, dks, nullptr);
  StoreRows(w.dv, DType::kBF16, /*accumulate=*/true, b, 0, g, T, hs, dvs, nullptr);
}

}  // namespace anvil::kernels::cpu::flash_tiles

namespace anvil::kernels::cpu::flash_internal {
void AllowBf16Pairs(bool allow) { flash_tiles::pairs_allowed.store(allow); }
}  // namespace anvil::kernels::cpu::flash_internal
