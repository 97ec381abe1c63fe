// Bulk dtype conversions (convert.h) and the Backend's Convert dispatch.
//
// The bulk loops call the scalar inline functions; they are written
// branch-free so these loops vectorise, which keeps bulk and scalar results
// bit-identical by construction.
#include "kernels/cpu/convert.h"

#include <algorithm>

#include "kernels/check.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/parallel.h"

namespace anvil::kernels {

void ConvertF32ToBF16(uint16_t* dst, const float* src, size_t n) {
#pragma omp simd
  for (size_t i = 0; i < n; ++i) dst[i] = F32ToBF16(src[i]);
}

void ConvertBF16ToF32(float* dst, const uint16_t* src, size_t n) {
#pragma omp simd
  for (size_t i = 0; i < n; ++i) dst[i] = BF16ToF32(src[i]);
}

void ConvertF32ToF16(uint16_t* dst, const float* src, size_t n) {
#pragma omp simd
  for (size_t i = 0; i < n; ++i) dst[i] = F32ToF16(src[i]);
}

void ConvertF16ToF32(float* dst, const uint16_t* src, size_t n) {
#pragma omp simd
  for (size_t i = 0; i < n; ++i) dst[i] = F16ToF32(src[i]);
}

namespace cpu {
namespace {

bool IsFloatType(DType t) { return t == DType::kF32 || t == DType::kBF16 || t == DType::kF16; }

// Converts n elements through fp32; when neither side is fp32 it goes via a
// stack buffer in cache-sized pieces.
void ConvertSpan(void* dst, DType dt, const void* src, DType st, size_t n) {
  if (st == DType::kF32) {
    const float* s = static_cast<const float*>(src);
    uint16_t* d = static_cast<uint16_t*>(dst);
    if (dt == DType::kBF16) {
      ConvertF32ToBF16(d, s, n);
    } else {
      ConvertF32ToF16(d, s, n);
    }
    return;
  }
  if (dt == DType::kF32) {
    const uint16_t* s = static_cast<const uint16_t*>(src);
    float* d = static_cast<float*>(dst);
    if (st == DType::kBF16) {
      ConvertBF16ToF32(d, s, n);
    } else {
      ConvertF16ToF32(d, s, n);
    }
    return;
  }
  constexpr size_t kPiece = 1024;
  float tmp[kPiece];
  const uint16_t* s = static_cast<const uint16_t*>(src);
  uint16_t* d = static_cast<uint16_t*>(dst);
  for (size_t i = 0; i < n; i += kPiece) {
    const size_t m = std::min(kPiece, n - i);
    ConvertSpan(tmp, DType::kF32, s + i, st, m);
    ConvertSpan(d + i, dt, tmp, DType::kF32, m);
  }
}

}  // namespace

void Convert(int nt, void* dst, DType dst_type, const void* src, DType src_type, size_t n) {
  if (dst_type == src_type) {
    ParallelMemcpy(nt, dst, src, n * DTypeSize(src_type));
    return;
  }
  ANVIL_KCHECK(IsFloatType(dst_type) && IsFloatType(src_type),
               "Convert supports F32/BF16/F16 pairs and same-type copies");
  const int64_t len = static_cast<int64_t>(n);
  constexpr int64_t kChunk = 1 << 14;
  const int64_t chunks = (len + kChunk - 1) / kChunk;
#pragma omp parallel for num_threads(nt) schedule(static) if (n >= kMinParallelElems)
  for (int64_t c = 0; c < chunks; ++c) {
    const size_t i0 = static_cast<size_t>(c * kChunk);
    ConvertSpan(static_cast<char*>(dst) + i0 * DTypeSize(dst_type), dst_type,
                static_cast<const char*>(src) + i0 * DTypeSize(src_type), src_type,
                std::min(n - i0, static_cast<size_t>(kChunk)));
  }
}

}  // namespace cpu
}  // namespace anvil::kernels
