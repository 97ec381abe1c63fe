// LayerNorm on CUDA (eps a parameter, 1e-5 by default), forward and backward. One warp per row for
// the row-wise parts; parameter gradients by column_sums.cuh.
#include "kernels/cuda/column_sums.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.cuh"
#include "kernels/cuda/reduce.cuh"

namespace anvil::kernels::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kRowsPerBlock = kThreads / 32;

__global__ void LayerNormForwardKernel(float* out, float* mean, float* rstd, const float* inp,
                                       const float* weight, const float* bias, int N, int C,
                                       float eps) {
  const int row = blockIdx.x * kRowsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;  // whole warps exit together
  const float* x = inp + static_cast<size_t>(row) * C;
  float* o = out + static_cast<size_t>(row) * C;
  float s = 0.0f;
  for (int c = lane; c < C; c += 32) s += x[c];
  const float m = WarpSum(s) / C;
  float v = 0.0f;
  for (int c = lane; c < C; c += 32) v += (x[c] - m) * (x[c] - m);
  const float r = 1.0f / sqrtf(WarpSum(v) / C + eps);
  for (int c = lane; c < C; c += 32) o[c] = (x[c] - m) * r * weight[c] + bias[c];
  if (lane == 0) {
    mean[row] = m;
    rstd[row] = r;
  }
}

__global__ void LayerNormBackwardKernel(float* dinp, const float* dout, const float* inp,
                                        const float* weight, const float* mean, const float* rstd,
                                        int N, int C) {
  const int row = blockIdx.x * kRowsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;
  const size_t off = static_cast<size_t>(row) * C;
  const float m = mean[row], r = rstd[row];
  float ds = 0.0f, dns = 0.0f;
  for (int c = lane; c < C; c += 32) {
    const float wd = weight[c] * dout[off + c];
    ds += wd;
    dns += wd * (inp[off + c] - m) * r;
  }
  const float dmean = WarpSum(ds) / C, dnmean = WarpSum(dns) / C;
  for (int c = lane; c < C; c += 32) {
    const float xhat = (inp[off + c] - m) * r;
    dinp[off + c] += (weight[c] * dout[off + c] - dmean - xhat * dnmean) * r;
  }
}

}  // namespace

void LayerNormForward(const Ctx& ctx, float* out, float* mean, float* rstd, const float* inp,
                      const float* weight, const float* bias, int N, int C, float eps) {
  if (N == 0) return;
  const unsigned grid = (N + kRowsPerBlock - 1) / kRowsPerBlock;
  LayerNormForwardKernel<<<grid, kThreads, 0, ctx.stream>>>(out, mean, rstd, inp, weight, bias, N,
                                                            C, eps);
  ANVIL_CUDA_LAUNCH_CHECK();
}

void LayerNormBackward(const Ctx& ctx, float* dinp, float* dweight, float* dbias, const float* dout,
                       const float* inp, const float* weight, const float* mean, const float* rstd,
                       int N, int C) {
  if (N == 0) return;
  const unsigned grid = (N + kRowsPerBlock - 1) / kRowsPerBlock;
  LayerNormBackwardKernel<<<grid, kThreads, 0, ctx.stream>>>(dinp, dout, inp, weight, mean, rstd, N,
                                                             C);
  ANVIL_CUDA_LAUNCH_CHECK();
  LaunchColumnSums(ctx.stream, dweight, dbias, dout, inp, mean, rstd, N, C);
  ANVIL_CUDA_LAUNCH_CHECK();
}

}  // namespace anvil::kernels::cuda
