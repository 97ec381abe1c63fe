#include "kernels/ops/activation.h"

#include "kernels/op_registry.h"
#include "kernels/ops/check_views.h"

namespace anvil::kernels {

void GeluForward(Device& d, const TensorView& out, const TensorView& x) {
  static const OpHandle<GeluForwardFn> h("activation.gelu_forward");
  internal::ExpectFloat(out, h.name(), "out");
  internal::ExpectFloat(x, h.name(), "x");
  internal::Expect(out.numel() == x.numel(), h.name(), "numel differs");
  if (x.numel() > 0) h.Get(d.kind())(d, out, x);
}

void GeluBackward(Device& d, const TensorView& dx, const TensorView& x, const TensorView& dout) {
  static const OpHandle<GeluBackwardFn> h("activation.gelu_backward");
  for (const TensorView* v : {&dx, &x, &dout}) internal::ExpectFloat(*v, h.name(), "operand");
  internal::Expect(dx.numel() == x.numel() && x.numel() == dout.numel(), h.name(),
                   "numel differs");
  if (x.numel() > 0) h.Get(d.kind())(d, dx, x, dout);
}

}  // namespace anvil::kernels
