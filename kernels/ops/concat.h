// concat: channel concatenation of NHWC activations (the UNet's skip
// connections), declared apart from image.h so branches editing that header
// do not collide; op names carry the image family ("image.concat_channels").
//
// out (R, Ca+Cb) = [a (R,Ca) | b (R,Cb)] row by row, where every view is
// read as (numel/C, C) with C its last dimension (so (B,H,W,C) images and
// (B,N,C) tokens alike). Views contiguous, F32|BF16 each (mixed allowed),
// values copied through fp32 (exact for bf16). Backward ACCUMULATES:
// da += dout[:, :Ca], db += dout[:, Ca:]; either may be absent.
#pragma once

#include "kernels/device.h"
#include "kernels/tensor.h"

namespace anvil::kernels {

using ConcatChannelsFn = void(Device&, const TensorView& out, const TensorView& a,
                              const TensorView& b);
void ConcatChannels(Device& d, const TensorView& out, const TensorView& a, const TensorView& b);

using ConcatChannelsBackwardFn = void(Device&, const TensorView& da, const TensorView& db,
                                      const TensorView& dout);
void ConcatChannelsBackward(Device& d, const TensorView& da, const TensorView& db,
                            const TensorView& dout);

}  // namespace anvil::kernels
