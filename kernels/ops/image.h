// image: the per-channel ops of the diffusion models over NHWC activations.
//
// Layout: an image batch is (B,H,W,C) row-major with C contiguous; ops that
// do not care about the spatial shape take it as (B,N,C) with N = H*W
// positions (any view whose first dimension is B and last is C is accepted
// and read as (B, numel/(B*C), C)), so the same ops serve the DiT's tokens.
// Per-sample vectors (B,C) (scale, shift, gate, a time-embedding bias) may be
// strided views with a contiguous last dimension, e.g. column blocks of one
// (B,6C) adaLN tensor: stride (6C,1).
//
// Dtypes: activations F32|BF16 (each operand independently), arithmetic
// and every reduction in fp32; statistics (mean, rstd) and parameter
// gradients F32. Forward ops overwrite their outputs unless they say +=;
// backward ops ACCUMULATE into every gradient; absent gradients are skipped.
#pragma once

#include "kernels/device.h"
#include "kernels/tensor.h"

namespace anvil::kernels {

// ---- GroupNorm (torch.nn.GroupNorm over NHWC) -------------------------------
// Channels split into G groups of C/G consecutive channels; each (sample,
// group) is normalised over its N positions x C/G channels (biased
// variance), then y = xhat * weight[c] + bias[c].
// x, out (B,N,C) F32|BF16; weight, bias (C) F32|BF16 (bias may be absent);
// mean, rstd (B,G) F32, saved for backward.
struct GroupNormParams {
  int groups = 32;
  float eps = 1e-5f;
};
using GroupNormForwardFn = void(Device&, const TensorView& out, const TensorView& mean,
                                const TensorView& rstd, const TensorView& x,
                                const TensorView& weight, const TensorView& bias,
                                const GroupNormParams& p);
void GroupNormForward(Device& d, const TensorView& out, const TensorView& mean,
                      const TensorView& rstd, const TensorView& x, const TensorView& weight,
                      const TensorView& bias, const GroupNormParams& p);
// dx (B,N,C) F32|BF16 +=; dweight, dbias (C) F32 +=.
using GroupNormBackwardFn = void(Device&, const TensorView& dx, const TensorView& dweight,
                                 const TensorView& dbias, const TensorView& dout,
                                 const TensorView& x, const TensorView& weight,
                                 const TensorView& mean, const TensorView& rstd,
                                 const GroupNormParams& p);
void GroupNormBackward(Device& d, const TensorView& dx, const TensorView& dweight,
                       const TensorView& dbias, const TensorView& dout, const TensorView& x,
                       const TensorView& weight, const TensorView& mean, const TensorView& rstd,
                       const GroupNormParams& p);

// ---- nearest-neighbour 2x upsampling ----------------------------------------
// out (B,2H,2W,C)[b, y, x, c] = x (B,H,W,C)[b, y/2, x/2, c]
// (torch.nn.functional.interpolate(scale_factor=2, mode="nearest")).
using Upsample2xForwardFn = void(Device&, const TensorView& out, const TensorView& x);
void Upsample2xForward(Device& d, const TensorView& out, const TensorView& x);
// dx (B,H,W,C) += the sum of dout over each 2x2 block.
using Upsample2xBackwardFn = void(Device&, const TensorView& dx, const TensorView& dout);
void Upsample2xBackward(Device& d, const TensorView& dx, const TensorView& dout);

// ---- per-sample channel bias (the UNet's time-embedding add) ----------------
// x (B,N,C)[b,n,c] += bias (B,C)[b,c], in place.
using AddChannelBiasFn = void(Device&, const TensorView& x, const TensorView& bias);
void AddChannelBias(Device& d, const TensorView& x, const TensorView& bias);
// dbias (B,C) += sum over n of dout (B,N,C) (dout itself is x's gradient,
// passed through unchanged by the caller).
using AddChannelBiasBackwardFn = void(Device&, const TensorView& dbias, const TensorView& dout);
void AddChannelBiasBackward(Device& d, const TensorView& dbias, const TensorView& dout);

// ---- adaLN modulate and gate (DiT) --------------------------------------------
// out (B,N,C) = x (B,N,C) * (1 + scale[b]) + shift[b]; scale, shift (B,C).
// out may alias x.
using ModulateForwardFn = void(Device&, const TensorView& out, const TensorView& x,
                               const TensorView& scale, const TensorView& shift);
void ModulateForward(Device& d, const TensorView& out, const TensorView& x, const TensorView& scale,
                     const TensorView& shift);
// dx += dout * (1 + scale[b]); dscale[b] += sum_n dout * x; dshift[b] +=
// sum_n dout. dx (B,N,C) and dscale, dshift (B,C) F32|BF16, each optional.
using ModulateBackwardFn = void(Device&, const TensorView& dx, const TensorView& dscale,
                                const TensorView& dshift, const TensorView& dout,
                                const TensorView& x, const TensorView& scale);
void ModulateBackward(Device& d, const TensorView& dx, const TensorView& dscale,
                      const TensorView& dshift, const TensorView& dout, const TensorView& x,
                      const TensorView& scale);

// Gated residual: out (B,N,C) += gate[b] * y (B,N,C); gate (B,C).
using GatedResidualForwardFn = void(Device&, const TensorView& out, const TensorView& y,
                                    const TensorView& gate);
void GatedResidualForward(Device& d, const TensorView& out, const TensorView& y,
                          const TensorView& gate);
// dy += gate[b] * dout; dgate[b] += sum_n dout * y (each optional).
using GatedResidualBackwardFn = void(Device&, const TensorView& dy, const TensorView& dgate,
                                     const TensorView& dout, const TensorView& y,
                                     const TensorView& gate);
void GatedResidualBackward(Device& d, const TensorView& dy, const TensorView& dgate,
                           const TensorView& dout, const TensorView& y, const TensorView& gate);

}  // namespace anvil::kernels
