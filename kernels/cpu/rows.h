// Row-at-a-time dtype handling for the memory-bound CPU ops of the image and
// diffusion families: a row of an F32|BF16 view is read as fp32 (in place
// when F32, widened into a per-thread buffer when BF16), computed on in
// fp32, and written back once (overwrite or +=, BF16 rounded to nearest
// even once). Rows live in L1, so the extra pass costs little next to the
// memory traffic, and one fp32 loop serves every mix of dtypes.
//
// Views are addressed by element offsets into their buffer; a row is n
// consecutive elements (the contiguous last dimension of the view).
#pragma once

#include <omp.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/convert.h"
#include "kernels/cpu/typed.h"
#include "kernels/tensor.h"

namespace anvil::kernels::cpu {

// fp32 values of v's elements [off, off + n): v's own memory when F32.
inline const float* LoadRow(const TensorView& v, int64_t off, int64_t n, float* buf) {
  if (v.dtype == DType::kF32) return v.as<float>() + off;
  ConvertBF16ToF32(buf, v.as<uint16_t>() + off, static_cast<size_t>(n));
  return buf;
}

// v's elements [off, off + n) = src, or += src when accumulate.
inline void StoreRow(const TensorView& v, int64_t off, const float* src, int64_t n,
                     bool accumulate) {
  if (v.dtype == DType::kF32) {
    float* d = v.as<float>() + off;
    if (accumulate) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) d[i] += src[i];
    } else if (d != src) {
      std::memcpy(d, src, static_cast<size_t>(n) * sizeof(float));
    }
    return;
  }
  uint16_t* d = v.as<uint16_t>() + off;
  if (accumulate) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) d[i] = F32ToBF16(BF16ToF32(d[i]) + src[i]);
  } else {
    ConvertF32ToBF16(d, src, static_cast<size_t>(n));
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
