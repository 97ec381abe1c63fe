// bf16 pair-form products (contract in bf16_pairs.h).
//
// Only the functions marked ANVIL_BF16_TARGET use AVX-512 (GCC/Clang target
// attributes, not per-file flags: inline functions from shared headers are
// then never compiled for AVX-512 outside them), and only run after
// Bf16PairsAvailable().
//
// PairGemm: register blocks of up to 6 rows x 64 columns (24 zmm
// accumulators, 4 B vectors, 1 broadcast A word). Per pair p the block loads
// four 16-word vectors of B's row p and, per row, broadcasts one A word and
// issues four vdpbf16ps. A column tail (N % 16) uses masked loads and stores.
#include "kernels/cpu/bf16_pairs.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <string_view>

#include "kernels/check.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/cpu_info.h"
#include "kernels/cpu/dnnl_gemm.h"
#include "kernels/cpu/transpose.h"

#define ANVIL_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

namespace anvil::kernels::cpu {
namespace {

constexpr int kMr = 6;   // rows per register block
constexpr int kNv = 4;   // 16-lane vectors per register block (64 columns)

using BlockFn = void (*)(int kp, const uint32_t* ap, int64_t sm, int64_t sk, const uint32_t* bp,
                         int64_t ldb, __mmask16 last, float alpha, bool accumulate, float* c,
                         int64_t ldc);

template <int MR, int NV>
ANVIL_BF16_TARGET void Block(int kp, const uint32_t* ap, int64_t sm, int64_t sk,
                             const uint32_t* bp, int64_t ldb, __mmask16 last, float alpha,
                             bool accumulate, float* c, int64_t ldc) {
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[m][v] = _mm512_setzero_ps();
  for (int p = 0; p < kp; ++p) {
    const uint32_t* brow = bp + p * ldb;
    __m512i b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      b[v] = v == NV - 1 ? _mm512_maskz_loadu_epi32(last, brow + 16 * v)
                         : _mm512_loadu_si512(brow + 16 * v);
    }
    const uint32_t* a = ap + p * sk;
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      const __m512i w = _mm512_set1_epi32(static_cast<int>(a[m * sm]));
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        acc[m][v] = _mm512_dpbf16_ps(acc[m][v], (__m512bh)w, (__m512bh)b[v]);
      }
    }
  }
  const __m512 scale = _mm512_set1_ps(alpha);
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __mmask16 mask = v == NV - 1 ? last : static_cast<__mmask16>(0xffff);
      float* cp = c + m * ldc + 16 * v;
      __m512 r = _mm512_mul_ps(acc[m][v], scale);
      if (accumulate) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mask, cp));
      _mm512_mask_storeu_ps(cp, mask, r);
    }
  }
}

template <int MR>
constexpr BlockFn ForRows(int nv) {
  switch (nv) {
    case 1: return &Block<MR, 1>;
    case 2: return &Block<MR, 2>;
    case 3: return &Block<MR, 3>;
    default: return &Block<MR, 4>;
  }
}

BlockFn Pick(int mr, int nv) {
  switch (mr) {
    case 1: return ForRows<1>(nv);
    case 2: return ForRows<2>(nv);
    case 3: return ForRows<3>(nv);
    case 4: return ForRows<4>(nv);
    case 5: return ForRows<5>(nv);
    default: return ForRows<6>(nv);
  }
}

ANVIL_BF16_TARGET void PackRowsBf16(const uint16_t* x, int64_t ldx, int rows, int cols,
                                    uint32_t* out, int64_t ldo) {
  for (int p = 0; 2 * p < rows; ++p) {
    const uint16_t* r0 = x + 2 * p * ldx;
    uint32_t* o = out + p * ldo;
    if (2 * p + 1 < rows) {
      const uint16_t* r1 = r0 + ldx;
      for (int c = 0; c < cols; ++c) o[c] = r0[c] | static_cast<uint32_t>(r1[c]) << 16;
    } else {
      for (int c = 0; c < cols; ++c) o[c] = r0[c];
    }
  }
}

ANVIL_BF16_TARGET void PackRowsF32(const float* x, int64_t ldx, int rows, int cols, uint32_t* out,
                                   int64_t ldo) {
  for (int p = 0; 2 * p < rows; ++p) {
    const float* r0 = x + 2 * p * ldx;
    uint32_t* o = out + p * ldo;
    if (2 * p + 1 < rows) {
      const float* r1 = r0 + ldx;
      for (int c = 0; c < cols; ++c) {
        o[c] = F32ToBF16(r0[c]) | static_cast<uint32_t>(F32ToBF16(r1[c])) << 16;
      }
    } else {
      for (int c = 0; c < cols; ++c) o[c] = F32ToBF16(r0[c]);
    }
  }
}

ANVIL_BF16_TARGET void PackColumnsF32(const float* x, int64_t ldx, int rows, int cols,
                                      uint32_t* out, int64_t ldo) {
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    uint32_t* o = out + r * ldo;
    for (int p = 0; 2 * p + 1 < cols; ++p) {
      o[p] = F32ToBF16(xr[2 * p]) | static_cast<uint32_t>(F32ToBF16(xr[2 * p + 1])) << 16;
    }
    if (cols % 2 != 0) o[cols / 2] = F32ToBF16(xr[cols - 1]);
  }
}

}  // namespace

bool Bf16PairsAvailable() {
  static const bool available = [] {
    const char* env = std::getenv("ANVIL_BF16_PAIRS");
    if (env != nullptr && std::string_view(env) == "0") return false;
    return CpuHasAvx512Bf16() && DnnlHasNativeBf16();
  }();
  return available;
}

void PairGemm(int m, int n, int kp, const uint32_t* ap, int64_t sm, int64_t sk, const uint32_t* bp,
              int64_t ldb, float alpha, bool accumulate, float* c, int64_t ldc) {
  ANVIL_KCHECK(m >= 0 && n >= 0 && kp >= 0, "PairGemm dims");
  for (int n0 = 0; n0 < n; n0 += 16 * kNv) {
    const int nn = std::min(16 * kNv, n - n0);
    const int nv = (nn + 15) / 16;
    const __mmask16 last =
        nn % 16 == 0 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (nn % 16)) - 1);
    for (int m0 = 0; m0 < m; m0 += kMr) {
      const int mr = std::min(kMr, m - m0);
      Pick(mr, nv)(kp, ap + m0 * sm, sm, sk, bp + n0, ldb, last, alpha, accumulate,
                   c + m0 * ldc + n0, ldc);
    }
  }
}

void PackPairRows(const uint16_t* x, int64_t ldx, int rows, int cols, uint32_t* out, int64_t ldo) {
  PackRowsBf16(x, ldx, rows, cols, out, ldo);
}

void PackPairRows(const float* x, int64_t ldx, int rows, int cols, uint32_t* out, int64_t ldo) {
  PackRowsF32(x, ldx, rows, cols, out, ldo);
}

void PackPairColumns(const float* x, int64_t ldx, int rows, int cols, uint32_t* out, int64_t ldo) {
  PackColumnsF32(x, ldx, rows, cols, out, ldo);
}

void PackPairsOfTransposed(const uint16_t* y, int64_t ldy, int rows, int cols, uint32_t* out,
                           int64_t ldo) {
  ANVIL_KCHECK(cols % 2 == 0 && ldy % 2 == 0, "PackPairsOfTransposed needs even cols and ldy");
  Transpose32(reinterpret_cast<const uint32_t*>(y), ldy / 2, rows, cols / 2, out, ldo);
}

}  // namespace anvil::kernels::cpu
