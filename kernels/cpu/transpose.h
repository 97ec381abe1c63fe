// Transposes of 32-bit elements (fp32, or pairs of bf16 packed in a word),
// for attention's per-tile operands.
#pragma once

#include <cstdint>

namespace anvil::kernels::cpu {

// dst (cols x rows, leading dimension ldd) = src (rows x cols, leading
// dimension lds) transposed, element by element, bits unchanged. By 8x8
// blocks of AVX shuffles where the build targets AVX (-march=native on any
// x86-64 CPU of the last decade), the edges and other builds element by
// element. src and dst must not overlap; both need 4-byte alignment only.
void Transpose32(const uint32_t* src, int64_t lds, int rows, int cols, uint32_t* dst, int64_t ldd);

inline void Transpose32(const float* src, int64_t lds, int rows, int cols, float* dst,
                        int64_t ldd) {
  Transpose32(reinterpret_cast<const uint32_t*>(src), lds, rows, cols,
              reinterpret_cast<uint32_t*>(dst), ldd);
}

}  // namespace anvil::kernels::cpu
