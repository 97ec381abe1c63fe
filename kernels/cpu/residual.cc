// Residual add and the elementwise helpers backward passes use.
//
// out = a + b; dst += src; x *= alpha. Out may alias a or b, dst may not
// partially overlap src.
#include "kernels/cpu/ops.h"
#include "kernels/cpu/parallel.h"

namespace anvil::kernels::cpu {

void ResidualForward(int nt, float* out, const float* a, const float* b, size_t n) {
  const int64_t len = static_cast<int64_t>(n);
#pragma omp parallel for simd num_threads(nt) schedule(static) if (n >= kMinParallelElems)
  for (int64_t i = 0; i < len; ++i) out[i] = a[i] + b[i];
}

void Accumulate(int nt, float* dst, const float* src, size_t n) {
  const int64_t len = static_cast<int64_t>(n);
#pragma omp parallel for simd num_threads(nt) schedule(static) if (n >= kMinParallelElems)
  for (int64_t i = 0; i < len; ++i) dst[i] += src[i];
}

void Scale(int nt, float* x, float alpha, size_t n) {
  const int64_t len = static_cast<int64_t>(n);
#pragma omp parallel for simd num_threads(nt) schedule(static) if (n >= kMinParallelElems)
  for (int64_t i = 0; i < len; ++i) x[i] *= alpha;
}

}  // namespace anvil::kernels::cpu
