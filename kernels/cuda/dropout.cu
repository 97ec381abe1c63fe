// Dropout on CUDA (elementwise.dropout): the mask of kernels/dropout_mask.h,
// so a CUDA run drops the same elements as a CPU run with the same seeds.
#include "kernels/cuda/cuda_device.cuh"
#include "kernels/cuda/family_util.cuh"
#include "kernels/dropout_mask.h"
#include "kernels/op_registry.h"
#include "kernels/ops/elementwise.h"

namespace anvil::kernels::cuda {
namespace {

struct DropoutF {
  TArg x;
  const int32_t* seeds;
  int64_t n;  // elements per sample
  uint32_t salt, threshold;
  float scale;
  __device__ void operator()(int64_t j) const {
    const uint64_t key = DropoutKey(static_cast<uint32_t>(seeds[j / n]), salt);
    const bool keep = DropoutKeep(key, static_cast<uint64_t>(j % n), threshold);
    x.st(j, keep ? x.ld(j) * scale : 0.0f);
  }
};

void DropoutCuda(Device& d, const TensorView& x, const TensorView& seeds, const DropoutParams& p) {
  LaunchMap(CtxOf(d), x.numel(),
            DropoutF{Arg(x), seeds.as<int32_t>(), x.numel() / seeds.shape[0], p.salt,
                     DropoutThreshold(p.p), 1.0f / (1.0f - p.p)});
}

}  // namespace

void RegisterDropoutCudaOps() {
  RegisterOp<DropoutFn>(DeviceKind::kCuda, "elementwise.dropout", &DropoutCuda,
                        {DType::kF32, DType::kBF16, DType::kF16});
}

}  // namespace anvil::kernels::cuda
