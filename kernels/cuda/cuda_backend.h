// The CUDA backend: kernels/backend.h on one GPU.
//
// Memory is cudaMalloc'd device memory; every op is enqueued on one
// cudaStream_t the backend owns (so ops on one backend run in order and
// asynchronously to the host). CopyToHost/CopyFromHost and SquaredNorm /
// HasNonFinite return only once their data is on the host. Matmuls and the
// attention products use cuBLAS in plain FP32 (no TF32), so results match
// the CPU backend to fp32 rounding. Like a CUDA stream, one backend must not
// be driven from two host threads at once.
//
// This header is plain C++ (no CUDA headers), so host code and tests can
// include it from ordinary .cc files.
#pragma once

#include <memory>

#include "kernels/backend.h"

namespace anvil::kernels {

// Number of usable CUDA devices; 0 when there is no driver or no GPU.
int CudaDeviceCount();

// A backend on `device`. Aborts with a message if the device cannot be used;
// check CudaDeviceCount() first.
std::unique_ptr<Backend> MakeCudaBackend(int device = 0);

}  // namespace anvil::kernels
