// AdamW with decoupled weight decay and bias correction (1-based step).
//
//   g = grad * grad_scale
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   param -= lr * (m / (1 - beta1^step) / (sqrt(v / (1 - beta2^step)) + eps)
//                  + weight_decay * param)
// (the same update as torch.optim.AdamW and llm.c). Bias corrections are
// computed once in double.
#include <cmath>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/parallel.h"

namespace anvil::kernels::cpu {

void AdamW(int nt, float* param, const float* grad, float* m, float* v, size_t n,
           const AdamWParams& p) {
  const double step = static_cast<double>(p.step);
  const float c1 = static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(p.beta1), step)));
  const float c2 = static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(p.beta2), step)));
  const float b1 = p.beta1, b2 = p.beta2, lr = p.lr, eps = p.eps, wd = p.weight_decay;
  const float gs = p.grad_scale;
  const int64_t len = static_cast<int64_t>(n);
#pragma omp parallel for simd num_threads(nt) schedule(static) if (n >= kMinParallelElems)
  for (int64_t i = 0; i < len; ++i) {
    const float g = grad[i] * gs;
    const float mi = b1 * m[i] + (1.0f - b1) * g;
    const float vi = b2 * v[i] + (1.0f - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] -= lr * (mi * c1 / (std::sqrt(vi * c2) + eps) + wd * param[i]);
  }
}

}  // namespace anvil::kernels::cpu
