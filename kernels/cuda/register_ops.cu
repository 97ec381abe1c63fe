// Registration of the CUDA op families for DeviceKind::kCuda: convert and
// the optimizer ops here, every other family from its own file
// (family_util.cuh lists them). Registration touches no GPU, so the
// registry can be inspected on a machine without one
// (tests/kernels/cuda_registry_test.cc compares it with the CPU's).
#include <mutex>

#include "kernels/cuda/cuda_device.cuh"
#include "kernels/cuda/cuda_device.h"
#include "kernels/cuda/family_util.cuh"
#include "kernels/op_registry.h"
#include "kernels/ops/convert.h"
#include "kernels/ops/optim.h"

namespace anvil::kernels::cuda {
namespace {

void ConvertCuda(Device& d, const TensorView& dst, const TensorView& src) {
  Convert(CtxOf(d), dst.data, dst.dtype, src.data, src.dtype, static_cast<size_t>(dst.numel()));
}

void AdamWCuda(Device& d, const TensorView& param, const TensorView& grad, const TensorView& m,
               const TensorView& v, const AdamWParams& p) {
  AdamW(CtxOf(d), param.as<float>(), grad.as<float>(), m.as<float>(), v.as<float>(),
        static_cast<size_t>(param.numel()), p);
}
double SquaredNormCuda(Device& d, const TensorView& x) {
  return SquaredNorm(CtxOf(d), x.as<float>(), static_cast<size_t>(x.numel()));
}
bool HasNonFiniteCuda(Device& d, const TensorView& x) {
  return HasNonFinite(CtxOf(d), x.as<float>(), static_cast<size_t>(x.numel()));
}

}  // namespace

void RegisterCudaOps() {
  static std::once_flag once;
  std::call_once(once, [] {
    constexpr DeviceKind k = DeviceKind::kCuda;
    const std::initializer_list<DType> f32 = {DType::kF32};
    RegisterOp<ConvertFn>(k, "convert.convert", &ConvertCuda,
                          {DType::kF32, DType::kBF16, DType::kF16});
    RegisterOp<AdamWFn>(k, "optim.adamw", &AdamWCuda, f32);
    RegisterOp<SquaredNormFn>(k, "optim.squared_norm", &SquaredNormCuda, f32);
    RegisterOp<HasNonFiniteFn>(k, "optim.has_nonfinite", &HasNonFiniteCuda, f32);
    RegisterElementwiseCudaOps();
    RegisterDropoutCudaOps();
    RegisterReduceToOp();
    RegisterNormCudaOps();
    RegisterLinearCudaOps();
    RegisterAttentionCudaOps();
    RegisterEmbeddingCudaOps();
    RegisterLossCudaOps();
    RegisterImageCudaOps();
#ifdef ANVIL_HAVE_CUDNN
    RegisterConvCudaOps();
#endif
  });
}

}  // namespace anvil::kernels::cuda
