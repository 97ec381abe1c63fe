// Row access for the memory-bound CPU ops written directly over typed views
// (rmsnorm, rope, swiglu, the image and diffusion families): a row (or a
// slice of one) of F32|BF16 storage is read as fp32 — in place when F32,
// widened into a per-thread buffer when BF16 — computed on in fp32, and
// written back once (overwrite or +=, BF16 rounded to nearest even once).
// Rows live in L1, so the extra pass costs little next to the memory
// traffic, and one fp32 loop serves every mix of dtypes.
#pragma once

#include <omp.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/convert.h"
#include "kernels/cpu/typed.h"
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

// fp32 values of v's elements [off, off + n): v's own memory when F32.
inline const float* LoadRow(const TensorView& v, int64_t off, int64_t n, float* buf) {
  if (v.dtype == DType::kF32) return v.as<float>() + off;
  ConvertBF16ToF32(buf, v.as<uint16_t>() + off, static_cast<size_t>(n));
  return buf;
}

// v's elements [off, off + n) = src, or += src when accumulate.
inline void StoreRow(const TensorView& v, int64_t off, const float* src, int64_t n,
                     bool accumulate) {
  void* d = ElemPtr(v, off);
  if (accumulate) {
    AccumulateRow(d, v.dtype, src, n);
  } else if (v.dtype == DType::kBF16) {
    ConvertF32ToBF16(static_cast<uint16_t*>(d), src, static_cast<size_t>(n));
  } else if (d != src) {
    std::memcpy(d, src, static_cast<size_t>(n) * sizeof(float));
  }
}

// Per-thread fp32 work space from the device's caching allocator: `slots`
// buffers of `floats` each per thread, 64-byte aligned.
class ThreadBuffers {
 public:
  ThreadBuffers(Device& d, int nt, int slots, int64_t floats)
      : per_((floats + 15) / 16 * 16),
        slots_(slots),
        s_(d, static_cast<size_t>(nt) * slots * per_ * sizeof(float) + 64) {}
  // Slot k of the calling thread (omp_get_thread_num inside a region).
  float* Get(int k) const {
    return s_.f32() + (static_cast<int64_t>(omp_get_thread_num()) * slots_ + k) * per_;
  }

 private:
  int64_t per_;
  int slots_;
  Scratch s_;
};

}  // namespace anvil::kernels::cpu
