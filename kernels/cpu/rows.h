// Row access for CPU ops written directly over typed views: widen one row
// (or a slice of one) of F32/BF16 storage into an fp32 buffer, and store or
// accumulate an fp32 row back, rounding once. The ops that use these
// (rmsnorm.cc, rope.cc, swiglu.cc) keep their math in fp32 and run one
// kernel for every storage combination; a row lives in L1, so the widening
// copy is cheap next to the arithmetic.
#pragma once

#include <cstdint>

#include "kernels/cpu/convert.h"
#include "kernels/tensor.h"

namespace anvil::kernels::cpu {

// Address of element `offset` (in elements) of v's storage.
inline void* ElemPtr(const TensorView& v, int64_t offset) {
  return static_cast<char*>(v.data) + offset * static_cast<int64_t>(DTypeSize(v.dtype));
}

// dst[0..n) = src[0..n) widened to fp32; t is F32 or BF16.
inline void LoadRow(float* dst, const void* src, DType t, int64_t n) {
  if (t == DType::kF32) {
    const float* s = static_cast<const float*>(src);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dst[i] = s[i];
  } else {
    const uint16_t* s = static_cast<const uint16_t*>(src);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dst[i] = BF16ToF32(s[i]);
  }
}

// dst[0..n) = src[0..n), rounded once when dst is BF16.
inline void StoreRow(void* dst, DType t, const float* src, int64_t n) {
  if (t == DType::kF32) {
    float* d = static_cast<float*>(dst);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) d[i] = src[i];
  } else {
    uint16_t* d = static_cast<uint16_t*>(dst);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) d[i] = F32ToBF16(src[i]);
  }
}

// dst[0..n) += src[0..n), the sum rounded once when dst is BF16.
inline void AccumulateRow(void* dst, DType t, const float* src, int64_t n) {
  if (t == DType::kF32) {
    float* d = static_cast<float*>(dst);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) d[i] += src[i];
  } else {
    uint16_t* d = static_cast<uint16_t*>(dst);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) d[i] = F32ToBF16(BF16ToF32(d[i]) + src[i]);
  }
}

}  // namespace anvil::kernels::cpu
