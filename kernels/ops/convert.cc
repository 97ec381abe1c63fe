#include "kernels/ops/convert.h"

#include "kernels/op_registry.h"
#include "kernels/ops/check_views.h"

namespace anvil::kernels {

void Convert(Device& d, const TensorView& dst, const TensorView& src) {
  static const OpHandle<ConvertFn> h("convert.convert");
  internal::Expect(dst.numel() == src.numel(), h.name(), "dst and src differ in numel");
  internal::Expect(dst.contiguous() && src.contiguous(), h.name(), "views must be contiguous");
  if (dst.numel() == 0) return;
  h.Get(d.kind())(d, dst, src);
}

}  // namespace anvil::kernels
