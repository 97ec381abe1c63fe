// linear: out (N,OC) = x (N,C) @ W (OC,C)^T + b (OC).
//
// x and W share a dtype, F32 or BF16 (bf16 x bf16 products accumulate in
// fp32); out F32 or BF16; b F32|BF16 or absent. Backward:
//   dx (N,C) = or += dout @ W   (F32|BF16; += needs F32)
//   dW (OC,C) += dout^T @ x     (F32)
//   db (OC) += colsum(dout)     (F32)
// with dout (N,OC) in x's dtype. Any gradient may be absent (skipped).
#pragma once

#include "kernels/device.h"
#include "kernels/tensor.h"

namespace anvil::kernels {

struct LinearParams {
  bool accumulate = false;  // out += x W^T (+ b); needs F32 out
};
struct LinearBackwardParams {
  bool accumulate_dx = true;  // false: dx is overwritten
};

using LinearForwardFn = void(Device&, const TensorView& out, const TensorView& x,
                             const TensorView& weight, const TensorView& bias,
                             const LinearParams& p);
void LinearForward(Device& d, const TensorView& out, const TensorView& x, const TensorView& weight,
                   const TensorView& bias, const LinearParams& p = {});

using LinearBackwardFn = void(Device&, const TensorView& dx, const TensorView& dweight,
                              const TensorView& dbias, const TensorView& dout,
                              const TensorView& x, const TensorView& weight,
                              const LinearBackwardParams& p);
void LinearBackward(Device& d, const TensorView& dx, const TensorView& dweight,
                    const TensorView& dbias, const TensorView& dout, const TensorView& x,
                    const TensorView& weight, const LinearBackwardParams& p = {});

}  // namespace anvil::kernels
