// elementwise: residual adds, scaling and dropout. Contiguous views, same
// numel; F32 or BF16 each (mixed allowed), arithmetic in fp32.
#pragma once

#include "kernels/device.h"
#include "kernels/tensor.h"

namespace anvil::kernels {

// out = a + b
using AddFn = void(Device&, const TensorView& out, const TensorView& a, const TensorView& b);
void Add(Device& d, const TensorView& out, const TensorView& a, const TensorView& b);
// dst += src
using AccumulateFn = void(Device&, const TensorView& dst, const TensorView& src);
void Accumulate(Device& d, const TensorView& dst, const TensorView& src);
// x *= alpha
using ScaleFn = void(Device&, const TensorView& x, float alpha);
void Scale(Device& d, const TensorView& x, float alpha);

// Inverted dropout in place: x (B, ...) viewed as B samples; element i of
// sample b is zeroed with probability p (the mask of kernels/dropout_mask.h,
// keyed by seeds[b] (B) I32 and salt) and the kept ones scaled by 1/(1-p).
// The same call on the output's gradient is the backward: the mask depends
// only on (seed, salt, i), so it is rebuilt, never stored. 0 <= p < 1.
struct DropoutParams {
  float p = 0.0f;
  uint32_t salt = 0;  // tells the call sites of one model apart
};
using DropoutFn = void(Device&, const TensorView& x, const TensorView& seeds,
                       const DropoutParams& params);
void Dropout(Device& d, const TensorView& x, const TensorView& seeds, const DropoutParams& params);

}  // namespace anvil::kernels
