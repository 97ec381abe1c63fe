#include "kernels/ops/norm.h"

#include "kernels/op_registry.h"
#include "kernels/ops/check_views.h"

namespace anvil::kernels {

void LayerNormForward(Device& d, const TensorView& out, const TensorView& mean,
                      const TensorView& rstd, const TensorView& x, const TensorView& weight,
                      const TensorView& bias, const LayerNormParams& p) {
  static const OpHandle<LayerNormForwardFn> h("norm.layernorm_forward");
  internal::ExpectFloat(out, h.name(), "out");
  internal::ExpectFloat(x, h.name(), "x");
  internal::ExpectFloat(weight, h.name(), "weight");
  internal::ExpectF32(mean, h.name(), "mean must be F32");
  internal::ExpectF32(rstd, h.name(), "rstd must be F32");
  const int64_t N = x.rows(), C = x.cols();
  internal::Expect(out.numel() == N * C && weight.numel() == C && mean.numel() >= N &&
                       rstd.numel() >= N && (!bias.present() || bias.numel() == C),
                   h.name(), "shapes disagree");
  if (N > 0) h.Get(d.kind())(d, out, mean, rstd, x, weight, bias, p);
}

void LayerNormBackward(Device& d, const TensorView& dx, const TensorView& dweight,
                       const TensorView& dbias, const TensorView& dout, const TensorView& x,
                       const TensorView& weight, const TensorView& mean, const TensorView& rstd,
                       const LayerNormParams& p) {
  static const OpHandle<LayerNormBackwardFn> h("norm.layernorm_backward");
  internal::ExpectFloat(dx, h.name(), "dx");
  internal::ExpectFloat(dout, h.name(), "dout");
  internal::ExpectF32(dweight, h.name(), "dweight must be F32");
  internal::Expect(!dbias.present() || dbias.dtype == DType::kF32, h.name(), "dbias must be F32");
  const int64_t N = x.rows(), C = x.cols();
  internal::Expect(dx.numel() == N * C && dout.numel() == N * C && dweight.numel() == C,
                   h.name(), "shapes disagree");
  if (N > 0) h.Get(d.kind())(d, dx, dweight, dbias, dout, x, weight, mean, rstd, p);
}

void RmsNormForward(Device& d, const TensorView& out, const TensorView& rstd, const TensorView& x,
                    const TensorView& weight, const RmsNormParams& p) {
  static const OpHandle<RmsNormForwardFn> h("norm.rmsnorm_forward");
  internal::ExpectFloat(out, h.name(), "out");
  internal::ExpectFloat(x, h.name(), "x");
  internal::ExpectFloat(weight, h.name(), "weight");
  internal::ExpectF32(rstd, h.name(), "rstd must be F32");
  const int64_t N = x.rows(), C = x.cols();
  internal::Expect(out.numel() == N * C && weight.numel() == C && rstd.numel() >= N, h.name(),
                   "shapes disagree");
  internal::Expect(p.eps >= 0.0f, h.name(), "eps must be >= 0");
  if (N > 0) h.Get(d.kind())(d, out, rstd, x, weight, p);
}

void RmsNormBackward(Device& d, const TensorView& dx, const TensorView& dweight,
                     const TensorView& dout, const TensorView& x, const TensorView& weight,
                     const TensorView& rstd) {
  static const OpHandle<RmsNormBackwardFn> h("norm.rmsnorm_backward");
  internal::ExpectFloat(dx, h.name(), "dx");
  internal::ExpectFloat(dout, h.name(), "dout");
  internal::ExpectFloat(x, h.name(), "x");
  internal::ExpectFloat(weight, h.name(), "weight");
  internal::ExpectF32(dweight, h.name(), "dweight must be F32");
  internal::ExpectF32(rstd, h.name(), "rstd must be F32");
  const int64_t N = x.rows(), C = x.cols();
  internal::Expect(dx.numel() == N * C && dout.numel() == N * C && dweight.numel() == C &&
                       weight.numel() == C && rstd.numel() >= N,
                   h.name(), "shapes disagree");
  if (N > 0) h.Get(d.kind())(d, dx, dweight, dout, x, weight, rstd);
}

}  // namespace anvil::kernels
