// The CUDA ops: launchers, one .cu per op holding its forward/backward pair,
// behind the CUDA op families (register_ops.cu). Semantics are those of
// kernels/ops/README.md, fp32; all pointers are device pointers; everything is
// enqueued on ctx.stream and nothing allocates.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "common/dtype.h"
#include "kernels/ops/optim.h"

namespace anvil::kernels::cuda {

struct Ctx {
  cudaStream_t stream;
  cublasHandle_t blas;  // bound to `stream`
  double* scratch_d;    // device scratch for reductions, kReduceBlocks doubles
  int* flag_d;          // device scratch int
};

// Fixed grid for the two-stage reductions (deterministic combine order).
inline constexpr int kReduceBlocks = 512;

// Grid size for grid-stride loops over n elements (capped: the loops cover
// the rest).
inline unsigned Blocks(size_t n, int threads) {
  const size_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 65535u * 32u ? b : 65535u * 32u);
}

// Exact grid size for kernels that map one block-slice to each item.
inline unsigned CeilDiv(size_t n, int per_block) {
  return static_cast<unsigned>((n + per_block - 1) / per_block);
}

// encoder.cu
void EncoderForward(const Ctx& ctx, float* out, const int32_t* tokens, const float* wte,
                    const float* wpe, int B, int T, int C);
void EncoderBackward(const Ctx& ctx, float* dwte, float* dwpe, const float* dout,
                     const int32_t* tokens, int B, int T, int C);
// layernorm.cu
void LayerNormForward(const Ctx& ctx, float* out, float* mean, float* rstd, const float* inp,
                      const float* weight, const float* bias, int N, int C, float eps = 1e-5f);
void LayerNormBackward(const Ctx& ctx, float* dinp, float* dweight, float* dbias, const float* dout,
                       const float* inp, const float* weight, const float* mean, const float* rstd,
                       int N, int C);
// matmul.cu
void MatmulForward(const Ctx& ctx, float* out, const float* inp, const float* weight,
                   const float* bias, int N, int C, int OC);
void MatmulBackward(const Ctx& ctx, float* dinp, float* dweight, float* dbias, const float* dout,
                    const float* inp, const float* weight, int N, int C, int OC);
// gelu.cu
void GeluForward(const Ctx& ctx, float* out, const float* inp, size_t n);
void GeluBackward(const Ctx& ctx, float* dinp, const float* inp, const float* dout, size_t n);
// residual.cu
void ResidualForward(const Ctx& ctx, float* out, const float* a, const float* b, size_t n);
void Accumulate(const Ctx& ctx, float* dst, const float* src, size_t n);
void Scale(const Ctx& ctx, float* x, float alpha, size_t n);
// softmax_xent.cu
void SoftmaxCrossEntropyForward(const Ctx& ctx, float* losses, float* probs, const float* logits,
                                const int32_t* targets, int N, int V);
void SoftmaxCrossEntropyBackward(const Ctx& ctx, float* dlogits, const float* probs,
                                 const int32_t* targets, float dloss, int N, int V);
// adamw.cu
void AdamW(const Ctx& ctx, float* param, const float* grad, float* m, float* v, size_t n,
           const AdamWParams& p);
// reduce.cu (these two wait for the stream: the result goes to the host)
double SquaredNorm(const Ctx& ctx, const float* x, size_t n);
bool HasNonFinite(const Ctx& ctx, const float* x, size_t n);
// convert.cu: F32/BF16/F16 pairs (via fp32) and same-type copies.
void Convert(const Ctx& ctx, void* dst, DType dst_type, const void* src, DType src_type, size_t n);

}  // namespace anvil::kernels::cuda
