// The CUDA device's internals that its op implementations need: the Ctx
// (stream, cuBLAS handle, reduction scratch) of a Device of kind kCuda.
#pragma once

#include "kernels/cuda/ops.cuh"
#include "kernels/device.h"

namespace anvil::kernels::cuda {

// d must be a CUDA device; makes its GPU current for the calling thread.
const Ctx& CtxOf(Device& d);

void RegisterReduceToOp();  // reduce_to.cu (optim.reduce_to); idempotent

}  // namespace anvil::kernels::cuda
