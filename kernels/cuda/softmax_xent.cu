// Fused softmax + cross-entropy on CUDA. One block per row for the forward
// (V may be large); the backward is elementwise. Targets < 0 are ignored.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.cuh"
#include "kernels/cuda/reduce.cuh"

namespace anvil::kernels::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void SoftmaxXentForwardKernel(float* losses, float* probs, const float* logits,
                                         const int32_t* targets, int V) {
  const size_t row = blockIdx.x;
  const float* l = logits + row * V;
  float* p = probs + row * V;
  float mx = -INFINITY;
  for (int j = threadIdx.x; j < V; j += blockDim.x) mx = fmaxf(mx, l[j]);
  mx = BlockMax(mx);
  float sum = 0.0f;
  for (int j = threadIdx.x; j < V; j += blockDim.x) sum += expf(l[j] - mx);
  sum = BlockSum(sum);
  const float inv = 1.0f / sum;
  for (int j = threadIdx.x; j < V; j += blockDim.x) p[j] = expf(l[j] - mx) * inv;
  if (threadIdx.x == 0) {
    const int32_t t = targets[row];
    losses[row] = t >= 0 ? logf(sum) - (l[t] - mx) : 0.0f;
  }
}

__global__ void SoftmaxXentBackwardKernel(float* dlogits, const float* probs,
                                          const int32_t* targets, float dloss, int V,
                                          size_t total) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t row = i / V;
    const int j = static_cast<int>(i % V);
    const int32_t t = targets[row];
    if (t < 0) continue;
    dlogits[i] += (probs[i] - (j == t ? 1.0f : 0.0f)) * dloss;
  }
}

}  // namespace

void SoftmaxCrossEntropyForward(const Ctx& ctx, float* losses, float* probs, const float* logits,
                                const int32_t* targets, int N, int V) {
  if (N == 0) return;
  SoftmaxXentForwardKernel<<<N, kThreads, 0, ctx.stream>>>(losses, probs, logits, targets, V);
  ANVIL_CUDA_LAUNCH_CHECK();
}

void SoftmaxCrossEntropyBackward(const Ctx& ctx, float* dlogits, const float* probs,
                                 const int32_t* targets, float dloss, int N, int V) {
  const size_t total = static_cast<size_t>(N) * V;
  if (total == 0) return;
  SoftmaxXentBackwardKernel<<<Blocks(total, 256), 256, 0, ctx.stream>>>(dlogits, probs, targets,
                                                                        dloss, V, total);
  ANVIL_CUDA_LAUNCH_CHECK();
}

}  // namespace anvil::kernels::cuda
