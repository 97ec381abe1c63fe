// Causal multi-head attention on CUDA: cuBLAS strided-batched sgemm over the
// heads of one batch row (the head stride inside qkv is hs, the batch stride
// T*3C, so one batch row at a time keeps a single stride), plus warp-per-row
// softmax kernels. Full T x T products are computed and the upper triangle
// is masked (simple and correct; a flash-style kernel is the fast path).
//
// Column-major view (see matmul.cu): for head h, Q^T/K^T/V^T are (hs,T)
// buffers with leading dimension 3C; att[b,h] row-major (T,T) is, read
// column-major, att^T with element (key, query).
//   S^T  = op_T(K^T) * Q^T * scale       -> att (then softmax rows in place)
//   out^T = V^T * att^T                  -> out (hs,T), ld C
// Backward:
//   dP^T  = op_T(V^T) * dout^T           -> datt
//   dV^T += dout^T * op_T(att^T)
//   dS    = P * (dP - rowsum(P * dP)) * scale, in place in datt
//   dQ^T += K^T * dS^T;   dK^T += Q^T * op_T(dS^T)
#include <cmath>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.cuh"
#include "kernels/cuda/reduce.cuh"

namespace anvil::kernels::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kRowsPerBlock = kThreads / 32;

// rows = B*NH*T rows of length T; row r has query index t = r % T.
__global__ void CausalSoftmaxKernel(float* att, int T, size_t rows) {
  const size_t row = blockIdx.x * static_cast<size_t>(kRowsPerBlock) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  const int t = static_cast<int>(row % T);
  float* a = att + row * T;
  float mx = -INFINITY;
  for (int j = lane; j <= t; j += 32) mx = fmaxf(mx, a[j]);
  mx = WarpMax(mx);
  float sum = 0.0f;
  for (int j = lane; j <= t; j += 32) sum += expf(a[j] - mx);
  const float inv = 1.0f / WarpSum(sum);
  for (int j = lane; j < T; j += 32) a[j] = j <= t ? expf(a[j] - mx) * inv : 0.0f;
}

__global__ void SoftmaxBackwardKernel(float* datt, const float* att, int T, float scale,
                                      size_t rows) {
  const size_t row = blockIdx.x * static_cast<size_t>(kRowsPerBlock) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  const int t = static_cast<int>(row % T);
  const float* p = att + row * T;
  float* d = datt + row * T;
  float dot = 0.0f;
  for (int j = lane; j <= t; j += 32) dot += p[j] * d[j];
  dot = WarpSum(dot);
  for (int j = lane; j < T; j += 32) d[j] = j <= t ? p[j] * (d[j] - dot) * scale : 0.0f;
}

void Gemm(const Ctx& ctx, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
          float alpha, const float* a, int lda, long long sa, const float* b, int ldb, long long sb,
          float beta, float* c, int ldc, long long sc, int batch) {
  ANVIL_CUBLAS_CHECK(cublasSgemmStridedBatched(ctx.blas, ta, tb, m, n, k, &alpha, a, lda, sa, b,
                                               ldb, sb, &beta, c, ldc, sc, batch));
}

}  // namespace

void AttentionForward(const Ctx& ctx, float* out, float* att, const float* qkv, int B, int T, int C,
                      int NH) {
  const int hs = C / NH, C3 = 3 * C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  const long long TT = static_cast<long long>(T) * T;
  for (int b = 0; b < B; ++b) {
    const float* q = qkv + static_cast<size_t>(b) * T * C3;
    const float* k = q + C;
    float* a = att + static_cast<size_t>(b) * NH * TT;
    Gemm(ctx, CUBLAS_OP_T, CUBLAS_OP_N, T, T, hs, scale, k, C3, hs, q, C3, hs, 0.0f, a, T, TT, NH);
  }
  const size_t rows = static_cast<size_t>(B) * NH * T;
  CausalSoftmaxKernel<<<CeilDiv(rows, kRowsPerBlock), kThreads, 0, ctx.stream>>>(att, T, rows);
  ANVIL_CUDA_LAUNCH_CHECK();
  for (int b = 0; b < B; ++b) {
    const float* v = qkv + static_cast<size_t>(b) * T * C3 + 2 * C;
    const float* a = att + static_cast<size_t>(b) * NH * TT;
    float* o = out + static_cast<size_t>(b) * T * C;
    Gemm(ctx, CUBLAS_OP_N, CUBLAS_OP_N, hs, T, T, 1.0f, v, C3, hs, a, T, TT, 0.0f, o, C, hs, NH);
  }
}

void AttentionBackward(const Ctx& ctx, float* dqkv, float* datt, const float* dout,
                       const float* qkv, const float* att, int B, int T, int C, int NH) {
  const int hs = C / NH, C3 = 3 * C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  const long long TT = static_cast<long long>(T) * T;
  for (int b = 0; b < B; ++b) {
    const float* v = qkv + static_cast<size_t>(b) * T * C3 + 2 * C;
    float* dv = dqkv + static_cast<size_t>(b) * T * C3 + 2 * C;
    const float* g = dout + static_cast<size_t>(b) * T * C;
    const float* a = att + static_cast<size_t>(b) * NH * TT;
    float* da = datt + static_cast<size_t>(b) * NH * TT;
    Gemm(ctx, CUBLAS_OP_T, CUBLAS_OP_N, T, T, hs, 1.0f, v, C3, hs, g, C, hs, 0.0f, da, T, TT, NH);
    Gemm(ctx, CUBLAS_OP_N, CUBLAS_OP_T, hs, T, T, 1.0f, g, C, hs, a, T, TT, 1.0f, dv, C3, hs, NH);
  }
  const size_t rows = static_cast<size_t>(B) * NH * T;
  SoftmaxBackwardKernel<<<CeilDiv(rows, kRowsPerBlock), kThreads, 0, ctx.stream>>>(datt, att, T,
                                                                                   scale, rows);
  ANVIL_CUDA_LAUNCH_CHECK();
  for (int b = 0; b < B; ++b) {
    const float* q = qkv + static_cast<size_t>(b) * T * C3;
    const float* k = q + C;
    float* dq = dqkv + static_cast<size_t>(b) * T * C3;
    float* dk = dq + C;
    const float* da = datt + static_cast<size_t>(b) * NH * TT;
    Gemm(ctx, CUBLAS_OP_N, CUBLAS_OP_N, hs, T, T, 1.0f, k, C3, hs, da, T, TT, 1.0f, dq, C3, hs, NH);
    Gemm(ctx, CUBLAS_OP_N, CUBLAS_OP_T, hs, T, T, 1.0f, q, C3, hs, da, T, TT, 1.0f, dk, C3, hs, NH);
  }
}

}  // namespace anvil::kernels::cuda
