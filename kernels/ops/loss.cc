#include "kernels/ops/loss.h"

#include "kernels/op_registry.h"
#include "kernels/ops/check_views.h"

namespace anvil::kernels {

void SoftmaxCrossEntropyForward(Device& d, const TensorView& losses, const TensorView& probs,
                                const TensorView& logits, const TensorView& targets) {
  static const OpHandle<SoftmaxXentForwardFn> h("loss.softmax_xent_forward");
  internal::ExpectFloat(logits, h.name(), "logits");
  internal::ExpectF32(probs, h.name(), "probs must be F32");
  internal::ExpectF32(losses, h.name(), "losses must be F32");
  internal::Expect(targets.dtype == DType::kI32, h.name(), "targets must be I32");
  const int64_t N = logits.rows();
  internal::Expect(probs.numel() == logits.numel() && losses.numel() == N && targets.numel() == N,
                   h.name(), "shapes disagree");
  if (N > 0) h.Get(d.kind())(d, losses, probs, logits, targets);
}

void SoftmaxCrossEntropyBackward(Device& d, const TensorView& dlogits, const TensorView& probs,
                                 const TensorView& targets, float dloss) {
  static const OpHandle<SoftmaxXentBackwardFn> h("loss.softmax_xent_backward");
  internal::ExpectFloat(dlogits, h.name(), "dlogits");
  internal::ExpectF32(probs, h.name(), "probs must be F32");
  internal::Expect(dlogits.numel() == probs.numel() && targets.numel() == probs.rows(), h.name(),
                   "shapes disagree");
  if (probs.numel() > 0) h.Get(d.kind())(d, dlogits, probs, targets, dloss);
}

}  // namespace anvil::kernels
