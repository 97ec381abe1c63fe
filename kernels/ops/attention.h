// attention: scaled dot-product attention, flash style (online softmax in
// tiles; nothing of size T x T is kept; backward recomputes the
// probabilities from q, k and the saved row log-sum-exp).
//
// q, out (B,T,NH,HS); k, v (B,T,NKV,HS) with NH % NKV == 0 (grouped-query:
// query head h reads kv head h / (NH/NKV)). 4-D strided views whose last
// dimension is contiguous, so packed qkv (B,T,3C) is three views of one
// buffer. All four share a dtype, F32 or BF16; lse (B,NH,T) F32. Backward
// accumulates into dq, dk, dv (same shapes and dtype as q, k, v).
#pragma once

#include "kernels/device.h"
#include "kernels/tensor.h"

namespace anvil::kernels {

struct AttentionParams {
  bool causal = true;
  float scale = 0.0f;  // 0: 1/sqrt(HS)
};

using AttentionForwardFn = void(Device&, const TensorView& out, const TensorView& lse,
                                const TensorView& q, const TensorView& k, const TensorView& v,
                                const AttentionParams& p);
void AttentionForward(Device& d, const TensorView& out, const TensorView& lse, const TensorView& q,
                      const TensorView& k, const TensorView& v, const AttentionParams& p = {});

using AttentionBackwardFn = void(Device&, const TensorView& dq, const TensorView& dk,
                                 const TensorView& dv, const TensorView& dout,
                                 const TensorView& q, const TensorView& k, const TensorView& v,
                                 const TensorView& out, const TensorView& lse,
                                 const AttentionParams& p);
void AttentionBackward(Device& d, const TensorView& dq, const TensorView& dk, const TensorView& dv,
                       const TensorView& dout, const TensorView& q, const TensorView& k,
                       const TensorView& v, const TensorView& out, const TensorView& lse,
                       const AttentionParams& p = {});

// The packed-qkv views of a (B,T,3C) buffer: q, k, v (B,T,NH,C/NH).
struct QkvViews {
  TensorView q, k, v;
};
QkvViews PackedQkv(void* qkv, DType dtype, int64_t B, int64_t T, int64_t C, int64_t NH);

}  // namespace anvil::kernels
