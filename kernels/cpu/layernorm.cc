// LayerNorm over the last dim, forward and backward (eps a parameter, 1e-5 by default).
//
// Forward: out (N,C) = (x - mean) * rstd * w + b with mean (N) and
// rstd = 1/sqrt(var + eps) (N) saved; variance is two-pass (centred) for
// accuracy. Backward accumulates into dinp, dweight, dbias:
//   dinp += rstd * (w*dout - mean(w*dout) - xhat * mean(w*dout*xhat)).
// The per-row part is row-parallel; the parameter gradients are column sums,
// computed channel-parallel in the same parallel region (parallel.h).
#include <omp.h>

#include <cmath>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/parallel.h"

namespace anvil::kernels::cpu {
void LayerNormForward(int nt, float* out, float* mean, float* rstd, const float* inp,
                      const float* weight, const float* bias, int N, int C, float eps) {
  const bool par = static_cast<int64_t>(N) * C >= int64_t{kMinParallelElems};
#pragma omp parallel for num_threads(nt) schedule(static) if (par)
  for (int i = 0; i < N; ++i) {
    const float* x = inp + static_cast<int64_t>(i) * C;
    float* o = out + static_cast<int64_t>(i) * C;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int c = 0; c < C; ++c) sum += x[c];
    const float m = sum / static_cast<float>(C);
    float var = 0.0f;
#pragma omp simd reduction(+ : var)
    for (int c = 0; c < C; ++c) var += (x[c] - m) * (x[c] - m);
    const float s = 1.0f / std::sqrt(var / static_cast<float>(C) + eps);
#pragma omp simd
    for (int c = 0; c < C; ++c) o[c] = (x[c] - m) * s * weight[c] + bias[c];
    mean[i] = m;
    rstd[i] = s;
  }
}

void LayerNormBackward(int nt, float* dinp, float* dweight, float* dbias, const float* dout,
                       const float* inp, const float* weight, const float* mean, const float* rstd,
                       int N, int C) {
  const bool par = static_cast<int64_t>(N) * C >= int64_t{kMinParallelElems};
#pragma omp parallel num_threads(nt) if (par)
  {
#pragma omp for schedule(static) nowait
    for (int i = 0; i < N; ++i) {
      const float* x = inp + static_cast<int64_t>(i) * C;
      const float* d = dout + static_cast<int64_t>(i) * C;
      float* dx = dinp + static_cast<int64_t>(i) * C;
      const float m = mean[i], s = rstd[i];
      float dsum = 0.0f, dnsum = 0.0f;
#pragma omp simd reduction(+ : dsum, dnsum)
      for (int c = 0; c < C; ++c) {
        const float wd = weight[c] * d[c];
        dsum += wd;
        dnsum += wd * (x[c] - m) * s;
      }
      const float dmean = dsum / static_cast<float>(C);
      const float dnmean = dnsum / static_cast<float>(C);
#pragma omp simd
      for (int c = 0; c < C; ++c) {
        const float xhat = (x[c] - m) * s;
        dx[c] += (weight[c] * d[c] - dmean - xhat * dnmean) * s;
      }
    }
    // Parameter gradients: each thread owns a channel slice. No barrier
    // before this (nowait above): it reads only inputs, never dinp.
    const Slice sl = ThreadSlice(C, 16, omp_get_thread_num(), omp_get_num_threads());
    const int64_t c0 = sl.begin, len = sl.end - sl.begin;
    float* dw = dweight + c0;
    float* db = dbias + c0;
    for (int i = 0; len > 0 && i < N; ++i) {
      const float* x = inp + static_cast<int64_t>(i) * C + c0;
      const float* d = dout + static_cast<int64_t>(i) * C + c0;
      const float m = mean[i], s = rstd[i];
#pragma omp simd
      for (int64_t c = 0; c < len; ++c) {
        dw[c] += (x[c] - m) * s * d[c];
        db[c] += d[c];
      }
    }
  }
}

}  // namespace anvil::kernels::cpu
