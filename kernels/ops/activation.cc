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

namespace {
// (N,F) with a contiguous last dimension and any row stride.
void ExpectRows(const TensorView& v, const TensorView& like, const char* op) {
  internal::Expect(v.present() || v.numel() == 0, op, "missing operand");
  internal::Expect(internal::IsFloat(v), op, "operands must be F32 or BF16");
  internal::Expect(v.ndim == 2 && v.stride[1] == 1 && v.stride[0] >= v.shape[1], op,
                   "operands must be (N,F) rows with a contiguous last dim");
  internal::Expect(v.shape[0] == like.shape[0] && v.shape[1] == like.shape[1], op,
                   "shapes disagree");
}
}  // namespace

void SwiGluForward(Device& d, const TensorView& out, const TensorView& gate, const TensorView& up) {
  static const OpHandle<SwiGluForwardFn> h("activation.swiglu_forward");
  for (const TensorView* v : {&out, &gate, &up}) ExpectRows(*v, gate, h.name());
  if (gate.numel() > 0) h.Get(d.kind())(d, out, gate, up);
}

void SwiGluBackward(Device& d, const TensorView& dgate, const TensorView& dup,
                    const TensorView& gate, const TensorView& up, const TensorView& dout) {
  static const OpHandle<SwiGluBackwardFn> h("activation.swiglu_backward");
  for (const TensorView* v : {&dgate, &dup, &gate, &up, &dout}) ExpectRows(*v, gate, h.name());
  if (gate.numel() > 0) h.Get(d.kind())(d, dgate, dup, gate, up, dout);
}

}  // namespace anvil::kernels
