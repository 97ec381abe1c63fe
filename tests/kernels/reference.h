// Naive reference implementations of every kernel, for tests only.
//
// Plain loops in double precision, written to be obviously correct rather
// than fast; each mirrors one fp32 op of the families (kernels/ops/). Forward references
// return fresh outputs; backward references return the gradients themselves
// (not accumulated), so tests can check the ops' += semantics separately.
// All tensors are row-major, shapes as in kernels/ops/*.h.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/ops/optim.h"

namespace anvil::kernels::ref {

using Vec = std::vector<double>;

Vec EncoderForward(const std::vector<int32_t>& tokens, const Vec& wte, const Vec& wpe, int B, int T,
                   int C);
// dwte (V,C), dwpe (maxT,C).
void EncoderBackward(Vec& dwte, Vec& dwpe, const Vec& dout, const std::vector<int32_t>& tokens,
                     int B, int T, int C, int V, int maxT);

void LayerNormForward(Vec& out, Vec& mean, Vec& rstd, const Vec& inp, const Vec& weight,
                      const Vec& bias, int N, int C);
void LayerNormBackward(Vec& dinp, Vec& dweight, Vec& dbias, const Vec& dout, const Vec& inp,
                       const Vec& weight, int N, int C);

// bias may be empty (no bias).
Vec MatmulForward(const Vec& inp, const Vec& weight, const Vec& bias, int N, int C, int OC);
void MatmulBackward(Vec& dinp, Vec& dweight, Vec& dbias, const Vec& dout, const Vec& inp,
                    const Vec& weight, int N, int C, int OC);

void AttentionForward(Vec& out, Vec& att, const Vec& qkv, int B, int T, int C, int NH);
Vec AttentionBackward(const Vec& dout, const Vec& qkv, int B, int T, int C, int NH);

double Gelu(double x);
double GeluGrad(double x);

void SoftmaxCrossEntropyForward(Vec& losses, Vec& probs, const Vec& logits,
                                const std::vector<int32_t>& targets, int N, int V);
Vec SoftmaxCrossEntropyBackward(const Vec& logits, const std::vector<int32_t>& targets,
                                double dloss, int N, int V);

// RMSNorm (eps given); backward by the full Jacobian of out w.r.t. x.
void RmsNormForward(Vec& out, Vec& rstd, const Vec& x, const Vec& weight, int N, int C, double eps);
void RmsNormBackward(Vec& dx, Vec& dweight, const Vec& dout, const Vec& x, const Vec& weight, int N,
                     int C, double eps);

// Rotary embedding of x (B,T,NH,hd) contiguous, HF Llama convention; the
// angle is HF's fp32 product t * inv_freq, everything else in double.
// inverse = true applies the transpose (inverse) rotation.
Vec Rope(const Vec& x, int B, int T, int NH, int hd, double theta, bool inverse);

// SwiGLU over (N,F): out = silu(g) * u; dgate, dup = the gradients.
Vec SwiGluForward(const Vec& gate, const Vec& up);
void SwiGluBackward(Vec& dgate, Vec& dup, const Vec& gate, const Vec& up, const Vec& dout);

// One AdamW step on doubles, in place.
void AdamW(Vec& param, const Vec& grad, Vec& m, Vec& v, const AdamWParams& p);

}  // namespace anvil::kernels::ref
