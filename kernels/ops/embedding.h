// embedding: row lookup, optionally plus a position table.
//
// out (B,T,C) F32|BF16 = table[ids[b,t]] (+ pos[t]); ids (B,T) I32 in
// [0, V) (the data path validates them); table (V,C), pos (maxT,C) F32|BF16,
// pos may be absent. Backward: dtable (V,C) += and dpos (maxT,C) += (F32)
// from dout (B,T,C) F32|BF16; dpos absent when pos was.
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

}  // namespace anvil::kernels
