// loss: fused softmax + cross-entropy over V classes.
//
// logits (N,V) F32|BF16 -> probs (N,V) F32 and losses (N) F32 =
// -log probs[target]; targets (N) I32, < 0 ignored (loss 0, no gradient).
// Backward: dlogits (N,V) F32|BF16 += (probs - onehot(target)) * dloss.
#pragma once

#include "kernels/device.h"
#include "kernels/tensor.h"

namespace anvil::kernels {

using SoftmaxXentForwardFn = void(Device&, const TensorView& losses, const TensorView& probs,
                                  const TensorView& logits, const TensorView& targets);
void SoftmaxCrossEntropyForward(Device& d, const TensorView& losses, const TensorView& probs,
                                const TensorView& logits, const TensorView& targets);

using SoftmaxXentBackwardFn = void(Device&, const TensorView& dlogits, const TensorView& probs,
                                   const TensorView& targets, float dloss);
void SoftmaxCrossEntropyBackward(Device& d, const TensorView& dlogits, const TensorView& probs,
                                 const TensorView& targets, float dloss);

}  // namespace anvil::kernels
