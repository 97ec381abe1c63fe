// SwiGLU, forward and backward, over row-strided (N,F) views, so gate and
// up may be the two halves of one (N,2F) GEMM output.
//
// out = silu(g) * u, silu(g) = g s, s = 1/(1 + exp(-g));
// dg += dout * u * s (1 + g (1 - s)),  du += dout * silu(g).
// exp(-g) is capped at exp(80) so s stays a normal float (as in gelu.cc).
// Row-parallel; rows widened to fp32 (rows.h).
#include <omp.h>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/rows.h"
#include "kernels/cpu/typed.h"
#include "kernels/cpu/typed_ops.h"
#include "kernels/cpu/vec_math.h"

namespace anvil::kernels::cpu {
namespace {

constexpr float kMaxArg = 80.0f;

inline float Sigmoid(float g) {
  const float a = -g;
  return 1.0f / (1.0f + FastExp(a > kMaxArg ? kMaxArg : a));
}

inline int64_t RowStride(const TensorView& v) { return v.ndim >= 2 ? v.stride[v.ndim - 2] : 0; }

}  // namespace

void SwiGluForwardCpu(Device& d, const TensorView& out, const TensorView& gate,
                      const TensorView& up) {
  const int64_t N = gate.rows(), F = gate.cols();
  const int nt = Threads(d);
  Scratch buf(d, sizeof(float) * 2 * F * nt);
  const int64_t gs = RowStride(gate), us = RowStride(up), os = RowStride(out);
  const bool par = N * F >= int64_t{kMinParallelElems};
#pragma omp parallel num_threads(nt) if (par)
  {
    float* gr = buf.f32() + 2 * F * omp_get_thread_num();
    float* ur = gr + F;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < N; ++i) {
      LoadRow(gr, ElemPtr(gate, i * gs), gate.dtype, F);
      LoadRow(ur, ElemPtr(up, i * us), up.dtype, F);
#pragma omp simd
      for (int64_t c = 0; c < F; ++c) gr[c] = gr[c] * Sigmoid(gr[c]) * ur[c];
      StoreRow(ElemPtr(out, i * os), out.dtype, gr, F);
    }
  }
}

void SwiGluBackwardCpu(Device& d, const TensorView& dgate, const TensorView& dup,
                       const TensorView& gate, const TensorView& up, const TensorView& dout) {
  const int64_t N = gate.rows(), F = gate.cols();
  const int nt = Threads(d);
  Scratch buf(d, sizeof(float) * 3 * F * nt);
  const int64_t gs = RowStride(gate), us = RowStride(up), ds = RowStride(dout);
  const int64_t dgs = RowStride(dgate), dus = RowStride(dup);
  const bool par = N * F >= int64_t{kMinParallelElems};
#pragma omp parallel num_threads(nt) if (par)
  {
    float* gr = buf.f32() + 3 * F * omp_get_thread_num();
    float* ur = gr + F;
    float* dr = ur + F;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < N; ++i) {
      LoadRow(gr, ElemPtr(gate, i * gs), gate.dtype, F);
      LoadRow(ur, ElemPtr(up, i * us), up.dtype, F);
      LoadRow(dr, ElemPtr(dout, i * ds), dout.dtype, F);
#pragma omp simd
      for (int64_t c = 0; c < F; ++c) {
        const float g = gr[c], s = Sigmoid(g), dy = dr[c];
        gr[c] = dy * ur[c] * s * (1.0f + g * (1.0f - s));  // d gate
        ur[c] = dy * g * s;                                // d up
      }
      AccumulateRow(ElemPtr(dgate, i * dgs), dgate.dtype, gr, F);
      AccumulateRow(ElemPtr(dup, i * dus), dup.dtype, ur, F);
    }
  }
}

}  // namespace anvil::kernels::cpu
