#include "kernels/ops/diffusion_ops.h"

#include "kernels/op_registry.h"
#include "kernels/ops/check_views.h"

namespace anvil::kernels {

using internal::Expect;
using internal::ExpectF32;
using internal::ExpectFloat;

void SiluForward(Device& d, const TensorView& out, const TensorView& x) {
  static const OpHandle<SiluForwardFn> h("activation.silu_forward");
  ExpectFloat(out, h.name(), "out");
  ExpectFloat(x, h.name(), "x");
  Expect(out.numel() == x.numel(), h.name(), "numel differs");
  if (x.numel() > 0) h.Get(d.kind())(d, out, x);
}

void SiluBackward(Device& d, const TensorView& dx, const TensorView& x, const TensorView& dout) {
  static const OpHandle<SiluBackwardFn> h("activation.silu_backward");
  for (const TensorView* v : {&dx, &x, &dout}) ExpectFloat(*v, h.name(), "operand");
  Expect(dx.numel() == x.numel() && x.numel() == dout.numel(), h.name(), "numel differs");
  if (x.numel() > 0) h.Get(d.kind())(d, dx, x, dout);
}

void MseLossForward(Device& d, const TensorView& loss, const TensorView& pred,
                    const TensorView& target) {
  static const OpHandle<MseLossForwardFn> h("loss.mse_forward");
  ExpectF32(loss, h.name(), "loss must be F32");
  Expect(loss.numel() == 1, h.name(), "loss must hold one element");
  ExpectFloat(pred, h.name(), "pred");
  ExpectFloat(target, h.name(), "target");
  Expect(pred.numel() == target.numel(), h.name(), "pred and target differ in numel");
  Expect(pred.numel() > 0, h.name(), "the mean of no elements is undefined");
  h.Get(d.kind())(d, loss, pred, target);
}

void MseLossBackward(Device& d, const TensorView& dpred, const TensorView& pred,
                     const TensorView& target, float dloss) {
  static const OpHandle<MseLossBackwardFn> h("loss.mse_backward");
  for (const TensorView* v : {&dpred, &pred, &target}) ExpectFloat(*v, h.name(), "operand");
  Expect(dpred.numel() == pred.numel() && pred.numel() == target.numel(), h.name(),
         "numel differs");
  if (pred.numel() > 0) h.Get(d.kind())(d, dpred, pred, target, dloss);
}

void TimestepEmbedding(Device& d, const TensorView& out, const TensorView& t,
                       const TimestepEmbeddingParams& p) {
  static const OpHandle<TimestepEmbeddingFn> h("embedding.timestep_embedding");
  ExpectFloat(out, h.name(), "out");
  Expect(t.present() && (t.dtype == DType::kI32 || t.dtype == DType::kF32) && t.contiguous(),
         h.name(), "t must be contiguous I32 or F32");
  Expect(out.ndim == 2 && t.numel() == out.dim(0), h.name(), "out must be (B,dim), t (B)");
  const int64_t half = out.dim(1) / 2;
  Expect(half == 0 || static_cast<float>(half) != p.downscale_freq_shift, h.name(),
         "dim/2 must differ from downscale_freq_shift");
  Expect(p.max_period > 0.0f, h.name(), "max_period must be > 0");
  if (out.numel() > 0) h.Get(d.kind())(d, out, t, p);
}

}  // namespace anvil::kernels
