// AdamW on CUDA (elementwise); the same update as kernels/cpu/adamw.cc, with
// bias corrections computed once on the host in double.
#include <cmath>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.cuh"

namespace anvil::kernels::cuda {
namespace {

__global__ void AdamWKernel(float* param, const float* grad, float* m, float* v, size_t n, float lr,
                            float b1, float b2, float eps, float wd, float gs, float c1, float c2) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float g = grad[i] * gs;
    const float mi = b1 * m[i] + (1.0f - b1) * g;
    const float vi = b2 * v[i] + (1.0f - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] -= lr * (mi * c1 / (sqrtf(vi * c2) + eps) + wd * param[i]);
  }
}

}  // namespace

void AdamW(const Ctx& ctx, float* param, const float* grad, float* m, float* v, size_t n,
           const AdamWParams& p) {
  if (n == 0) return;
  const double step = static_cast<double>(p.step);
  const float c1 = static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(p.beta1), step)));
  const float c2 = static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(p.beta2), step)));
  AdamWKernel<<<Blocks(n, 256), 256, 0, ctx.stream>>>(param, grad, m, v, n, p.lr, p.beta1, p.beta2,
                                                      p.eps, p.weight_decay, p.grad_scale, c1, c2);
  ANVIL_CUDA_LAUNCH_CHECK();
}

}  // namespace anvil::kernels::cuda
