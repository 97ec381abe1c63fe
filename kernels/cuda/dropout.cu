// Dropout on CUDA (elementwise.dropout): the mask of kernels/dropout_mask.h,
// so a CUDA run drops the same elements as a CPU run with the same seeds.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_device.cuh"
#include "kernels/cuda/ops.cuh"
#include "kernels/dropout_mask.h"
#include "kernels/ops/elementwise.h"

namespace anvil::kernels::cuda {
namespace {

template <typename T>
__device__ float Load(T v);
template <>
__device__ float Load(float v) { return v; }
template <>
__device__ float Load(__nv_bfloat16 v) { return __bfloat162float(v); }
template <>
__device__ float Load(__half v) { return __half2float(v); }

template <typename T>
__device__ T Store(float v);
template <>
__device__ float Store(float v) { return v; }
template <>
__device__ __nv_bfloat16 Store(float v) { return __float2bfloat16(v); }
template <>
__device__ __half Store(float v) { return __float2half(v); }

template <typename T>
__global__ void DropoutKernel(T* x, const int32_t* seeds, int64_t n, size_t total, uint32_t salt,
                              uint32_t threshold, float scale) {
  for (size_t j = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; j < total;
       j += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const int64_t b = static_cast<int64_t>(j) / n, i = static_cast<int64_t>(j) % n;
    const uint64_t key = DropoutKey(static_cast<uint32_t>(seeds[b]), salt);
    x[j] = DropoutKeep(key, static_cast<uint64_t>(i), threshold) ? Store<T>(Load(x[j]) * scale)
                                                                 : Store<T>(0.0f);
  }
}

template <typename T>
void Launch(const Ctx& ctx, void* x, const int32_t* seeds, int64_t n, size_t total,
            const DropoutParams& p) {
  DropoutKernel<T><<<Blocks(total, 256), 256, 0, ctx.stream>>>(
      static_cast<T*>(x), seeds, n, total, p.salt, DropoutThreshold(p.p), 1.0f / (1.0f - p.p));
  ANVIL_CUDA_LAUNCH_CHECK();
}

}  // namespace

void DropoutCuda(Device& d, const TensorView& x, const TensorView& seeds, const DropoutParams& p) {
  const size_t total = static_cast<size_t>(x.numel());
  const int64_t n = x.numel() / seeds.shape[0];
  const int32_t* s = seeds.as<int32_t>();
  switch (x.dtype) {
    case DType::kF32: Launch<float>(CtxOf(d), x.data, s, n, total, p); break;
    case DType::kBF16: Launch<__nv_bfloat16>(CtxOf(d), x.data, s, n, total, p); break;
    default: Launch<__half>(CtxOf(d), x.data, s, n, total, p); break;
  }
}

}  // namespace anvil::kernels::cuda
