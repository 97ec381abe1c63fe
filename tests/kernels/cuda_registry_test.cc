// The CUDA op registry against the CPU's, on any machine: registration
// touches no GPU, so this runs (and must pass) without one. Every op the
// CPU registers has a CUDA implementation, in every dtype the CPU accepts
// it in; a new CPU op without its CUDA twin fails here in CPU CI.
#include <gtest/gtest.h>

#include <string>

#include "kernels/cpu/register_ops.h"
#include "kernels/cuda/cuda_device.h"
#include "kernels/op_registry.h"

namespace anvil::kernels {
namespace {

bool CudnnBuilt() {
#ifdef ANVIL_HAVE_CUDNN
  return true;
#else
  return false;
#endif
}

TEST(CudaRegistryTest, EveryCpuOpHasACudaImplementationInItsDtypes) {
  cpu::RegisterCpuOps();
  cuda::RegisterCudaOps();
  const std::vector<std::string> cpu_ops = RegisteredOps(DeviceKind::kCpu);
  ASSERT_GT(cpu_ops.size(), 40u);  // the registry is populated at all
  int checked = 0;
  for (const std::string& name : cpu_ops) {
    if (!CudnnBuilt() && name.rfind("conv.", 0) == 0) continue;  // conv is cuDNN's
    const OpEntry* cpu = FindOp(DeviceKind::kCpu, name);
    const OpEntry* gpu = FindOp(DeviceKind::kCuda, name);
    ASSERT_NE(cpu, nullptr);
    EXPECT_NE(gpu, nullptr) << "no CUDA implementation of " << name;
    if (gpu == nullptr) continue;
    EXPECT_NE(gpu->fn, nullptr) << name;
    for (DType t : {DType::kF32, DType::kBF16, DType::kF16}) {
      const uint32_t bit = 1u << static_cast<int>(t);
      EXPECT_TRUE((cpu->dtypes & bit) == 0 || (gpu->dtypes & bit) != 0)
          << name << " has a CPU " << DTypeName(t) << " version and no CUDA one";
    }
    ++checked;
  }
  EXPECT_GE(checked, 40);
  // Nothing on CUDA that the CPU (the reference every CUDA op is tested
  // against) lacks.
  for (const std::string& name : RegisteredOps(DeviceKind::kCuda)) {
    EXPECT_NE(FindOp(DeviceKind::kCpu, name), nullptr) << name << " has no CPU reference";
  }
}

}  // namespace
}  // namespace anvil::kernels
