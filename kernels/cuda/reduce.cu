// SquaredNorm and HasNonFinite on CUDA. SquaredNorm is two-stage with a fixed
// grid (kReduceBlocks partials in ctx.scratch_d, then one block sums them),
// so the result is deterministic. Both wait for the stream before returning.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.cuh"
#include "kernels/cuda/reduce.cuh"

namespace anvil::kernels::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void SquaredNormPartialKernel(double* partial, const float* x, size_t n) {
  double s = 0.0;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const double d = x[i];
    s += d * d;
  }
  s = BlockSum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void SumPartialsKernel(double* partial) {
  double s = threadIdx.x < kReduceBlocks ? partial[threadIdx.x] : 0.0;
  s = BlockSum(s);
  if (threadIdx.x == 0) partial[0] = s;
}

__global__ void NonFiniteKernel(int* flag, const float* x, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    if ((__float_as_uint(x[i]) & 0x7f800000u) == 0x7f800000u) {
      *flag = 1;  // benign race: every writer stores 1
      return;
    }
  }
}

}  // namespace

double SquaredNorm(const Ctx& ctx, const float* x, size_t n) {
  if (n == 0) return 0.0;
  static_assert(kReduceBlocks <= 1024 && kReduceBlocks % 32 == 0);
  SquaredNormPartialKernel<<<kReduceBlocks, kThreads, 0, ctx.stream>>>(ctx.scratch_d, x, n);
  ANVIL_CUDA_LAUNCH_CHECK();
  SumPartialsKernel<<<1, kReduceBlocks, 0, ctx.stream>>>(ctx.scratch_d);
  ANVIL_CUDA_LAUNCH_CHECK();
  double result = 0.0;
  ANVIL_CUDA_CHECK(
      cudaMemcpyAsync(&result, ctx.scratch_d, sizeof(double), cudaMemcpyDeviceToHost, ctx.stream));
  ANVIL_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  return result;
}

bool HasNonFinite(const Ctx& ctx, const float* x, size_t n) {
  if (n == 0) return false;
  ANVIL_CUDA_CHECK(cudaMemsetAsync(ctx.flag_d, 0, sizeof(int), ctx.stream));
  NonFiniteKernel<<<Blocks(n, kThreads), kThreads, 0, ctx.stream>>>(ctx.flag_d, x, n);
  ANVIL_CUDA_LAUNCH_CHECK();
  int flag = 0;
  ANVIL_CUDA_CHECK(
      cudaMemcpyAsync(&flag, ctx.flag_d, sizeof(int), cudaMemcpyDeviceToHost, ctx.stream));
  ANVIL_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  return flag != 0;
}

}  // namespace anvil::kernels::cuda
