// Element-wise reduction kernels used by the CPU collectives: the pairwise
// reduce step (c = a op b) and the final scaling of an average.
// Invariants: kernels are pure functions of their inputs and may be called
// with c aliasing a or b; integer sums wrap (two's complement) instead of
// overflowing into undefined behaviour; bf16/fp16 steps compute in fp32 and
// round once (to nearest even) per call; max is exact for every dtype.
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "common/dtype.h"
#include "runtime/collectives/collective_options.h"

namespace anvil::collectives_internal {

using ReduceFn = void (*)(void* c, const void* a, const void* b, size_t n);

// InvalidArgument for dtypes that cannot be reduced (U8). Avg reduces with
// the sum kernel and is finished by DivideInPlace.
absl::Status CheckReducible(DType dtype, ReduceOp op);
ReduceFn GetReduceFn(DType dtype, ReduceOp op);

// data[i] /= divisor. Floats: one rounding per element (bf16/fp16 widen,
// divide, narrow); integers: truncation toward zero.
void DivideInPlace(void* data, size_t n, DType dtype, int divisor);

// fp32 -> fp32 division used by the fp32-staged bf16/fp16 path.
void DivideFloats(float* data, size_t n, int divisor);

}  // namespace anvil::collectives_internal
