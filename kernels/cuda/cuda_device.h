// The CUDA Device: one GPU, a compute stream plus the streams NewStream
// creates (cudaStreamNonBlocking; events are cudaEvents, WaitEvent is
// cudaStreamWaitEvent, HostFunc is cudaLaunchHostFunc), a caching allocator
// over cudaMalloc, and the op families (F32 and BF16) registered for DeviceKind::kCuda
// (register_ops.cu).
//
// Memory comes from the caching allocator: Free returns a block to the cache
// without synchronising, which is safe because every op runs on the one
// compute stream, so a later use of a reused block is ordered after the
// earlier one (the rule PyTorch's allocator follows). A block another stream
// used may be freed only once the compute stream has waited for an event
// recorded after that use (the sharded engine's rule; see
// runtime/sharding/sharding_context.h). CopyToHost /
// CopyFromHost and the optim reductions return once their data is on the
// host. Like a CUDA stream, one device must not be driven from two host
// threads at once.
//
// This header is plain C++ (no CUDA headers), so host code and tests can
// include it from ordinary .cc files.
#pragma once

#include <memory>

#include "kernels/device.h"

namespace anvil::kernels {

// Number of usable CUDA devices; 0 when there is no driver or no GPU.
int CudaDeviceCount();

// A device on GPU `ordinal`. Aborts with a message if it cannot be used;
// check CudaDeviceCount() first.
std::unique_ptr<Device> MakeCudaDevice(int ordinal = 0);

namespace cuda {
// Registers the CUDA op families in the op registry (idempotent; touches no
// GPU, so the registry can be listed where there is none). MakeCudaDevice
// calls it.
void RegisterCudaOps();
}  // namespace cuda

}  // namespace anvil::kernels
