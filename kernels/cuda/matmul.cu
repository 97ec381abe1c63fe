// Linear layer on CUDA via cuBLAS FP32 sgemm.
//
// cuBLAS is column-major, and a row-major (r,c) buffer read column-major is
// its (c,r) transpose. In those terms (every operand is the buffer as it
// lies; op_T marks a transposed operand):
//   forward:  out^T (OC,N)  = op_T(W^T (C,OC)) * inp^T (C,N)
//   dinp:     dinp^T (C,N) += W^T (C,OC) * dout^T (OC,N)
//   dweight:  dW^T (C,OC)  += inp^T (C,N) * op_T(dout^T (OC,N))
// The bias is written first and sgemm runs with beta = 1; dbias uses
// column_sums.cuh.
#include "kernels/cuda/column_sums.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ops.cuh"

namespace anvil::kernels::cuda {
namespace {

__global__ void FillBiasKernel(float* out, const float* bias, int OC, size_t total) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    out[i] = bias[i % OC];
  }
}

}  // namespace

void MatmulForward(const Ctx& ctx, float* out, const float* inp, const float* weight,
                   const float* bias, int N, int C, int OC) {
  float beta = 0.0f;
  const float one = 1.0f;
  if (bias != nullptr) {
    const size_t total = static_cast<size_t>(N) * OC;
    FillBiasKernel<<<Blocks(total, 256), 256, 0, ctx.stream>>>(out, bias, OC, total);
    ANVIL_CUDA_LAUNCH_CHECK();
    beta = 1.0f;
  }
  ANVIL_CUBLAS_CHECK(cublasSgemm(ctx.blas, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, &one, weight, C, inp,
                                 C, &beta, out, OC));
}

void MatmulBackward(const Ctx& ctx, float* dinp, float* dweight, float* dbias, const float* dout,
                    const float* inp, const float* weight, int N, int C, int OC) {
  const float one = 1.0f;
  if (dinp != nullptr) {
    ANVIL_CUBLAS_CHECK(cublasSgemm(ctx.blas, CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, &one, weight, C,
                                   dout, OC, &one, dinp, C));
  }
  if (dweight != nullptr) {
    ANVIL_CUBLAS_CHECK(cublasSgemm(ctx.blas, CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, &one, inp, C, dout,
                                   OC, &one, dweight, C));
  }
  if (dbias != nullptr) {
    LaunchColumnSums(ctx.stream, nullptr, dbias, dout, nullptr, nullptr, nullptr, N, OC);
    ANVIL_CUDA_LAUNCH_CHECK();
  }
}

}  // namespace anvil::kernels::cuda
