// Linear layer, forward and backward, on OpenBLAS sgemm.
//
// out (N,OC) = inp (N,C) @ weight (OC,C)^T + bias (OC). Forward writes the
// bias rows first and runs sgemm with beta = 1 (OpenBLAS would otherwise
// spend a pass zeroing out for beta = 0). Backward accumulates:
//   dinp (N,C) += dout (N,OC) @ weight;  dweight (OC,C) += dout^T @ inp
// (both sgemm with beta = 1), and dbias (OC) += column sums of dout, computed
// channel-parallel (parallel.h). Null dinp/dweight/dbias skip that gradient.
#include <omp.h>

#include "kernels/cpu/blas.h"
#include "kernels/cpu/convert.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/parallel.h"

namespace anvil::kernels::cpu {
namespace {

inline float Load(const float* p, int64_t i) { return p[i]; }
inline float Load(const uint16_t* p, int64_t i) { return BF16ToF32(p[i]); }

// dbias (OC) += column sums of dout (N,OC), channel-parallel (parallel.h):
// each output has one writer summing rows in order, for any thread count.
template <class T>
void ColumnSums(int nt, float* dbias, const T* dout, int N, int OC) {
  const bool par = static_cast<int64_t>(N) * OC >= int64_t{kMinParallelElems};
#pragma omp parallel num_threads(par ? ChannelThreads(OC, nt) : 1)
  {
    const Slice s = ThreadSlice(OC, 16, omp_get_thread_num(), omp_get_num_threads());
    const int64_t j0 = s.begin, len = s.end - s.begin;
    float* db = dbias + j0;
    for (int i = 0; len > 0 && i < N; ++i) {
      const T* d = dout + static_cast<int64_t>(i) * OC + j0;
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) db[j] += Load(d, j);
    }
  }
}

}  // namespace

void BiasGrad(int nt, float* dbias, const float* dout, int N, int OC) {
  ColumnSums(nt, dbias, dout, N, OC);
}
void BiasGradBf16(int nt, float* dbias, const uint16_t* dout, int N, int OC) {
  ColumnSums(nt, dbias, dout, N, OC);
}

void MatmulForward(int nt, float* out, const float* inp, const float* weight, const float* bias,
                   int N, int C, int OC) {
  float beta = 0.0f;
  if (bias != nullptr) {
    const bool par = static_cast<int64_t>(N) * OC >= int64_t{kMinParallelElems};
#pragma omp parallel for num_threads(nt) schedule(static) if (par)
    for (int i = 0; i < N; ++i) {
      float* o = out + static_cast<int64_t>(i) * OC;
#pragma omp simd
      for (int j = 0; j < OC; ++j) o[j] = bias[j];
    }
    beta = 1.0f;
  }
  SetBlasThreads(nt);
  Sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, weight, C, beta, out,
              OC);
}

void MatmulBackward(int nt, float* dinp, float* dweight, float* dbias, const float* dout,
                    const float* inp, const float* weight, int N, int C, int OC) {
  SetBlasThreads(nt);
  if (dinp != nullptr) {
    Sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, weight, C,
                1.0f, dinp, C);
  }
  if (dweight != nullptr) {
    Sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f,
                dweight, C);
  }
  if (dbias != nullptr) BiasGrad(nt, dbias, dout, N, OC);
}

}  // namespace anvil::kernels::cpu
