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

void ReduceToCpu(Device& d, const TensorView& out, const TensorView& x, const ReduceToParams& p) {
  const size_t n = static_cast<size_t>(x.numel());
  const float* v = x.as<float>();
  double r = 0;
  switch (p.kind) {
    case ReduceToKind::kSum:
      for (size_t i = 0; i < n; ++i) r += v[i];
      break;
    case ReduceToKind::kSquares:
      r = n > 0 ? SquaredNorm(Threads(d), v, n) : 0.0;
      break;
    case ReduceToKind::kNonFinite:
      r = n > 0 && HasNonFinite(Threads(d), v, n) ? 1.0 : 0.0;
      break;
  }
  const float f = static_cast<float>(r * p.scale);
  float* o = out.as<float>();
  *o = p.accumulate ? *o + f : f;
}

}  // namespace

void RegisterOptimOps() {
  constexpr DeviceKind k = DeviceKind::kCpu;
  RegisterOp<AdamWFn>(k, "optim.adamw", &AdamWCpu, {DType::kF32});
  RegisterOp<SquaredNormFn>(k, "optim.squared_norm", &SquaredNormCpu, {DType::kF32});
  RegisterOp<HasNonFiniteFn>(k, "optim.has_nonfinite", &HasNonFiniteCpu, {DType::kF32});
  RegisterOp<ReduceToFn>(k, "optim.reduce_to", &ReduceToCpu, {DType::kF32});
}

}  // namespace anvil::kernels::cpu
