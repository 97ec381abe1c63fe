// CPU implementation of the optim family (adamw.cc, reduce.cc), fp32.
#include "kernels/cpu/register_ops.h"
#include "kernels/cpu/typed.h"
#include "kernels/op_registry.h"
#include "kernels/ops/optim.h"

namespace anvil::kernels::cpu {
namespace {

void AdamWCpu(Device& d, const TensorView& param, const TensorView& grad, const TensorView& m,
              const TensorView& v, const AdamWParams& p) {
  AdamW(Threads(d), param.as<float>(), grad.as<float>(), m.as<float>(), v.as<float>(),
        static_cast<size_t>(param.numel()), p);
}

double SquaredNormCpu(Device& d, const TensorView& x) {
  return SquaredNorm(Threads(d), x.as<float>(), static_cast<size_t>(x.numel()));
}

bool HasNonFiniteCpu(Device& d, const TensorView& x) {
  return HasNonFinite(Threads(d), x.as<float>(), static_cast<size_t>(x.numel()));
}

}  // namespace

void RegisterOptimOps() {
  constexpr DeviceKind k = DeviceKind::kCpu;
  RegisterOp<AdamWFn>(k, "optim.adamw", &AdamWCpu, {DType::kF32});
  RegisterOp<SquaredNormFn>(k, "optim.squared_norm", &SquaredNormCpu, {DType::kF32});
  RegisterOp<HasNonFiniteFn>(k, "optim.has_nonfinite", &HasNonFiniteCpu, {DType::kF32});
}

}  // namespace anvil::kernels::cpu
