// embedding: row lookup, optionally plus a position table.
//
// out (B,T,C) F32|BF16 = table[ids[b,t]] (+ pos[t]); ids (B,T) I32 in
// [0, V) (the data path validates them); table (V,C), pos (maxT,C) F32|BF16,
// pos may be absent. Backward: dtable (V,C) += and dpos (maxT,C) += (F32)
// from dout (B,T,C) F32|BF16; dpos absent when pos was.
//
// Rotary position embedding (RoPE, Hugging Face Llama's convention, so HF
// weights load unchanged): x (B,T,NH,hd) F32|BF16, a 4-D strided view with
// the last dim contiguous and hd even (q or k inside a packed qkv buffer),
// rotated IN PLACE. Position t = 0..T-1; pairs (i, i+hd/2) for i < hd/2
// (rotate_half) rotate by angle t * theta^(-2i/hd). Backward applies the
// inverse rotation in place to the gradient: on entry dx holds d/d(rotated
// x), on return d/d(x) (there is nothing to accumulate into).
#pragma once

#include "kernels/device.h"
#include "kernels/tensor.h"

namespace anvil::kernels {

using EmbeddingForwardFn = void(Device&, const TensorView& out, const TensorView& ids,
                                const TensorView& table, const TensorView& pos);
void EmbeddingForward(Device& d, const TensorView& out, const TensorView& ids,
                      const TensorView& table, const TensorView& pos);

using EmbeddingBackwardFn = void(Device&, const TensorView& dtable, const TensorView& dpos,
                                 const TensorView& dout, const TensorView& ids);
void EmbeddingBackward(Device& d, const TensorView& dtable, const TensorView& dpos,
                       const TensorView& dout, const TensorView& ids);

struct RopeParams {
  float theta = 10000.0f;
};

using RopeForwardFn = void(Device&, const TensorView& x, const RopeParams& p);
void RopeForward(Device& d, const TensorView& x, const RopeParams& p = {});
using RopeBackwardFn = void(Device&, const TensorView& dx, const RopeParams& p);
void RopeBackward(Device& d, const TensorView& dx, const RopeParams& p = {});

}  // namespace anvil::kernels
