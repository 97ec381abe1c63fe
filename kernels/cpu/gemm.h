// The half-precision GEMM the linear family uses on the CPU:
// C (M,N) = op(A) op(B) + beta * C with A, B in BF16 (row-major, op = T
// when the flag is set) and fp32 accumulation into fp32 C.
#pragma once

#include <string>

#include "kernels/device.h"
#include "kernels/tensor.h"

namespace anvil::kernels::cpu {

void GemmBf16(Device& d, bool trans_a, bool trans_b, int M, int N, int K, const TensorView& a,
              const TensorView& b, float beta, float* c);

// Which implementation GemmBf16 runs on this CPU (for bench headers).
std::string Bf16GemmIsa();

}  // namespace anvil::kernels::cpu
