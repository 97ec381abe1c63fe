// optim.reduce_to on CUDA: the step scalars (sum, squared norm, inf/NaN
// flag) reduced into device memory without a host wait, so the sharded
// engine reads them back once per step. Two-stage with a fixed grid
// (kReduceBlocks partials in ctx.scratch_d, then one block combines them in
// a fixed order), so the result is deterministic; accumulation in double.
// Registered by MakeCudaDevice (cuda_device.cu).
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_device.cuh"
#include "kernels/cuda/ops.cuh"
#include "kernels/cuda/reduce.cuh"
#include "kernels/op_registry.h"
#include "kernels/ops/optim.h"

namespace anvil::kernels::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void ReducePartialKernel(double* partial, const float* x, size_t n, int kind) {
  double s = 0.0;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const double d = x[i];
    if (kind == static_cast<int>(ReduceToKind::kSum)) {
      s += d;
    } else if (kind == static_cast<int>(ReduceToKind::kSquares)) {
      s += d * d;
    } else if ((__float_as_uint(x[i]) & 0x7f800000u) == 0x7f800000u) {
      s = 1.0;
    }
  }
  s = BlockSum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void ReduceFinishKernel(float* out, const double* partial, int kind, double scale,
                                   bool accumulate) {
  double s = threadIdx.x < kReduceBlocks ? partial[threadIdx.x] : 0.0;
  s = BlockSum(s);
  if (threadIdx.x != 0) return;
  if (kind == static_cast<int>(ReduceToKind::kNonFinite)) s = s > 0 ? 1.0 : 0.0;
  const float f = static_cast<float>(s * scale);
  *out = accumulate ? *out + f : f;
}

void ReduceToCuda(Device& d, const TensorView& out, const TensorView& x, const ReduceToParams& p) {
  const Ctx& ctx = CtxOf(d);
  const size_t n = static_cast<size_t>(x.numel());
  static_assert(kReduceBlocks <= 1024 && kReduceBlocks % 32 == 0);
  const int kind = static_cast<int>(p.kind);
  ReducePartialKernel<<<kReduceBlocks, kThreads, 0, ctx.stream>>>(ctx.scratch_d, x.as<float>(), n,
                                                                   kind);
  ANVIL_CUDA_LAUNCH_CHECK();
  ReduceFinishKernel<<<1, kReduceBlocks, 0, ctx.stream>>>(out.as<float>(), ctx.scratch_d, kind,
                                                         p.scale, p.accumulate);
  ANVIL_CUDA_LAUNCH_CHECK();
}

}  // namespace

void RegisterReduceToOp() {
  RegisterOp<ReduceToFn>(DeviceKind::kCuda, "optim.reduce_to", &ReduceToCuda, {DType::kF32});
}

}  // namespace anvil::kernels::cuda
