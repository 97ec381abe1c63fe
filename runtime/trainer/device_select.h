// Device selection for a worker: what `--device cpu|cuda|auto` resolves to in
// this process, and the Device built from it.
//
// Invariants:
//  - cpu is always available. cuda binds GPU LOCAL_RANK (torchrun's
//    convention; a lone process takes GPU 0), so the launcher's
//    --nproc_per_node=gpu gives every worker its own GPU.
//  - auto is cuda when this build has CUDA and the process sees at least
//    LOCAL_WORLD_SIZE GPUs (every local rank gets one), else cpu: all ranks of
//    a node resolve alike, and a CPU-only machine never touches CUDA beyond
//    one cudaGetDeviceCount.
//  - A cuda request that cannot be met (no CUDA in this build, no driver, a
//    driver too old, no GPU visible, fewer GPUs than LOCAL_RANK needs) is a
//    FailedPrecondition with one line naming the problem, decided before any
//    device is made: `train` exits 2 with it. Nothing here aborts.
//  - Probing needs no driver: without libcuda the CUDA runtime's
//    cudaGetDeviceCount returns an error, which is reported, not fatal.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "kernels/device.h"

namespace anvil {

// What this process can see of CUDA.
struct CudaProbe {
  bool compiled = false;  // this build has the CUDA device and NCCL
  int count = 0;          // usable GPUs (0 when `problem` is set)
  std::string problem;    // why none is usable, e.g. "no CUDA driver (libcuda.so.1) is installed"
};

// Asks the CUDA runtime (once per call; cheap). Without CUDA in the build:
// compiled = false and a problem saying so.
CudaProbe ProbeCuda();

struct DeviceChoice {
  kernels::DeviceKind kind = kernels::DeviceKind::kCpu;
  int ordinal = 0;           // the GPU, for kCuda
  std::string name = "cpu";  // "cpu" or "cuda:N"
};

// Resolves the --device value for a worker with this local rank and local
// world size (1 and 0 for a lone process). Errors are one line starting with
// "--device".
absl::StatusOr<DeviceChoice> ChooseDevice(std::string_view flag, int local_rank,
                                          int local_world_size, const CudaProbe& probe);

// The Device for a choice ChooseDevice made (threads: the CPU device's
// OpenMP threads; ignored for CUDA).
std::unique_ptr<kernels::Device> MakeDevice(const DeviceChoice& choice, int threads);

// The dense peak FLOP/s of a CUDA device's matmuls in `bf16` (else plain
// fp32, which the CUDA device runs without TF32), from its name (H100, H200,
// A100, ...); 0 when unknown (MFU is then not reported). CPU: 0 (the trainer
// measures the CPU's peak instead).
double NominalPeakFlops(const DeviceChoice& choice, bool bf16);

}  // namespace anvil
