// CPU ops implemented directly over typed views (F32 or BF16 storage, any
// mix, fp32 math: RMSNorm and SwiGLU widen rows (rows.h), RoPE converts
// element by element), registered by their family files:
// RMSNorm (rmsnorm.cc, family_norm.cc), rotary embedding (rope.cc,
// family_embedding_loss.cc), SwiGLU (swiglu.cc, family_basic.cc).
// Preconditions are checked by the family dispatchers (kernels/ops/*.cc).
#pragma once

#include "kernels/device.h"
#include "kernels/ops/activation.h"
#include "kernels/ops/embedding.h"
#include "kernels/ops/norm.h"
#include "kernels/tensor.h"

namespace anvil::kernels::cpu {

void RmsNormForwardCpu(Device& d, const TensorView& out, const TensorView& rstd,
                       const TensorView& x, const TensorView& weight, const RmsNormParams& p);
void RmsNormBackwardCpu(Device& d, const TensorView& dx, const TensorView& dweight,
                        const TensorView& dout, const TensorView& x, const TensorView& weight,
                        const TensorView& rstd);

void RopeForwardCpu(Device& d, const TensorView& x, const RopeParams& p);
void RopeBackwardCpu(Device& d, const TensorView& dx, const RopeParams& p);

void SwiGluForwardCpu(Device& d, const TensorView& out, const TensorView& gate,
                      const TensorView& up);
void SwiGluBackwardCpu(Device& d, const TensorView& dgate, const TensorView& dup,
                       const TensorView& gate, const TensorView& up, const TensorView& dout);

}  // namespace anvil::kernels::cpu
