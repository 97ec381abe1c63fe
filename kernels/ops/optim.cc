#include "kernels/ops/optim.h"

#include "kernels/op_registry.h"
#include "kernels/ops/check_views.h"

namespace anvil::kernels {

void AdamW(Device& d, const TensorView& param, const TensorView& grad, const TensorView& m,
           const TensorView& v, const AdamWParams& p) {
  static const OpHandle<AdamWFn> h("optim.adamw");
  for (const TensorView* t : {&param, &grad, &m, &v}) internal::ExpectF32(*t, h.name(), "F32 only");
  internal::Expect(param.numel() == grad.numel() && grad.numel() == m.numel() &&
                       m.numel() == v.numel(),
                   h.name(), "numel differs");
  if (param.numel() > 0) h.Get(d.kind())(d, param, grad, m, v, p);
}

double SquaredNorm(Device& d, const TensorView& x) {
  static const OpHandle<SquaredNormFn> h("optim.squared_norm");
  internal::ExpectF32(x, h.name(), "F32 only");
  return x.numel() > 0 ? h.Get(d.kind())(d, x) : 0.0;
}

bool HasNonFinite(Device& d, const TensorView& x) {
  static const OpHandle<HasNonFiniteFn> h("optim.has_nonfinite");
  internal::ExpectF32(x, h.name(), "F32 only");
  return x.numel() > 0 && h.Get(d.kind())(d, x);
}

void ReduceTo(Device& d, const TensorView& out, const TensorView& x, const ReduceToParams& p) {
  static const OpHandle<ReduceToFn> h("optim.reduce_to");
  internal::ExpectF32(x, h.name(), "F32 only");
  internal::ExpectF32(out, h.name(), "F32 only");
  internal::Expect(out.numel() == 1 && x.contiguous(), h.name(), "out must be one element");
  h.Get(d.kind())(d, out, x, p);
}

}  // namespace anvil::kernels
