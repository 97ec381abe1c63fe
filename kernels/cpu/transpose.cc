// 32-bit transposes (contract in transpose.h).
//
// The 8x8 block: eight row loads, then unpacklo/hi (pairs of rows
// interleaved), shuffle (quads of rows), permute2f128 (the two 128-bit
// halves), eight column stores: 24 shuffles for 64 elements, against one
// insert per element for the scalar loop GCC makes of the plain transpose
// (which took 16% of flash attention's forward, fp32, T=256 HS=64).
#include "kernels/cpu/transpose.h"

#if defined(__AVX__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstring>

namespace anvil::kernels::cpu {
namespace {

// The plain transpose of [r0, r1) x [c0, c1), by 16x16 blocks: each block
// reads 16 row pieces and writes 16 whole lines. Elements move by memcpy:
// callers pass bf16 pairs and fp32 tiles as words, so the memory's own type
// is not uint32_t.
void TransposeScalar(const uint32_t* src, int64_t lds, int r0, int r1, int c0, int c1,
                     uint32_t* dst, int64_t ldd) {
  constexpr int kB = 16;
  for (int rb = r0; rb < r1; rb += kB) {
    const int re = std::min(rb + kB, r1);
    for (int cb = c0; cb < c1; cb += kB) {
      const int ce = std::min(cb + kB, c1);
      for (int c = cb; c < ce; ++c)
        for (int r = rb; r < re; ++r) std::memcpy(dst + c * ldd + r, src + r * lds + c, 4);
    }
  }
}

#if defined(__AVX__)
inline void Block8x8(const uint32_t* src, int64_t lds, uint32_t* dst, int64_t ldd) {
  const auto* s = reinterpret_cast<const float*>(src);
  auto* d = reinterpret_cast<float*>(dst);
  __m256 r[8], t[8], u[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(s + i * lds);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);      // a0 b0 a1 b1 | a4 b4 a5 b5
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);  // a2 b2 a3 b3 | a6 b6 a7 b7
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);      // a0 b0 c0 d0 | a4 b4 c4 d4
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);  // column 1 | 5
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);  // column 2 | 6
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);  // column 3 | 7
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(d + i * ldd, _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
    _mm256_storeu_ps(d + (i + 4) * ldd, _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
  }
}
#endif

}  // namespace

void Transpose32(const uint32_t* src, int64_t lds, int rows, int cols, uint32_t* dst,
                 int64_t ldd) {
  int r8 = 0, c8 = 0;  // the part done by 8x8 blocks: [0, r8) x [0, c8)
#if defined(__AVX__)
  r8 = rows & ~7;
  c8 = cols & ~7;
  // Rows in bands of 8, columns in 8-wide steps: the band's 8 source lines
  // are read in order, the destination written 8 lines at a time.
  for (int r = 0; r < r8; r += 8)
    for (int c = 0; c < c8; c += 8) Block8x8(src + r * lds + c, lds, dst + c * ldd + r, ldd);
#endif
  TransposeScalar(src, lds, 0, r8, c8, cols, dst, ldd);     // right edge
  TransposeScalar(src, lds, r8, rows, 0, cols, dst, ldd);   // bottom edge
}

}  // namespace anvil::kernels::cpu
