// Ops the diffusion models add to existing families, declared here rather
// than in activation.h / loss.h / embedding.h only so that branches editing
// those headers in parallel do not collide; their op names carry their
// family ("activation.silu_forward", ...), so moving a declaration into its
// family header later changes nothing else.
//
// Dtypes as everywhere: F32|BF16 operands, arithmetic and reductions fp32.
#pragma once

#include "kernels/device.h"
#include "kernels/tensor.h"

namespace anvil::kernels {

// ---- activation: SiLU (swish) -----------------------------------------------
// out = x * sigmoid(x). Contiguous, same numel. out may alias x.
using SiluForwardFn = void(Device&, const TensorView& out, const TensorView& x);
void SiluForward(Device& d, const TensorView& out, const TensorView& x);
// dx += dout * sigmoid(x) * (1 + x * (1 - sigmoid(x)))
using SiluBackwardFn = void(Device&, const TensorView& dx, const TensorView& x,
                            const TensorView& dout);
void SiluBackward(Device& d, const TensorView& dx, const TensorView& x, const TensorView& dout);

// ---- loss: mean squared error -------------------------------------------------
// loss (1) F32 = mean over all elements of (pred - target)^2 (the
// F.mse_loss default). pred F32|BF16, target F32|BF16, same numel. The sum
// runs over fixed blocks of elements whose partial sums are added in order:
// the same result for any thread count.
using MseLossForwardFn = void(Device&, const TensorView& loss, const TensorView& pred,
                              const TensorView& target);
void MseLossForward(Device& d, const TensorView& loss, const TensorView& pred,
                    const TensorView& target);
// dpred += dloss * 2 * (pred - target) / numel.
using MseLossBackwardFn = void(Device&, const TensorView& dpred, const TensorView& pred,
                               const TensorView& target, float dloss);
void MseLossBackward(Device& d, const TensorView& dpred, const TensorView& pred,
                     const TensorView& target, float dloss);

// ---- embedding: sinusoidal timestep embedding (forward only) ------------------
// out (B,dim) F32|BF16 from t (B) I32|F32, as diffusers'
// get_timestep_embedding: half = dim/2,
//   freq[i] = exp(-ln(max_period) * i / (half - downscale_freq_shift)),
//   out[b] = [sin(t*freq) | cos(t*freq)] * scale (cos first when
//   flip_sin_to_cos), a zero last column when dim is odd. The defaults are
// the DDPM convention (sin first, shift 1); diffusers' UNet2DModel uses
// flip_sin_to_cos = true, shift 0; the DiT paper's code cos first, shift 0.
// Computed in fp32 in the order PyTorch evaluates it.
struct TimestepEmbeddingParams {
  float max_period = 10000.0f;
  bool flip_sin_to_cos = false;
  float downscale_freq_shift = 1.0f;
  float scale = 1.0f;
};
using TimestepEmbeddingFn = void(Device&, const TensorView& out, const TensorView& t,
                                 const TimestepEmbeddingParams& p);
void TimestepEmbedding(Device& d, const TensorView& out, const TensorView& t,
                       const TimestepEmbeddingParams& p = {});

}  // namespace anvil::kernels
