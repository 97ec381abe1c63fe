// The fp32 CPU kernels: free functions, one .cc per op holding its
// forward/backward pair, raw pointers and sizes.
//
// These are the fp32 kernels behind the CPU op families (family_*.cc);
// semantics are those of kernels/ops/README.md (forward ops
// overwrite, backward ops accumulate, linear weights are (OC,C), ...). Every
// function takes `nt`, the number of OpenMP threads to use (>= 1), and
// allocates nothing. All compute is fp32.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/ops/optim.h"

namespace anvil::kernels::cpu {

// encoder.cc
void EncoderForward(int nt, float* out, const int32_t* tokens, const float* wte, const float* wpe,
                    int B, int T, int C);
void EncoderBackward(int nt, float* dwte, float* dwpe, const float* dout, const int32_t* tokens,
                     int B, int T, int C);

// layernorm.cc
void LayerNormForward(int nt, float* out, float* mean, float* rstd, const float* inp,
                      const float* weight, const float* bias, int N, int C,
                      float eps = 1e-5f);
void LayerNormBackward(int nt, float* dinp, float* dweight, float* dbias, const float* dout,
                       const float* inp, const float* weight, const float* mean, const float* rstd,
                       int N, int C);

// matmul.cc (OpenBLAS sgemm). dinp or dweight may also be null to skip them.
void MatmulForward(int nt, float* out, const float* inp, const float* weight, const float* bias,
                   int N, int C, int OC);
void MatmulBackward(int nt, float* dinp, float* dweight, float* dbias, const float* dout,
                    const float* inp, const float* weight, int N, int C, int OC);
// dbias (OC) += column sums of dout (N,OC): fp32, or bf16 bit patterns.
void BiasGrad(int nt, float* dbias, const float* dout, int N, int OC);
void BiasGradBf16(int nt, float* dbias, const uint16_t* dout, int N, int OC);

// attention.cc
void AttentionForward(int nt, float* out, float* att, const float* qkv, int B, int T, int C,
                      int NH);
void AttentionBackward(int nt, float* dqkv, float* datt, const float* dout, const float* qkv,
                       const float* att, int B, int T, int C, int NH);

// gelu.cc
void GeluForward(int nt, float* out, const float* inp, size_t n);
void GeluBackward(int nt, float* dinp, const float* inp, const float* dout, size_t n);
// The same on bf16 storage (bit patterns), fp32 math, one rounding per store.
void GeluForwardBf16(int nt, uint16_t* out, const uint16_t* inp, size_t n);
void GeluBackwardBf16(int nt, uint16_t* dinp, const uint16_t* inp, const uint16_t* dout, size_t n);

// residual.cc
void ResidualForward(int nt, float* out, const float* a, const float* b, size_t n);
void Accumulate(int nt, float* dst, const float* src, size_t n);
void Scale(int nt, float* x, float alpha, size_t n);

// softmax_xent.cc
void SoftmaxCrossEntropyForward(int nt, float* losses, float* probs, const float* logits,
                                const int32_t* targets, int N, int V);
void SoftmaxCrossEntropyBackward(int nt, float* dlogits, const float* probs, const int32_t* targets,
                                 float dloss, int N, int V);

// adamw.cc
void AdamW(int nt, float* param, const float* grad, float* m, float* v, size_t n,
           const AdamWParams& p);

// reduce.cc
double SquaredNorm(int nt, const float* x, size_t n);
bool HasNonFinite(int nt, const float* x, size_t n);

// convert.cc: any pair among F32/BF16/F16 (via fp32), or a same-type copy.
void Convert(int nt, void* dst, DType dst_type, const void* src, DType src_type, size_t n);

// memory.cc: multithreaded memset/memcpy for large buffers.
void ParallelMemset(int nt, void* dst, int value, size_t bytes);
void ParallelMemcpy(int nt, void* dst, const void* src, size_t bytes);

}  // namespace anvil::kernels::cpu
