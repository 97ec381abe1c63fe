// Residual add, Accumulate and Scale on CUDA (elementwise).
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.cuh"

namespace anvil::kernels::cuda {
namespace {

__global__ void AddKernel(float* out, const float* a, const float* b, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    out[i] = a[i] + b[i];
  }
}

__global__ void ScaleKernel(float* x, float alpha, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    x[i] *= alpha;
  }
}

}  // namespace

void ResidualForward(const Ctx& ctx, float* out, const float* a, const float* b, size_t n) {
  if (n == 0) return;
  AddKernel<<<Blocks(n, 256), 256, 0, ctx.stream>>>(out, a, b, n);
  ANVIL_CUDA_LAUNCH_CHECK();
}

void Accumulate(const Ctx& ctx, float* dst, const float* src, size_t n) {
  ResidualForward(ctx, dst, dst, src, n);
}

void Scale(const Ctx& ctx, float* x, float alpha, size_t n) {
  if (n == 0) return;
  ScaleKernel<<<Blocks(n, 256), 256, 0, ctx.stream>>>(x, alpha, n);
  ANVIL_CUDA_LAUNCH_CHECK();
}

}  // namespace anvil::kernels::cuda
