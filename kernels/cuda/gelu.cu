// GELU (tanh form) on CUDA, forward and backward (elementwise, +=).
// Evaluated as in kernels/cpu/gelu.cc through s = 0.5 (1 + tanh u) =
// 1 / (1 + exp(-2u)), which keeps full relative precision in the negative
// tail where 1 + tanh(u) cancels.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.cuh"

namespace anvil::kernels::cuda {
namespace {

constexpr float kS = 0.7978845608028654f;  // sqrt(2/pi)
constexpr float kC = 0.044715f;

__global__ void GeluForwardKernel(float* out, const float* inp, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float x = inp[i];
    out[i] = x / (1.0f + expf(-2.0f * kS * (x + kC * x * x * x)));
  }
}

__global__ void GeluBackwardKernel(float* dinp, const float* inp, const float* dout, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float x = inp[i];
    const float e = expf(-2.0f * kS * (x + kC * x * x * x));
    const float s = 1.0f / (1.0f + e);
    const float du = kS * (1.0f + 3.0f * kC * x * x);
    dinp[i] += dout[i] * (s + 2.0f * x * s * (e * s) * du);
  }
}

}  // namespace

void GeluForward(const Ctx& ctx, float* out, const float* inp, size_t n) {
  if (n == 0) return;
  GeluForwardKernel<<<Blocks(n, 256), 256, 0, ctx.stream>>>(out, inp, n);
  ANVIL_CUDA_LAUNCH_CHECK();
}

void GeluBackward(const Ctx& ctx, float* dinp, const float* inp, const float* dout, size_t n) {
  if (n == 0) return;
  GeluBackwardKernel<<<Blocks(n, 256), 256, 0, ctx.stream>>>(dinp, inp, dout, n);
  ANVIL_CUDA_LAUNCH_CHECK();
}

}  // namespace anvil::kernels::cuda
