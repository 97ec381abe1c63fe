#include "kernels/ops/linear.h"

#include "kernels/op_registry.h"
#include "kernels/ops/check_views.h"

namespace anvil::kernels {

void LinearForward(Device& d, const TensorView& out, const TensorView& x, const TensorView& weight,
                   const TensorView& bias, const LinearParams& p) {
  static const OpHandle<LinearForwardFn> h("linear.forward");
  internal::ExpectFloat(out, h.name(), "out");
  internal::ExpectFloat(x, h.name(), "x");
  internal::ExpectFloat(weight, h.name(), "weight");
  internal::Expect(x.dtype == weight.dtype, h.name(), "x and weight must share a dtype");
  internal::Expect(!p.accumulate || out.dtype == DType::kF32, h.name(), "accumulate needs F32 out");
  const int64_t N = x.rows(), C = x.cols(), OC = weight.rows();
  internal::Expect(weight.cols() == C && out.numel() == N * OC &&
                       (!bias.present() || bias.numel() == OC),
                   h.name(), "shapes disagree");
  if (N > 0 && OC > 0) h.Get(d.kind())(d, out, x, weight, bias, p);
}

void LinearBackward(Device& d, const TensorView& dx, const TensorView& dweight,
                    const TensorView& dbias, const TensorView& dout, const TensorView& x,
                    const TensorView& weight, const LinearBackwardParams& p) {
  static const OpHandle<LinearBackwardFn> h("linear.backward");
  internal::ExpectFloat(dout, h.name(), "dout");
  internal::Expect(dout.dtype == x.dtype && x.dtype == weight.dtype, h.name(),
                   "dout, x and weight must share a dtype");
  internal::Expect(!dx.present() || (internal::IsFloat(dx) && dx.contiguous()), h.name(), "dx");
  internal::Expect(!dx.present() || !p.accumulate_dx || dx.dtype == DType::kF32, h.name(),
                   "accumulating dx needs F32");
  internal::Expect(!dweight.present() || dweight.dtype == DType::kF32, h.name(),
                   "dweight must be F32");
  internal::Expect(!dbias.present() || dbias.dtype == DType::kF32, h.name(), "dbias must be F32");
  const int64_t N = x.rows(), C = x.cols(), OC = weight.rows();
  internal::Expect(dout.numel() == N * OC && (!dx.present() || dx.numel() == N * C) &&
                       (!dweight.present() || dweight.numel() == OC * C) &&
                       (!dbias.present() || dbias.numel() == OC),
                   h.name(), "shapes disagree");
  if (N > 0 && OC > 0) h.Get(d.kind())(d, dx, dweight, dbias, dout, x, weight, p);
}

}  // namespace anvil::kernels
