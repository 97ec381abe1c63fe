// norm: LayerNorm and RMSNorm over the last dimension.
//
// x (N,C) F32|BF16; weight, bias (C) F32|BF16 (bias may be absent); out
// (N,C) F32|BF16; mean, rstd (N) F32, saved for backward. Statistics and
// the normalisation are computed in fp32 whatever the storage types.
//
// RMSNorm (Llama): out = x * rstd * weight with rstd = 1/sqrt(mean(x^2) + eps)
// (N) F32 saved for backward; no bias, no centring.
#pragma once

#include "kernels/device.h"
#include "kernels/tensor.h"

namespace anvil::kernels {

struct LayerNormParams {
  float eps = 1e-5f;
};

using LayerNormForwardFn = void(Device&, const TensorView& out, const TensorView& mean,
                                const TensorView& rstd, const TensorView& x,
                                const TensorView& weight, const TensorView& bias,
                                const LayerNormParams& p);
void LayerNormForward(Device& d, const TensorView& out, const TensorView& mean,
                      const TensorView& rstd, const TensorView& x, const TensorView& weight,
                      const TensorView& bias, const LayerNormParams& p = {});

// dx (N,C) F32|BF16 +=; dweight, dbias (C) F32 += (dbias may be absent);
// dout (N,C) F32|BF16.
using LayerNormBackwardFn = void(Device&, const TensorView& dx, const TensorView& dweight,
                                 const TensorView& dbias, const TensorView& dout,
                                 const TensorView& x, const TensorView& weight,
                                 const TensorView& mean, const TensorView& rstd,
                                 const LayerNormParams& p);
void LayerNormBackward(Device& d, const TensorView& dx, const TensorView& dweight,
                       const TensorView& dbias, const TensorView& dout, const TensorView& x,
                       const TensorView& weight, const TensorView& mean, const TensorView& rstd,
                       const LayerNormParams& p = {});

struct RmsNormParams {
  float eps = 1e-5f;
};

// out (N,C) F32|BF16 = x * rstd * weight; rstd (N) F32 written.
using RmsNormForwardFn = void(Device&, const TensorView& out, const TensorView& rstd,
                              const TensorView& x, const TensorView& weight,
                              const RmsNormParams& p);
void RmsNormForward(Device& d, const TensorView& out, const TensorView& rstd, const TensorView& x,
                    const TensorView& weight, const RmsNormParams& p = {});

// dx (N,C) F32|BF16 += rstd * (g - xhat * mean(g * xhat)), g = weight * dout,
// xhat = x * rstd; dweight (C) F32 += colsum(dout * xhat).
using RmsNormBackwardFn = void(Device&, const TensorView& dx, const TensorView& dweight,
                               const TensorView& dout, const TensorView& x,
                               const TensorView& weight, const TensorView& rstd);
void RmsNormBackward(Device& d, const TensorView& dx, const TensorView& dweight,
                     const TensorView& dout, const TensorView& x, const TensorView& weight,
                     const TensorView& rstd);

}  // namespace anvil::kernels
