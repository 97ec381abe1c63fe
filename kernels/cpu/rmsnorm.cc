// RMSNorm over the last dim (Llama), forward and backward, over typed views.
//
// Forward: out (N,C) = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps) (N,
// saved). Backward, with g = w * dout and xhat = x * rstd:
//   dx += rstd * (g - xhat * mean(g * xhat)),   dw += colsum(dout * xhat).
// Rows are widened to fp32 (rows.h) into per-thread buffers; the row part
// is row-parallel and dw is channel-parallel in the same region (each
// element of dw has one writer, summing rows in order), so results are
// bitwise independent of the thread count.
#include <omp.h>

#include <cmath>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/rows.h"
#include "kernels/cpu/typed.h"
#include "kernels/cpu/typed_ops.h"

namespace anvil::kernels::cpu {

void RmsNormForwardCpu(Device& d, const TensorView& out, const TensorView& rstd,
                       const TensorView& x, const TensorView& weight, const RmsNormParams& p) {
  const int64_t N = x.rows(), C = x.cols();
  const int nt = Threads(d);
  Scratch buf(d, sizeof(float) * (C + 2 * C * nt));
  float* w = buf.f32();
  LoadRow(w, weight.data, weight.dtype, C);
  float* rs = rstd.as<float>();
  const bool par = N * C >= int64_t{kMinParallelElems};
#pragma omp parallel num_threads(nt) if (par)
  {
    float* xr = buf.f32() + C + 2 * C * omp_get_thread_num();
    float* yr = xr + C;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < N; ++i) {
      LoadRow(xr, ElemPtr(x, i * C), x.dtype, C);
      float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
      for (int64_t c = 0; c < C; ++c) ss += xr[c] * xr[c];
      const float s = 1.0f / std::sqrt(ss / static_cast<float>(C) + p.eps);
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] * s * w[c];
      StoreRow(ElemPtr(out, i * C), out.dtype, yr, C);
      rs[i] = s;
    }
  }
}

void RmsNormBackwardCpu(Device& d, const TensorView& dx, const TensorView& dweight,
                        const TensorView& dout, const TensorView& x, const TensorView& weight,
                        const TensorView& rstd) {
  const int64_t N = x.rows(), C = x.cols();
  const int nt = Threads(d);
  Scratch buf(d, sizeof(float) * (C + 3 * C * nt));
  float* w = buf.f32();
  LoadRow(w, weight.data, weight.dtype, C);
  const float* rs = rstd.as<float>();
  float* dw = dweight.as<float>();
  const bool par = N * C >= int64_t{kMinParallelElems};
#pragma omp parallel num_threads(nt) if (par)
  {
    float* xr = buf.f32() + C + 3 * C * omp_get_thread_num();
    float* dr = xr + C;
    float* gr = dr + C;
#pragma omp for schedule(static) nowait
    for (int64_t i = 0; i < N; ++i) {
      LoadRow(xr, ElemPtr(x, i * C), x.dtype, C);
      LoadRow(dr, ElemPtr(dout, i * C), dout.dtype, C);
      const float s = rs[i];
      float dot = 0.0f;  // sum(g * xhat)
#pragma omp simd reduction(+ : dot)
      for (int64_t c = 0; c < C; ++c) dot += w[c] * dr[c] * xr[c] * s;
      const float m = dot / static_cast<float>(C);
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) gr[c] = (w[c] * dr[c] - xr[c] * s * m) * s;
      AccumulateRow(ElemPtr(dx, i * C), dx.dtype, gr, C);
    }
    // dw: each thread owns a channel slice and sums every row into it. No
    // barrier before this: it reads only inputs, never dx.
    const Slice sl = ThreadSlice(C, 16, omp_get_thread_num(), omp_get_num_threads());
    const int64_t c0 = sl.begin, len = sl.end - sl.begin;
    float* xs = xr;  // this thread's row buffers, free again after its rows
    float* ds = dr;
    for (int64_t i = 0; len > 0 && i < N; ++i) {
      LoadRow(xs, ElemPtr(x, i * C + c0), x.dtype, len);
      LoadRow(ds, ElemPtr(dout, i * C + c0), dout.dtype, len);
      const float s = rs[i];
#pragma omp simd
      for (int64_t c = 0; c < len; ++c) dw[c0 + c] += ds[c] * xs[c] * s;
    }
  }
}

}  // namespace anvil::kernels::cpu
