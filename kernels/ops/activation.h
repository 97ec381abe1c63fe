// activation: GELU (tanh approximation). Contiguous, same numel; F32 or BF16
// each, math in fp32.
#pragma once

#include "kernels/device.h"
#include "kernels/tensor.h"

namespace anvil::kernels {

// out = gelu(x)
using GeluForwardFn = void(Device&, const TensorView& out, const TensorView& x);
void GeluForward(Device& d, const TensorView& out, const TensorView& x);
// dx += gelu'(x) * dout
using GeluBackwardFn = void(Device&, const TensorView& dx, const TensorView& x,
                            const TensorView& dout);
void GeluBackward(Device& d, const TensorView& dx, const TensorView& x, const TensorView& dout);

}  // namespace anvil::kernels
