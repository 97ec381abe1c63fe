// testing::Ops: the fp32 ops of the families with raw pointers and sizes
// (the shapes the float64 reference uses), for the kernel tests and
// kernel_bench. Each call builds views and goes through the op family's
// dispatcher on a real Device, so callers exercise the registered
// implementation. Attention calls the packed-qkv fp32 kernel (cpu/ops.h)
// that keeps the (B,NH,T,T) probabilities: the flash-attention tests use it
// as their reference.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "kernels/cpu/ops.h"
#include "kernels/device.h"
#include "kernels/ops/activation.h"
#include "kernels/ops/convert.h"
#include "kernels/ops/elementwise.h"
#include "kernels/ops/embedding.h"
#include "kernels/ops/linear.h"
#include "kernels/ops/loss.h"
#include "kernels/ops/norm.h"
#include "kernels/ops/optim.h"
#include "kernels/tensor.h"

namespace anvil::kernels::testing {

class Ops {
 public:
  explicit Ops(Device& d) : d_(d) {}
  Device& device() { return d_; }
  void* Alloc(size_t bytes) { return d_.Alloc(bytes); }
  void Free(void* p) { d_.Free(p); }
  void Memset(void* p, int v, size_t bytes) { d_.Memset(p, v, bytes); }
  void CopyToHost(void* dst, const void* src, size_t bytes) { d_.CopyToHost(dst, src, bytes); }
  void CopyFromHost(void* dst, const void* src, size_t bytes) { d_.CopyFromHost(dst, src, bytes); }
  void Synchronize() { d_.Synchronize(); }
  void EncoderForward(float* out, const int32_t* tokens, const float* wte, const float* wpe, int B,
                      int T, int C, int V = 1 << 20) {
    EmbeddingForward(d_, View(out, {B, T, C}), View(tokens, {B, T}), View(wte, {V, C}),
                     View(wpe, {T, C}));
  }
  void EncoderBackward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int B,
                       int T, int C, int V = 1 << 20) {
    EmbeddingBackward(d_, View(dwte, {V, C}), View(dwpe, {T, C}), View(dout, {B, T, C}),
                      View(tokens, {B, T}));
  }
  void LayerNormForward(float* out, float* mean, float* rstd, const float* inp, const float* w,
                        const float* b, int N, int C) {
    kernels::LayerNormForward(d_, View(out, {N, C}), View(mean, {N}), View(rstd, {N}),
                              View(inp, {N, C}), View(w, {C}), View(b, {C}));
  }
  void LayerNormBackward(float* dinp, float* dw, float* db, const float* dout, const float* inp,
                         const float* w, const float* mean, const float* rstd, int N, int C) {
    kernels::LayerNormBackward(d_, View(dinp, {N, C}), View(dw, {C}), View(db, {C}),
                               View(dout, {N, C}), View(inp, {N, C}), View(w, {C}),
                               View(mean, {N}), View(rstd, {N}));
  }
  void MatmulForward(float* out, const float* inp, const float* w, const float* b, int N, int C,
                     int OC) {
    LinearForward(d_, View(out, {N, OC}), View(inp, {N, C}), View(w, {OC, C}),
                  b != nullptr ? View(b, {OC}) : TensorView{});
  }
  void MatmulBackward(float* dinp, float* dw, float* db, const float* dout, const float* inp,
                      const float* w, int N, int C, int OC) {
    auto opt = [](float* p, std::initializer_list<int64_t> shape) {
      return p != nullptr ? View(p, shape) : TensorView{};
    };
    LinearBackward(d_, opt(dinp, {N, C}), opt(dw, {OC, C}), opt(db, {OC}), View(dout, {N, OC}),
                   View(inp, {N, C}), View(w, {OC, C}));
  }
  void AttentionForward(float* out, float* att, const float* qkv, int B, int T, int C, int NH) {
    cpu::AttentionForward(d_.threads(), out, att, qkv, B, T, C, NH);
  }
  void AttentionBackward(float* dqkv, float* datt, const float* dout, const float* qkv,
                         const float* att, int B, int T, int C, int NH) {
    cpu::AttentionBackward(d_.threads(), dqkv, datt, dout, qkv, att, B, T, C, NH);
  }
  void GeluForward(float* out, const float* inp, size_t n) {
    kernels::GeluForward(d_, Flat(out, n), Flat(inp, n));
  }
  void GeluBackward(float* dinp, const float* inp, const float* dout, size_t n) {
    kernels::GeluBackward(d_, Flat(dinp, n), Flat(inp, n), Flat(dout, n));
  }
  void ResidualForward(float* out, const float* a, const float* b, size_t n) {
    Add(d_, Flat(out, n), Flat(a, n), Flat(b, n));
  }
  void Accumulate(float* dst, const float* src, size_t n) {
    kernels::Accumulate(d_, Flat(dst, n), Flat(src, n));
  }
  void Scale(float* x, float alpha, size_t n) { kernels::Scale(d_, Flat(x, n), alpha); }
  void SoftmaxCrossEntropyForward(float* losses, float* probs, const float* logits,
                                  const int32_t* targets, int N, int V) {
    kernels::SoftmaxCrossEntropyForward(d_, View(losses, {N}), View(probs, {N, V}),
                                        View(logits, {N, V}), View(targets, {N}));
  }
  void SoftmaxCrossEntropyBackward(float* dlogits, const float* probs, const int32_t* targets,
                                   float dloss, int N, int V) {
    kernels::SoftmaxCrossEntropyBackward(d_, View(dlogits, {N, V}), View(probs, {N, V}),
                                         View(targets, {N}), dloss);
  }
  void AdamW(float* param, const float* grad, float* m, float* v, size_t n, const AdamWParams& p) {
    kernels::AdamW(d_, Flat(param, n), Flat(grad, n), Flat(m, n), Flat(v, n), p);
  }
  double SquaredNorm(const float* x, size_t n) { return kernels::SquaredNorm(d_, Flat(x, n)); }
  bool HasNonFinite(const float* x, size_t n) { return kernels::HasNonFinite(d_, Flat(x, n)); }
  void Convert(void* dst, DType dt, const void* src, DType st, size_t n) {
    kernels::Convert(d_, Flat(dst, dt, n), Flat(src, st, n));
  }

 private:
  Device& d_;
};

}  // namespace anvil::kernels::testing
