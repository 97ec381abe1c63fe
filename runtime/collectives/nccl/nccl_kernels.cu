// NCCL backend kernels: grid-stride loops, one element per thread step.
#include "runtime/collectives/nccl/nccl_kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace anvil::nccl_internal {
namespace {

constexpr int kThreads = 256;

unsigned Blocks(size_t n) {
  const size_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 65535 ? b : 65535);
}

__device__ inline float ToFloat(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ inline float ToFloat(__half x) { return __half2float(x); }
template <typename T>
__device__ inline T FromFloat(float x);
template <>
__device__ inline __nv_bfloat16 FromFloat<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <>
__device__ inline __half FromFloat<__half>(float x) { return __float2half_rn(x); }

template <typename T>
__global__ void Widen(const T* in, float* out, size_t n) {
  for (size_t i = blockIdx.x * size_t{kThreads} + threadIdx.x; i < n; i += size_t{gridDim.x} * kThreads) {
    out[i] = ToFloat(in[i]);
  }
}

template <typename T>
__global__ void Narrow(const float* in, T* out, size_t n, float divisor) {
  for (size_t i = blockIdx.x * size_t{kThreads} + threadIdx.x; i < n; i += size_t{gridDim.x} * kThreads) {
    out[i] = FromFloat<T>(in[i] / divisor);
  }
}

template <typename T>
__global__ void DivideHalf(T* data, size_t n, float divisor) {
  for (size_t i = blockIdx.x * size_t{kThreads} + threadIdx.x; i < n; i += size_t{gridDim.x} * kThreads) {
    data[i] = FromFloat<T>(ToFloat(data[i]) / divisor);
  }
}

template <typename T>
__global__ void DivideScalar(T* data, size_t n, T divisor) {
  for (size_t i = blockIdx.x * size_t{kThreads} + threadIdx.x; i < n; i += size_t{gridDim.x} * kThreads) {
    data[i] = data[i] / divisor;
  }
}

}  // namespace

cudaError_t LaunchWiden(DType dtype, const void* in, float* out, size_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (dtype == DType::kBF16) {
    Widen<<<Blocks(n), kThreads, 0, stream>>>(static_cast<const __nv_bfloat16*>(in), out, n);
  } else {
    Widen<<<Blocks(n), kThreads, 0, stream>>>(static_cast<const __half*>(in), out, n);
  }
  return cudaGetLastError();
}

cudaError_t LaunchNarrow(DType dtype, const float* in, void* out, size_t n, int divisor,
                         cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const float d = static_cast<float>(divisor);
  if (dtype == DType::kBF16) {
    Narrow<<<Blocks(n), kThreads, 0, stream>>>(in, static_cast<__nv_bfloat16*>(out), n, d);
  } else {
    Narrow<<<Blocks(n), kThreads, 0, stream>>>(in, static_cast<__half*>(out), n, d);
  }
  return cudaGetLastError();
}

cudaError_t LaunchDivide(DType dtype, void* data, size_t n, int divisor, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  switch (dtype) {
    case DType::kF32:
      DivideScalar<<<Blocks(n), kThreads, 0, stream>>>(static_cast<float*>(data), n,
                                                       static_cast<float>(divisor));
      break;
    case DType::kI32:
      DivideScalar<<<Blocks(n), kThreads, 0, stream>>>(static_cast<int32_t*>(data), n,
                                                       static_cast<int32_t>(divisor));
      break;
    case DType::kI64:
      DivideScalar<<<Blocks(n), kThreads, 0, stream>>>(static_cast<int64_t*>(data), n,
                                                       static_cast<int64_t>(divisor));
      break;
    case DType::kBF16:
      DivideHalf<<<Blocks(n), kThreads, 0, stream>>>(static_cast<__nv_bfloat16*>(data), n,
                                                     static_cast<float>(divisor));
      break;
    case DType::kF16:
      DivideHalf<<<Blocks(n), kThreads, 0, stream>>>(static_cast<__half*>(data), n,
                                                     static_cast<float>(divisor));
      break;
    default:
      return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace anvil::nccl_internal
