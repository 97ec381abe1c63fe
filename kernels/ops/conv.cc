#include "kernels/ops/conv.h"

#include "kernels/op_registry.h"
#include "kernels/ops/check_views.h"

namespace anvil::kernels {
namespace {

// out/dout (B,OH,OW,OC) against x (B,H,W,C), weight (OC,C,KH,KW), p.
void CheckShapes(const char* op, const TensorView& out, const TensorView& x,
                 const TensorView& weight, const Conv2dParams& p) {
  internal::Expect(x.ndim == 4 && weight.ndim == 4 && out.ndim == 4, op,
                   "x, out must be (B,H,W,C) and weight (OC,C,KH,KW)");
  internal::Expect(p.stride_h >= 1 && p.stride_w >= 1 && p.pad_h >= 0 && p.pad_w >= 0, op,
                   "stride must be >= 1 and padding >= 0");
  internal::Expect(weight.dim(1) == x.dim(3), op, "weight's input channels differ from x's C");
  const int64_t OH = Conv2dOutSize(x.dim(1), weight.dim(2), p.stride_h, p.pad_h);
  const int64_t OW = Conv2dOutSize(x.dim(2), weight.dim(3), p.stride_w, p.pad_w);
  internal::Expect(OH >= 1 && OW >= 1, op, "kernel larger than the padded input");
  internal::Expect(
      out.dim(0) == x.dim(0) && out.dim(1) == OH && out.dim(2) == OW && out.dim(3) == weight.dim(0),
      op, "out must be (B,OH,OW,OC)");
}

}  // namespace

void Conv2dForward(Device& d, const TensorView& out, const TensorView& x, const TensorView& weight,
                   const TensorView& bias, const Conv2dParams& p) {
  static const OpHandle<Conv2dForwardFn> h("conv.conv2d_forward");
  internal::ExpectFloat(out, h.name(), "out");
  internal::ExpectFloat(x, h.name(), "x");
  internal::ExpectFloat(weight, h.name(), "weight");
  if (bias.present()) internal::ExpectFloat(bias, h.name(), "bias");
  CheckShapes(h.name(), out, x, weight, p);
  internal::Expect(!bias.present() || bias.numel() == weight.dim(0), h.name(), "bias must be (OC)");
  if (out.numel() > 0 && x.numel() > 0) h.Get(d.kind())(d, out, x, weight, bias, p);
}

void Conv2dBackward(Device& d, const TensorView& dx, const TensorView& dweight,
                    const TensorView& dbias, const TensorView& dout, const TensorView& x,
                    const TensorView& weight, const Conv2dParams& p) {
  static const OpHandle<Conv2dBackwardFn> h("conv.conv2d_backward");
  internal::ExpectFloat(dout, h.name(), "dout");
  internal::ExpectFloat(x, h.name(), "x");
  internal::ExpectFloat(weight, h.name(), "weight");
  internal::Expect(dout.dtype == x.dtype, h.name(), "dout must have x's dtype");
  CheckShapes(h.name(), dout, x, weight, p);
  if (dx.present()) {
    internal::ExpectFloat(dx, h.name(), "dx");
    internal::Expect(dx.ndim == 4 && dx.numel() == x.numel(), h.name(), "dx must be x's shape");
  }
  if (dweight.present()) {
    internal::ExpectF32(dweight, h.name(), "dweight must be F32");
    internal::Expect(dweight.numel() == weight.numel(), h.name(), "dweight must be weight's shape");
  }
  if (dbias.present()) {
    internal::ExpectF32(dbias, h.name(), "dbias must be F32");
    internal::Expect(dbias.numel() == weight.dim(0), h.name(), "dbias must be (OC)");
  }
  if (dout.numel() > 0 && x.numel() > 0) h.Get(d.kind())(d, dx, dweight, dbias, dout, x, weight, p);
}

}  // namespace anvil::kernels
