// Device selection (see device_select.h). The CUDA parts compile only when
// the build found a CUDA toolkit (ANVIL_WITH_CUDA); the CPU-only build keeps
// the same functions, with cuda reported as not built in.
#include "runtime/trainer/device_select.h"

#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#if ANVIL_WITH_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_device.h"
#endif

namespace anvil {
namespace {

std::string VersionText(int v) { return absl::StrCat(v / 1000, ".", (v % 1000) / 10); }

std::string VisibleDevicesNote() {
  const char* v = std::getenv("CUDA_VISIBLE_DEVICES");
  return v == nullptr ? "" : absl::StrCat(" (CUDA_VISIBLE_DEVICES='", v, "')");
}

}  // namespace

CudaProbe ProbeCuda() {
  CudaProbe p;
#if ANVIL_WITH_CUDA
  p.compiled = true;
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err == cudaSuccess && n > 0) {
    p.count = n;
    return p;
  }
  cudaGetLastError();  // clear the sticky error, so a later call starts clean
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);  // 0 when libcuda cannot be loaded
  cudaRuntimeGetVersion(&runtime);
  if (err == cudaSuccess || err == cudaErrorNoDevice) {
    p.problem = absl::StrCat("no CUDA GPU is visible to this process", VisibleDevicesNote());
  } else if (driver == 0) {
    p.problem = absl::StrCat("no CUDA driver (libcuda.so.1) is installed (cudaGetDeviceCount: ",
                             cudaGetErrorString(err), ")");
  } else if (driver < runtime) {
    p.problem = absl::StrCat("the CUDA driver supports CUDA ", VersionText(driver),
                             " but this build needs CUDA ", VersionText(runtime), " or newer");
  } else {
    p.problem = absl::StrCat("CUDA cannot be used: cudaGetDeviceCount: ", cudaGetErrorName(err),
                             ": ", cudaGetErrorString(err));
  }
#else
  p.problem = "this build has no CUDA support (configured without a CUDA toolkit)";
#endif
  return p;
}

absl::StatusOr<DeviceChoice> ChooseDevice(std::string_view flag, int local_rank,
                                          int local_world_size, const CudaProbe& probe) {
  DeviceChoice cpu;
  if (flag == "cpu") return cpu;
  if (flag == "auto") {
    // Every local rank must get its own GPU, or none uses one.
    if (probe.count > 0 && probe.count >= local_world_size && local_rank < probe.count) {
      return DeviceChoice{kernels::DeviceKind::kCuda, local_rank, absl::StrCat("cuda:", local_rank)};
    }
    return cpu;
  }
  if (flag != "cuda") {
    return absl::InvalidArgumentError(
        absl::StrCat("--device must be cpu, cuda or auto, got '", std::string(flag), "'"));
  }
  if (!probe.problem.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("--device cuda: ", probe.problem));
  }
  if (local_rank >= probe.count) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--device cuda: LOCAL_RANK ", local_rank, " needs GPU ", local_rank,
        " but this process sees ", probe.count, " GPU(s)", VisibleDevicesNote(),
        "; start at most ", probe.count, " workers per node (launcher --nproc_per_node=gpu)"));
  }
  return DeviceChoice{kernels::DeviceKind::kCuda, local_rank, absl::StrCat("cuda:", local_rank)};
}

std::unique_ptr<kernels::Device> MakeDevice(const DeviceChoice& choice, int threads) {
#if ANVIL_WITH_CUDA
  if (choice.kind == kernels::DeviceKind::kCuda) return kernels::MakeCudaDevice(choice.ordinal);
#endif
  return kernels::MakeCpuDevice(threads);
}

double NominalPeakFlops(const DeviceChoice& choice, bool bf16) {
#if ANVIL_WITH_CUDA
  if (choice.kind != kernels::DeviceKind::kCuda) return 0;
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, choice.ordinal) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  const std::string name = prop.name;
  // Dense tensor-core bf16 and plain (non-TF32) fp32, from NVIDIA's data sheets.
  struct Peak {
    const char* match;
    double bf16_tflops, fp32_tflops;
  };
  static constexpr Peak kPeaks[] = {
      {"H100 PCIe", 756.0, 51.2}, {"H100 NVL", 835.0, 60.0}, {"H100", 989.4, 66.9},
      {"H200", 989.4, 66.9},      {"H800", 989.4, 66.9},     {"GH200", 989.4, 66.9},
      {"A100", 312.0, 19.5},      {"A800", 312.0, 19.5},     {"L40S", 362.0, 91.6},
  };
  for (const Peak& p : kPeaks) {
    if (absl::StrContains(name, p.match)) return (bf16 ? p.bf16_tflops : p.fp32_tflops) * 1e12;
  }
  return 0;
#else
  (void)choice;
  (void)bf16;
  return 0;
#endif
}

}  // namespace anvil
