// CPU implementation of the attention family: flash attention
// (flash_attention.cc) over strided views, F32 and BF16.
#include "kernels/cpu/flash_attention.h"
#include "kernels/cpu/register_ops.h"
#include "kernels/cpu/typed.h"
#include "kernels/op_registry.h"
#include "kernels/ops/attention.h"

namespace anvil::kernels::cpu {
namespace {

HeadsView Heads(const TensorView& v) {
  return HeadsView{v.data, v.stride[0], v.stride[1], v.stride[2]};
}

AttentionDims Dims(const TensorView& q, const TensorView& k, const AttentionParams& p) {
  AttentionDims d;
  d.B = static_cast<int>(q.shape[0]);
  d.T = static_cast<int>(q.shape[1]);
  d.NH = static_cast<int>(q.shape[2]);
  d.NKV = static_cast<int>(k.shape[2]);
  d.HS = static_cast<int>(q.shape[3]);
  d.causal = p.causal;
  d.scale = p.scale;
  return d;
}

void AttentionForwardCpu(Device& d, const TensorView& out, const TensorView& lse,
                         const TensorView& q, const TensorView& k, const TensorView& v,
                         const AttentionParams& p) {
  FlashAttentionForward(Threads(d), Dims(q, k, p), q.dtype, Heads(out), Heads(q), Heads(k),
                        Heads(v), lse.as<float>());
}

void AttentionBackwardCpu(Device& d, const TensorView& dq, const TensorView& dk,
                          const TensorView& dv, const TensorView& dout, const TensorView& q,
                          const TensorView& k, const TensorView& v, const TensorView& out,
                          const TensorView& lse, const AttentionParams& p) {
  FlashAttentionBackward(Threads(d), Dims(q, k, p), q.dtype, Heads(dq), Heads(dk), Heads(dv),
                         Heads(dout), Heads(q), Heads(k), Heads(v), Heads(out), lse.as<float>());
}

}  // namespace

void RegisterAttentionOps() {
  constexpr DeviceKind k = DeviceKind::kCpu;
  RegisterOp<AttentionForwardFn>(k, "attention.forward", &AttentionForwardCpu,
                                 {DType::kF32, DType::kBF16});
  RegisterOp<AttentionBackwardFn>(k, "attention.backward", &AttentionBackwardCpu,
                                  {DType::kF32, DType::kBF16});
}

}  // namespace anvil::kernels::cpu
