// CPU implementation of the norm family: LayerNorm and RMSNorm. LayerNorm's
// F32 views run the fp32 kernel (layernorm.cc) directly; BF16 views are
// widened to fp32 first, so statistics and normalisation are always fp32.
// RMSNorm (rmsnorm.cc) works on typed rows directly.
#include "kernels/cpu/register_ops.h"
#include "kernels/cpu/typed.h"
#include "kernels/cpu/typed_ops.h"
#include "kernels/op_registry.h"
#include "kernels/ops/norm.h"

namespace anvil::kernels::cpu {
namespace {

void LayerNormForwardCpu(Device& d, const TensorView& out, const TensorView& mean,
                         const TensorView& rstd, const TensorView& x, const TensorView& weight,
                         const TensorView& bias, const LayerNormParams& p) {
  const int N = static_cast<int>(x.rows()), C = static_cast<int>(x.cols());
  F32In fx(d, x), fw(d, weight), fb(d, bias);
  F32Out fo(d, out, false);
  Scratch zero_bias(d, bias.present() ? 64 : sizeof(float) * C);
  const float* b = fb.get();
  if (b == nullptr) {
    ParallelMemset(1, zero_bias.get(), 0, sizeof(float) * C);
    b = zero_bias.f32();
  }
  LayerNormForward(Threads(d), fo.get(), mean.as<float>(), rstd.as<float>(), fx.get(), fw.get(), b,
                   N, C, p.eps);
  fo.Finish();
}

void LayerNormBackwardCpu(Device& d, const TensorView& dx, const TensorView& dweight,
                          const TensorView& dbias, const TensorView& dout, const TensorView& x,
                          const TensorView& weight, const TensorView& mean, const TensorView& rstd,
                          const LayerNormParams& p) {
  (void)p;
  const int N = static_cast<int>(x.rows()), C = static_cast<int>(x.cols());
  F32In fx(d, x), fw(d, weight), fd(d, dout);
  F32Out fo(d, dx, true);
  Scratch db(d, dbias.present() ? 64 : sizeof(float) * C);
  float* dbp = dbias.present() ? dbias.as<float>() : db.f32();
  LayerNormBackward(Threads(d), fo.get(), dweight.as<float>(), dbp, fd.get(), fx.get(), fw.get(),
                    mean.as<float>(), rstd.as<float>(), N, C);
  fo.Finish();
}

}  // namespace

void RegisterNormOps() {
  constexpr DeviceKind k = DeviceKind::kCpu;
  RegisterOp<LayerNormForwardFn>(k, "norm.layernorm_forward", &LayerNormForwardCpu,
                                 {DType::kF32, DType::kBF16});
  RegisterOp<LayerNormBackwardFn>(k, "norm.layernorm_backward", &LayerNormBackwardCpu,
                                  {DType::kF32, DType::kBF16});
  RegisterOp<RmsNormForwardFn>(k, "norm.rmsnorm_forward", &RmsNormForwardCpu,
                               {DType::kF32, DType::kBF16});
  RegisterOp<RmsNormBackwardFn>(k, "norm.rmsnorm_backward", &RmsNormBackwardCpu,
                                {DType::kF32, DType::kBF16});
}

}  // namespace anvil::kernels::cpu
