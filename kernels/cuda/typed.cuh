// Typed element access for the CUDA kernels: fp32, bf16 and fp16 storage
// behind one fp32 arithmetic. A TArg is a device pointer and its element
// type; ld widens, st rounds once (round-to-nearest-even, as
// kernels/cpu/convert.h), add reads, adds in fp32 and rounds once.
//
// The conversion functions are the same integer algorithms as the CPU's
// (NaN quieted with its top payload bits kept, fp16 overflow to inf,
// subnormals), so both devices round identically. The dtype is a kernel
// argument, uniform across a launch: the switch costs no divergence.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common/dtype.h"
#include "kernels/tensor.h"

namespace anvil::kernels::cuda {

__device__ __forceinline__ uint16_t DevF32ToBF16(float f) {
  const uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

__device__ __forceinline__ float DevBF16ToF32(uint16_t h) {
  return __uint_as_float(static_cast<uint32_t>(h) << 16);
}

__device__ __forceinline__ uint16_t DevF32ToF16(float f) {
  const uint32_t u = __float_as_uint(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t a = u & 0x7fffffffu;
  uint32_t r;
  if (a > 0x7f800000u) {
    r = 0x7e00u | ((a >> 13) & 0x3ffu);
  } else if (a >= 0x477ff000u) {
    r = 0x7c00u;
  } else if (a >= (113u << 23)) {
    r = (a - (112u << 23) + 0xfffu + ((a >> 13) & 1u)) >> 13;
  } else {
    const uint32_t exp = a >> 23;
    if (exp < 101u) {
      r = 0;
    } else {
      const uint32_t shift = 126u - exp;  // 14..25
      const uint32_t mant = (a & 0x7fffffu) | 0x800000u;
      const uint32_t q = mant >> shift;
      const uint32_t rem = mant & ((1u << shift) - 1u);
      const uint32_t half = 1u << (shift - 1u);
      r = q + ((rem > half || (rem == half && (q & 1u))) ? 1u : 0u);
    }
  }
  return static_cast<uint16_t>(sign | r);
}

__device__ __forceinline__ float DevF16ToF32(uint16_t h) {
  const uint32_t x = h;
  const uint32_t sign = (x & 0x8000u) << 16;
  const uint32_t exp = (x >> 10) & 0x1fu;
  const uint32_t mant = x & 0x3ffu;
  uint32_t r;
  if (exp == 0) {
    r = __float_as_uint(static_cast<float>(mant) * 5.9604644775390625e-8f);
  } else if (exp == 31u) {
    r = 0x7f800000u | (mant << 13);
  } else {
    r = ((exp + 112u) << 23) | (mant << 13);
  }
  return __uint_as_float(sign | r);
}

__device__ __forceinline__ float LoadAs(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::kBF16:
      return DevBF16ToF32(static_cast<const uint16_t*>(p)[i]);
    case DType::kF16:
      return DevF16ToF32(static_cast<const uint16_t*>(p)[i]);
    default:
      return static_cast<const float*>(p)[i];
  }
}

__device__ __forceinline__ void StoreAs(void* p, DType t, int64_t i, float v) {
  switch (t) {
    case DType::kBF16:
      static_cast<uint16_t*>(p)[i] = DevF32ToBF16(v);
      break;
    case DType::kF16:
      static_cast<uint16_t*>(p)[i] = DevF32ToF16(v);
      break;
    default:
      static_cast<float*>(p)[i] = v;
      break;
  }
}

// A float operand in device memory (F32, BF16 or F16); p may be null for an
// absent optional operand (check ok() before use).
struct TArg {
  void* p = nullptr;
  DType t = DType::kF32;

  __device__ __forceinline__ bool ok() const { return p != nullptr; }
  __device__ __forceinline__ float ld(int64_t i) const { return LoadAs(p, t, i); }
  __device__ __forceinline__ void st(int64_t i, float v) const { StoreAs(p, t, i, v); }
  __device__ __forceinline__ void add(int64_t i, float v) const {
    StoreAs(p, t, i, LoadAs(p, t, i) + v);
  }
  // Stores v, or adds it when accumulate.
  __device__ __forceinline__ void put(int64_t i, float v, bool accumulate) const {
    if (accumulate) {
      add(i, v);
    } else {
      st(i, v);
    }
  }
};

inline TArg Arg(const TensorView& v) { return TArg{v.data, v.dtype}; }

}  // namespace anvil::kernels::cuda
