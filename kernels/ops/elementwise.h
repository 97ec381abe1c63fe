// elementwise: residual adds and scaling. Contiguous views, same numel;
// F32 or BF16 each (mixed allowed), arithmetic in fp32.
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

}  // namespace anvil::kernels
