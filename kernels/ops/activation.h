// activation: GELU (tanh approximation) and SwiGLU; F32 or BF16 each, math
// in fp32.
//
// GELU: contiguous views, same numel.
// SwiGLU (Llama MLP): out = silu(gate) * up over (N,F) views whose rows
// may be strided (last dim contiguous), so gate and up can be the two
// halves of one (N,2F) GEMM output: gate = columns [0,F), up = [F,2F).
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

// out (N,F) = silu(gate) * up; gate, up, out (N,F) row-strided.
using SwiGluForwardFn = void(Device&, const TensorView& out, const TensorView& gate,
                             const TensorView& up);
void SwiGluForward(Device& d, const TensorView& out, const TensorView& gate, const TensorView& up);
// dgate += dout * up * silu'(gate); dup += dout * silu(gate). dgate and dup
// may be the two halves of one (N,2F) buffer (row-strided views).
using SwiGluBackwardFn = void(Device&, const TensorView& dgate, const TensorView& dup,
                              const TensorView& gate, const TensorView& up,
                              const TensorView& dout);
void SwiGluBackward(Device& d, const TensorView& dgate, const TensorView& dup,
                    const TensorView& gate, const TensorView& up, const TensorView& dout);

}  // namespace anvil::kernels
