// CPU implementation of the conv family on oneDNN (dnnl_conv.h).
//
// Each call first asks oneDNN for a convolution in the caller's dtypes
// (bf16 x bf16 with fp32 accumulation, bf16 or fp32 output, fused bias); only
// where this ISA has none (bf16 below AVX-512, fp32 compute with a bf16
// output) are the operands widened to fp32 through device scratch and the
// output rounded once. An accumulated dx goes through an fp32 temporary
// (oneDNN's backward-data primitive takes no sum post-op) and is added once.
#include "kernels/cpu/dnnl_conv.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/register_ops.h"
#include "kernels/cpu/typed.h"
#include "kernels/op_registry.h"
#include "kernels/ops/check_views.h"
#include "kernels/ops/conv.h"

namespace anvil::kernels::cpu {
namespace {

ConvGeometry Geometry(const TensorView& x, const TensorView& weight, const Conv2dParams& p) {
  return ConvGeometry{.B = x.dim(0),
                      .H = x.dim(1),
                      .W = x.dim(2),
                      .C = x.dim(3),
                      .OC = weight.dim(0),
                      .KH = weight.dim(2),
                      .KW = weight.dim(3),
                      .stride_h = p.stride_h,
                      .stride_w = p.stride_w,
                      .pad_h = p.pad_h,
                      .pad_w = p.pad_w};
}

[[noreturn]] void NoFp32Conv() {
  internal::ViewCheckFailed("conv", "oneDNN has no fp32 convolution for this shape");
}

void Conv2dForwardCpu(Device& d, const TensorView& out, const TensorView& x,
                      const TensorView& weight, const TensorView& bias, const Conv2dParams& p) {
  const ConvGeometry g = Geometry(x, weight, p);
  const int nt = Threads(d);
  ConvForwardArgs a{.x = x.data,
                    .x_type = x.dtype,
                    .w = weight.data,
                    .w_type = weight.dtype,
                    .bias = bias.data,
                    .bias_type = bias.dtype,
                    .y = out.data,
                    .y_type = out.dtype};
  if (DnnlConvForward(nt, g, a)) return;
  F32In fx(d, x), fw(d, weight), fb(d, bias);
  F32Out fo(d, out, false);
  a = ConvForwardArgs{.x = fx.get(), .w = fw.get(), .bias = fb.get(), .y = fo.get()};
  if (!DnnlConvForward(nt, g, a)) NoFp32Conv();
  fo.Finish();
}

void BackwardData(Device& d, const ConvGeometry& g, const TensorView& dx, const TensorView& dout,
                  const TensorView& weight, bool accumulate) {
  const int nt = Threads(d);
  if (!accumulate) {
    if (DnnlConvBackwardData(nt, g,
                             {.dx = dx.data,
                              .dx_type = dx.dtype,
                              .dy = dout.data,
                              .dy_type = dout.dtype,
                              .w = weight.data,
                              .w_type = weight.dtype})) {
      return;
    }
  } else {
    Scratch tmp(d, static_cast<size_t>(dx.numel()) * sizeof(float));
    if (DnnlConvBackwardData(nt, g,
                             {.dx = tmp.get(),
                              .dx_type = DType::kF32,
                              .dy = dout.data,
                              .dy_type = dout.dtype,
                              .w = weight.data,
                              .w_type = weight.dtype})) {
      AccumulateF32Into(nt, dx.data, dx.dtype, tmp.f32(), static_cast<size_t>(dx.numel()));
      return;
    }
  }
  F32In fd(d, dout), fw(d, weight);
  F32Out fo(d, dx, accumulate);
  // F32Out hands an F32 dx over as itself: accumulate then needs a temporary.
  const bool direct = !accumulate || dx.dtype != DType::kF32;
  Scratch tmp(d, direct ? 64 : static_cast<size_t>(dx.numel()) * sizeof(float));
  float* target = direct ? fo.get() : tmp.f32();
  if (!DnnlConvBackwardData(nt, g, {.dx = target, .dy = fd.get(), .w = fw.get()})) NoFp32Conv();
  if (!direct) AccumulateF32Into(nt, dx.data, dx.dtype, target, static_cast<size_t>(dx.numel()));
  fo.Finish();  // bf16 dx: buf holds the (zero-started) result, added or stored once
}

void Conv2dBackwardCpu(Device& d, const TensorView& dx, const TensorView& dweight,
                       const TensorView& dbias, const TensorView& dout, const TensorView& x,
                       const TensorView& weight, const Conv2dParams& p) {
  const ConvGeometry g = Geometry(x, weight, p);
  const int nt = Threads(d);
  if (dx.present()) BackwardData(d, g, dx, dout, weight, p.accumulate_dx);
  if (dweight.present()) {
    ConvBackwardWeightsArgs a{.dw = dweight.as<float>(),
                              .db = dbias.present() ? dbias.as<float>() : nullptr,
                              .x = x.data,
                              .dy = dout.data,
                              .type = x.dtype};
    if (!DnnlConvBackwardWeights(nt, g, a)) {
      F32In fx(d, x), fd(d, dout);
      a.x = fx.get();
      a.dy = fd.get();
      a.type = DType::kF32;
      if (!DnnlConvBackwardWeights(nt, g, a)) NoFp32Conv();
    }
  } else if (dbias.present()) {
    const int rows = static_cast<int>(dout.rows()), oc = static_cast<int>(dout.cols());
    if (dout.dtype == DType::kF32) {
      BiasGrad(nt, dbias.as<float>(), dout.as<float>(), rows, oc);
    } else {
      BiasGradBf16(nt, dbias.as<float>(), dout.as<uint16_t>(), rows, oc);
    }
  }
}

}  // namespace

void RegisterConvOps() {
  constexpr DeviceKind k = DeviceKind::kCpu;
  RegisterOp<Conv2dForwardFn>(k, "conv.conv2d_forward", &Conv2dForwardCpu,
                              {DType::kF32, DType::kBF16});
  RegisterOp<Conv2dBackwardFn>(k, "conv.conv2d_backward", &Conv2dBackwardCpu,
                               {DType::kF32, DType::kBF16});
}

}  // namespace anvil::kernels::cpu
