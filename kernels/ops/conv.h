// conv: 2-D convolution over NHWC images, PyTorch weights.
//
// x (B,H,W,C) row-major with C contiguous (NHWC); weight (OC,C,KH,KW) as
// torch.nn.Conv2d stores it; bias (OC); out (B,OH,OW,OC) NHWC with
// OH = (H + 2*pad_h - KH) / stride_h + 1 (likewise OW): symmetric zero
// padding, any stride and kernel size, no dilation or groups.
//
// Dtypes: x F32|BF16 is the compute dtype (bf16 products accumulate in
// fp32); weight and bias F32|BF16 (converted to x's dtype on the fly); out
// F32|BF16. Backward: dout in x's dtype;
//   dx (B,H,W,C) F32|BF16 += (or = when !accumulate_dx) conv_transpose(dout, W)
//   dweight (OC,C,KH,KW) F32 += x (*) dout
//   dbias (OC) F32 += sum over (B,OH,OW) of dout
// Any gradient may be absent (skipped).
#pragma once

#include "kernels/device.h"
#include "kernels/tensor.h"

namespace anvil::kernels {

struct Conv2dParams {
  int stride_h = 1, stride_w = 1;
  int pad_h = 0, pad_w = 0;
  bool accumulate_dx = true;  // backward only; false: dx is overwritten
};
// Square kernels' usual case: stride s, padding p on both axes.
inline Conv2dParams Conv2dSquare(int stride, int pad) {
  return Conv2dParams{.stride_h = stride, .stride_w = stride, .pad_h = pad, .pad_w = pad};
}
inline int64_t Conv2dOutSize(int64_t in, int64_t k, int stride, int pad) {
  return (in + 2 * pad - k) / stride + 1;
}

using Conv2dForwardFn = void(Device&, const TensorView& out, const TensorView& x,
                             const TensorView& weight, const TensorView& bias,
                             const Conv2dParams& p);
void Conv2dForward(Device& d, const TensorView& out, const TensorView& x, const TensorView& weight,
                   const TensorView& bias, const Conv2dParams& p);

using Conv2dBackwardFn = void(Device&, const TensorView& dx, const TensorView& dweight,
                              const TensorView& dbias, const TensorView& dout, const TensorView& x,
                              const TensorView& weight, const Conv2dParams& p);
void Conv2dBackward(Device& d, const TensorView& dx, const TensorView& dweight,
                    const TensorView& dbias, const TensorView& dout, const TensorView& x,
                    const TensorView& weight, const Conv2dParams& p);

}  // namespace anvil::kernels
