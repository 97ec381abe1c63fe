// CPU implementations of the embedding and loss families over the fp32
// kernels (encoder.cc, softmax_xent.cc); BF16 operands are widened first.
// Rotary embedding (rope.cc) works on typed rows directly.
#include "kernels/cpu/register_ops.h"
#include "kernels/cpu/typed.h"
#include "kernels/cpu/typed_ops.h"
#include "kernels/op_registry.h"
#include "kernels/ops/embedding.h"
#include "kernels/ops/loss.h"

namespace anvil::kernels::cpu {
namespace {

void EmbeddingForwardCpu(Device& d, const TensorView& out, const TensorView& ids,
                         const TensorView& table, const TensorView& pos) {
  const int C = static_cast<int>(table.cols());
  const int B = pos.present() ? static_cast<int>(ids.shape[0]) : 1;
  const int T = pos.present() ? static_cast<int>(ids.shape[1]) : static_cast<int>(ids.numel());
  F32In ft(d, table), fp(d, pos);
  F32Out fo(d, out, false);
  EncoderForward(Threads(d), fo.get(), ids.as<int32_t>(), ft.get(), fp.get(), B, T, C);
  fo.Finish();
}

void EmbeddingBackwardCpu(Device& d, const TensorView& dtable, const TensorView& dpos,
                          const TensorView& dout, const TensorView& ids) {
  const int C = static_cast<int>(dtable.cols());
  const int B = dpos.present() ? static_cast<int>(ids.shape[0]) : 1;
  const int T = dpos.present() ? static_cast<int>(ids.shape[1]) : static_cast<int>(ids.numel());
  F32In fd(d, dout);
  EncoderBackward(Threads(d), dtable.as<float>(), dpos.present() ? dpos.as<float>() : nullptr,
                  fd.get(), ids.as<int32_t>(), B, T, C);
}

void XentForwardCpu(Device& d, const TensorView& losses, const TensorView& probs,
                    const TensorView& logits, const TensorView& targets) {
  F32In fl(d, logits);
  SoftmaxCrossEntropyForward(Threads(d), losses.as<float>(), probs.as<float>(), fl.get(),
                             targets.as<int32_t>(), static_cast<int>(logits.rows()),
                             static_cast<int>(logits.cols()));
}

void XentBackwardCpu(Device& d, const TensorView& dlogits, const TensorView& probs,
                     const TensorView& targets, float dloss) {
  F32Out fo(d, dlogits, true);
  SoftmaxCrossEntropyBackward(Threads(d), fo.get(), probs.as<float>(), targets.as<int32_t>(), dloss,
                              static_cast<int>(probs.rows()), static_cast<int>(probs.cols()));
  fo.Finish();
}

}  // namespace

void RegisterEmbeddingLossOps() {
  constexpr DeviceKind k = DeviceKind::kCpu;
  RegisterOp<EmbeddingForwardFn>(k, "embedding.forward", &EmbeddingForwardCpu,
                                 {DType::kF32, DType::kBF16});
  RegisterOp<EmbeddingBackwardFn>(k, "embedding.backward", &EmbeddingBackwardCpu,
                                  {DType::kF32, DType::kBF16});
  RegisterOp<RopeForwardFn>(k, "embedding.rope_forward", &RopeForwardCpu,
                            {DType::kF32, DType::kBF16});
  RegisterOp<RopeBackwardFn>(k, "embedding.rope_backward", &RopeBackwardCpu,
                             {DType::kF32, DType::kBF16});
  RegisterOp<SoftmaxXentForwardFn>(k, "loss.softmax_xent_forward", &XentForwardCpu,
                                   {DType::kF32, DType::kBF16});
  RegisterOp<SoftmaxXentBackwardFn>(k, "loss.softmax_xent_backward", &XentBackwardCpu,
                                    {DType::kF32, DType::kBF16});
}

}  // namespace anvil::kernels::cpu
