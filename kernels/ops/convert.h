// convert: element type conversion (round-to-nearest-even when narrowing),
// or a copy when the types agree. dst and src: contiguous, same numel, any of
// F32 / BF16 / F16.
#pragma once

#include "kernels/device.h"
#include "kernels/tensor.h"

namespace anvil::kernels {

using ConvertFn = void(Device&, const TensorView& dst, const TensorView& src);
void Convert(Device& d, const TensorView& dst, const TensorView& src);

}  // namespace anvil::kernels
