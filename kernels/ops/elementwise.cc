#include "kernels/ops/elementwise.h"

#include "kernels/op_registry.h"
#include "kernels/ops/check_views.h"

namespace anvil::kernels {

void Add(Device& d, const TensorView& out, const TensorView& a, const TensorView& b) {
  static const OpHandle<AddFn> h("elementwise.add");
  for (const TensorView* v : {&out, &a, &b}) internal::ExpectFloat(*v, h.name(), "operand");
  internal::Expect(out.numel() == a.numel() && a.numel() == b.numel(), h.name(), "numel differs");
  if (out.numel() > 0) h.Get(d.kind())(d, out, a, b);
}

void Accumulate(Device& d, const TensorView& dst, const TensorView& src) {
  static const OpHandle<AccumulateFn> h("elementwise.accumulate");
  internal::ExpectFloat(dst, h.name(), "dst");
  internal::ExpectFloat(src, h.name(), "src");
  internal::Expect(dst.numel() == src.numel(), h.name(), "numel differs");
  if (dst.numel() > 0) h.Get(d.kind())(d, dst, src);
}

void Scale(Device& d, const TensorView& x, float alpha) {
  static const OpHandle<ScaleFn> h("elementwise.scale");
  internal::ExpectFloat(x, h.name(), "x");
  if (x.numel() > 0) h.Get(d.kind())(d, x, alpha);
}

void Dropout(Device& d, const TensorView& x, const TensorView& seeds, const DropoutParams& params) {
  static const OpHandle<DropoutFn> h("elementwise.dropout");
  internal::ExpectFloat(x, h.name(), "x");
  internal::Expect(seeds.dtype == DType::kI32 && seeds.ndim == 1, h.name(), "seeds must be (B) I32");
  internal::Expect(seeds.shape[0] > 0 && x.numel() % seeds.shape[0] == 0, h.name(),
                   "x's numel is not a multiple of the seeds' count");
  internal::Expect(params.p >= 0.0f && params.p < 1.0f, h.name(), "p must be in [0, 1)");
  if (x.numel() > 0 && params.p > 0.0f) h.Get(d.kind())(d, x, seeds, params);
}

}  // namespace anvil::kernels
