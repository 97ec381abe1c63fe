// Token + position embedding on CUDA, forward and backward.
// Backward: dwpe by one thread per (t, c) summing over the batch (no
// atomics); dwte by atomicAdd, since several rows may share a token and the
// interface does not pass V (so there is no per-token loop to write).
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.cuh"

namespace anvil::kernels::cuda {
namespace {

__global__ void EncoderForwardKernel(float* out, const int32_t* tokens, const float* wte,
                                     const float* wpe, int T, int C, size_t total) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t row = i / C;
    const int c = static_cast<int>(i % C);
    const int t = static_cast<int>(row % T);
    out[i] = wte[static_cast<size_t>(tokens[row]) * C + c] + wpe[static_cast<size_t>(t) * C + c];
  }
}

__global__ void PositionBackwardKernel(float* dwpe, const float* dout, int B, int T, int C) {
  const size_t total = static_cast<size_t>(T) * C;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    float s = 0.0f;
    for (int b = 0; b < B; ++b) s += dout[static_cast<size_t>(b) * T * C + i];
    dwpe[i] += s;
  }
}

__global__ void TokenBackwardKernel(float* dwte, const float* dout, const int32_t* tokens, int C,
                                    size_t total) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t row = i / C;
    const int c = static_cast<int>(i % C);
    atomicAdd(&dwte[static_cast<size_t>(tokens[row]) * C + c], dout[i]);
  }
}

}  // namespace

void EncoderForward(const Ctx& ctx, float* out, const int32_t* tokens, const float* wte,
                    const float* wpe, int B, int T, int C) {
  const size_t total = static_cast<size_t>(B) * T * C;
  if (total == 0) return;
  EncoderForwardKernel<<<Blocks(total, 256), 256, 0, ctx.stream>>>(out, tokens, wte, wpe, T, C,
                                                                   total);
  ANVIL_CUDA_LAUNCH_CHECK();
}

void EncoderBackward(const Ctx& ctx, float* dwte, float* dwpe, const float* dout,
                     const int32_t* tokens, int B, int T, int C) {
  const size_t total = static_cast<size_t>(B) * T * C;
  if (total == 0) return;
  PositionBackwardKernel<<<Blocks(static_cast<size_t>(T) * C, 256), 256, 0, ctx.stream>>>(
      dwpe, dout, B, T, C);
  ANVIL_CUDA_LAUNCH_CHECK();
  TokenBackwardKernel<<<Blocks(total, 256), 256, 0, ctx.stream>>>(dwte, dout, tokens, C, total);
  ANVIL_CUDA_LAUNCH_CHECK();
}

}  // namespace anvil::kernels::cuda
