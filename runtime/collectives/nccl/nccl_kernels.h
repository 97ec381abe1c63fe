// Device kernels of the NCCL backend: the fp32 staging of bf16/fp16 sums
// (widen / narrow) and the division that finishes an average.
// Invariants: every launch goes on the given stream and never synchronises
// the host; narrowing rounds to nearest even; integer division truncates
// toward zero, like the Gloo backend, so both backends agree bit for bit on
// integers. Launches with n == 0 do nothing.
#pragma once

#include <cstddef>

#include <cuda_runtime.h>

#include "common/dtype.h"

namespace anvil::nccl_internal {

// in (bf16 or fp16) -> out (fp32).
cudaError_t LaunchWiden(DType dtype, const void* in, float* out, size_t n, cudaStream_t stream);
// out (bf16 or fp16) = in (fp32) / divisor (divisor 1: plain narrowing).
cudaError_t LaunchNarrow(DType dtype, const float* in, void* out, size_t n, int divisor,
                         cudaStream_t stream);
// data /= divisor, element type `dtype` (F32, BF16, F16, I32, I64).
cudaError_t LaunchDivide(DType dtype, void* data, size_t n, int divisor, cudaStream_t stream);

}  // namespace anvil::nccl_internal
