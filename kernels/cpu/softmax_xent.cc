// Fused softmax + cross-entropy over V classes, forward and backward.
//
// probs (N,V) = softmax(logits); losses (N) = log(sum exp(l - max)) -
// (l[target] - max), computed from the logits rather than log(probs) so a
// tiny probability does not lose precision. Rows with target < 0 get loss 0
// and no gradient (probs are still written). Backward accumulates
// dlogits += (probs - onehot(target)) * dloss.
#include <algorithm>
#include <cmath>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vec_math.h"

namespace anvil::kernels::cpu {

void SoftmaxCrossEntropyForward(int nt, float* losses, float* probs, const float* logits,
                                const int32_t* targets, int N, int V) {
  const bool par = static_cast<int64_t>(N) * V >= int64_t{kMinParallelElems};
#pragma omp parallel for num_threads(nt) schedule(static) if (par)
  for (int i = 0; i < N; ++i) {
    const float* l = logits + static_cast<int64_t>(i) * V;
    float* p = probs + static_cast<int64_t>(i) * V;
    float mx = l[0];
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < V; ++j) mx = std::max(mx, l[j]);
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < V; ++j) {
      const float e = FastExp(l[j] - mx);
      p[j] = e;
      sum += e;
    }
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j < V; ++j) p[j] *= inv;
    const int32_t t = targets[i];
    losses[i] = t >= 0 ? std::log(sum) - (l[t] - mx) : 0.0f;
  }
}

void SoftmaxCrossEntropyBackward(int nt, float* dlogits, const float* probs, const int32_t* targets,
                                 float dloss, int N, int V) {
  const bool par = static_cast<int64_t>(N) * V >= int64_t{kMinParallelElems};
#pragma omp parallel for num_threads(nt) schedule(static) if (par)
  for (int i = 0; i < N; ++i) {
    const int32_t t = targets[i];
    if (t < 0) continue;
    const float* p = probs + static_cast<int64_t>(i) * V;
    float* d = dlogits + static_cast<int64_t>(i) * V;
#pragma omp simd
    for (int j = 0; j < V; ++j) d[j] += p[j] * dloss;
    d[t] -= dloss;
  }
}

}  // namespace anvil::kernels::cpu
