// dtype conversions on CUDA. The device functions are the same integer
// algorithms as kernels/cpu/convert.h (round-to-nearest-even, NaN quieted
// with its top payload bits kept, fp16 overflow to inf, subnormals), so both
// backends produce bit-identical results; cuda_ops_test checks that.
#include "kernels/check.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.cuh"

namespace anvil::kernels::cuda {
namespace {

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

__device__ __forceinline__ float Load(const void* p, DType t, size_t i) {
  switch (t) {
    case DType::kBF16:
      return DevBF16ToF32(static_cast<const uint16_t*>(p)[i]);
    case DType::kF16:
      return DevF16ToF32(static_cast<const uint16_t*>(p)[i]);
    default:
      return static_cast<const float*>(p)[i];
  }
}

__device__ __forceinline__ void Store(void* p, DType t, size_t i, float v) {
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

__global__ void ConvertKernel(void* dst, DType dt, const void* src, DType st, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    Store(dst, dt, i, Load(src, st, i));
  }
}

bool IsFloatType(DType t) { return t == DType::kF32 || t == DType::kBF16 || t == DType::kF16; }

}  // namespace

void Convert(const Ctx& ctx, void* dst, DType dst_type, const void* src, DType src_type, size_t n) {
  if (n == 0) return;
  if (dst_type == src_type) {
    ANVIL_CUDA_CHECK(
        cudaMemcpyAsync(dst, src, n * DTypeSize(src_type), cudaMemcpyDeviceToDevice, ctx.stream));
    return;
  }
  ANVIL_KCHECK(IsFloatType(dst_type) && IsFloatType(src_type),
               "Convert supports F32/BF16/F16 pairs and same-type copies");
  ConvertKernel<<<Blocks(n, 256), 256, 0, ctx.stream>>>(dst, dst_type, src, src_type, n);
  ANVIL_CUDA_LAUNCH_CHECK();
}

}  // namespace anvil::kernels::cuda
