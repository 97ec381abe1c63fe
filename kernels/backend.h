// Backend: the kernel interface the models are written against.
//
// A backend owns memory (host for CPU, device for CUDA) and runs ops on its
// current stream. Models hold a Backend& and raw pointers it allocated; they
// never touch threads, streams, BLAS handles or devices themselves, so a CUDA
// backend implements this same interface without model changes.
//
// Conventions (the same for every backend):
//  - Shapes are given in comments as (B,T,C) etc; all tensors are row-major,
//    contiguous fp32 unless stated. N = B*T rows where an op is row-wise.
//  - Forward ops overwrite their outputs.
//  - Backward ops ACCUMULATE (+=) into every gradient they produce: input
//    gradients and parameter gradients alike. Callers zero gradients once per
//    step (Memset), which makes residual branches and tied weights free.
//  - A linear layer's weight is (OC, C) (PyTorch nn.Linear layout):
//    out = inp @ weight^T + bias.
//  - Ops may run asynchronously on the backend's stream; Synchronize() waits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "kernels/dtype.h"

namespace anvil::kernels {

struct AdamWParams {
  float lr = 3e-4f;
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;  // decoupled: param -= lr * wd * param
  int64_t step = 1;           // 1-based, for bias correction
  float grad_scale = 1.0f;    // gradients are multiplied by this before use
                              // (clipping and loss-scale unscaling fold in here)
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* Name() const = 0;

  // ---- memory ------------------------------------------------------------
  virtual void* Alloc(size_t bytes) = 0;  // 64-byte aligned; aborts on OOM
  virtual void Free(void* ptr) = 0;
  virtual void Memset(void* ptr, int value, size_t bytes) = 0;
  virtual void CopyToHost(void* host_dst, const void* src, size_t bytes) = 0;
  virtual void CopyFromHost(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void Synchronize() = 0;

  // ---- dtype conversion (round-to-nearest-even when narrowing) -----------
  virtual void Convert(void* dst, DType dst_type, const void* src, DType src_type, size_t n) = 0;

  // ---- encoder: token + position embedding ------------------------------
  // out (B,T,C) = wte[tokens[b,t]] + wpe[t]; tokens (B,T) int32; wte (V,C); wpe (maxT,C)
  virtual void EncoderForward(float* out, const int32_t* tokens, const float* wte, const float* wpe,
                              int B, int T, int C) = 0;
  virtual void EncoderBackward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens,
                               int B, int T, int C) = 0;

  // ---- LayerNorm over the last dim (eps 1e-5) ----------------------------
  // out (N,C), mean (N), rstd (N) saved for backward.
  virtual void LayerNormForward(float* out, float* mean, float* rstd, const float* inp,
                                const float* weight, const float* bias, int N, int C) = 0;
  virtual void LayerNormBackward(float* dinp, float* dweight, float* dbias, const float* dout,
                                 const float* inp, const float* weight, const float* mean,
                                 const float* rstd, int N, int C) = 0;

  // ---- linear: out (N,OC) = inp (N,C) @ weight(OC,C)^T + bias(OC) ---------
  // bias may be null (then dbias must be null too).
  virtual void MatmulForward(float* out, const float* inp, const float* weight, const float* bias,
                             int N, int C, int OC) = 0;
  virtual void MatmulBackward(float* dinp, float* dweight, float* dbias, const float* dout,
                              const float* inp, const float* weight, int N, int C, int OC) = 0;

  // ---- causal multi-head self-attention ----------------------------------
  // qkv (B,T,3C) packed [q | k | v], head h uses columns h*hs..(h+1)*hs of each.
  // out (B,T,C); att (B,NH,T,T) softmax probabilities saved for backward
  // (entries above the diagonal are 0). Scale 1/sqrt(C/NH).
  virtual void AttentionForward(float* out, float* att, const float* qkv, int B, int T, int C,
                                int NH) = 0;
  // dqkv (B,T,3C) accumulated; datt (B,NH,T,T) is scratch the caller provides.
  virtual void AttentionBackward(float* dqkv, float* datt, const float* dout, const float* qkv,
                                 const float* att, int B, int T, int C, int NH) = 0;

  // ---- GELU, tanh approximation ------------------------------------------
  virtual void GeluForward(float* out, const float* inp, size_t n) = 0;
  virtual void GeluBackward(float* dinp, const float* inp, const float* dout, size_t n) = 0;

  // ---- residual: out = a + b; backward is Accumulate into both inputs -----
  virtual void ResidualForward(float* out, const float* a, const float* b, size_t n) = 0;
  virtual void Accumulate(float* dst, const float* src, size_t n) = 0;  // dst += src
  virtual void Scale(float* x, float alpha, size_t n) = 0;              // x *= alpha

  // ---- fused softmax + cross-entropy over V classes ----------------------
  // logits (N,V) -> probs (N,V) and losses (N) = -log probs[target].
  // Targets < 0 are ignored (loss 0, no gradient).
  virtual void SoftmaxCrossEntropyForward(float* losses, float* probs, const float* logits,
                                          const int32_t* targets, int N, int V) = 0;
  // dlogits (N,V) += (probs - onehot(target)) * dloss (dloss is one scalar for
  // every row, typically 1/num_targets).
  virtual void SoftmaxCrossEntropyBackward(float* dlogits, const float* probs,
                                           const int32_t* targets, float dloss, int N, int V) = 0;

  // ---- optimizer ---------------------------------------------------------
  // In-place AdamW on n elements; m, v fp32 state.
  virtual void AdamW(float* param, const float* grad, float* m, float* v, size_t n,
                     const AdamWParams& p) = 0;
  // Sum of squares of x (n elements), accumulated in double, returned on host.
  virtual double SquaredNorm(const float* x, size_t n) = 0;
  // True when any element is inf or NaN.
  virtual bool HasNonFinite(const float* x, size_t n) = 0;
};

// The CPU backend (OpenBLAS + OpenMP). `num_threads` <= 0 means all cores.
std::unique_ptr<Backend> MakeCpuBackend(int num_threads = 0);

}  // namespace anvil::kernels
