// CUDA implementations of the elementwise and activation families: add,
// accumulate, scale, GELU (tanh), SiLU and SwiGLU, over any mix of
// F32/BF16 operands (kernels/ops/elementwise.h, activation.h,
// diffusion_ops.h). All-F32 add/accumulate/scale/GELU run the original fp32
// kernels (residual.cu, gelu.cu); every other mix runs the typed kernels
// here: operands widened to fp32, arithmetic as the CPU's, outputs rounded
// once. Backward ops accumulate.
#include "kernels/cuda/family_util.cuh"
#include "kernels/op_registry.h"
#include "kernels/ops/activation.h"
#include "kernels/ops/diffusion_ops.h"
#include "kernels/ops/elementwise.h"

namespace anvil::kernels::cuda {
namespace {

constexpr float kGeluS = 0.7978845608028654f;  // sqrt(2/pi)
constexpr float kGeluC = 0.044715f;
constexpr float kMaxSigmoidArg = 80.0f;  // SwiGLU caps exp(-g) as swiglu.cc does

__device__ __forceinline__ float Sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ float CappedSigmoid(float g) {
  const float a = -g;
  return 1.0f / (1.0f + expf(a > kMaxSigmoidArg ? kMaxSigmoidArg : a));
}

struct AddF {
  TArg out, a, b;
  __device__ void operator()(int64_t i) const { out.st(i, a.ld(i) + b.ld(i)); }
};
struct AccumulateF {
  TArg dst, src;
  __device__ void operator()(int64_t i) const { dst.add(i, src.ld(i)); }
};
struct ScaleF {
  TArg x;
  float alpha;
  __device__ void operator()(int64_t i) const { x.st(i, x.ld(i) * alpha); }
};
struct GeluForwardF {
  TArg out, x;
  __device__ void operator()(int64_t i) const {
    const float v = x.ld(i);
    out.st(i, v / (1.0f + expf(-2.0f * kGeluS * (v + kGeluC * v * v * v))));
  }
};
struct GeluBackwardF {
  TArg dx, x, dout;
  __device__ void operator()(int64_t i) const {
    const float v = x.ld(i);
    const float e = expf(-2.0f * kGeluS * (v + kGeluC * v * v * v));
    const float s = 1.0f / (1.0f + e);
    const float du = kGeluS * (1.0f + 3.0f * kGeluC * v * v);
    dx.add(i, dout.ld(i) * (s + 2.0f * v * s * (e * s) * du));
  }
};
struct SiluForwardF {
  TArg out, x;
  __device__ void operator()(int64_t i) const {
    const float v = x.ld(i);
    out.st(i, v * Sigmoid(v));
  }
};
struct SiluBackwardF {
  TArg dx, x, dout;
  __device__ void operator()(int64_t i) const {
    const float v = x.ld(i), s = Sigmoid(v);
    dx.add(i, dout.ld(i) * s * (1.0f + v * (1.0f - s)));
  }
};
// (N,F) views with row strides (last dim contiguous).
struct SwiGluForwardF {
  TArg out, gate, up;
  int64_t F, os, gs, us;
  __device__ void operator()(int64_t i) const {
    const int64_t r = i / F, c = i % F;
    const float g = gate.ld(r * gs + c);
    out.st(r * os + c, g * CappedSigmoid(g) * up.ld(r * us + c));
  }
};
struct SwiGluBackwardF {
  TArg dgate, dup, gate, up, dout;
  int64_t F, dgs, dus, gs, us, ds;
  __device__ void operator()(int64_t i) const {
    const int64_t r = i / F, c = i % F;
    const float g = gate.ld(r * gs + c), s = CappedSigmoid(g), dy = dout.ld(r * ds + c);
    dgate.add(r * dgs + c, dy * up.ld(r * us + c) * s * (1.0f + g * (1.0f - s)));
    dup.add(r * dus + c, dy * g * s);
  }
};

void AddCuda(Device& d, const TensorView& out, const TensorView& a, const TensorView& b) {
  const Ctx& ctx = CtxOf(d);
  if (AllF32({&out, &a, &b})) {
    ResidualForward(ctx, out.as<float>(), a.as<float>(), b.as<float>(),
                    static_cast<size_t>(out.numel()));
    return;
  }
  LaunchMap(ctx, out.numel(), AddF{Arg(out), Arg(a), Arg(b)});
}
void AccumulateCuda(Device& d, const TensorView& dst, const TensorView& src) {
  const Ctx& ctx = CtxOf(d);
  if (AllF32({&dst, &src})) {
    Accumulate(ctx, dst.as<float>(), src.as<float>(), static_cast<size_t>(dst.numel()));
    return;
  }
  LaunchMap(ctx, dst.numel(), AccumulateF{Arg(dst), Arg(src)});
}
void ScaleCuda(Device& d, const TensorView& x, float alpha) {
  const Ctx& ctx = CtxOf(d);
  if (x.dtype == DType::kF32) {
    Scale(ctx, x.as<float>(), alpha, static_cast<size_t>(x.numel()));
    return;
  }
  LaunchMap(ctx, x.numel(), ScaleF{Arg(x), alpha});
}

void GeluForwardCuda(Device& d, const TensorView& out, const TensorView& x) {
  const Ctx& ctx = CtxOf(d);
  if (AllF32({&out, &x})) {
    GeluForward(ctx, out.as<float>(), x.as<float>(), static_cast<size_t>(x.numel()));
    return;
  }
  LaunchMap(ctx, x.numel(), GeluForwardF{Arg(out), Arg(x)});
}
void GeluBackwardCuda(Device& d, const TensorView& dx, const TensorView& x,
                      const TensorView& dout) {
  const Ctx& ctx = CtxOf(d);
  if (AllF32({&dx, &x, &dout})) {
    GeluBackward(ctx, dx.as<float>(), x.as<float>(), dout.as<float>(),
                 static_cast<size_t>(x.numel()));
    return;
  }
  LaunchMap(ctx, x.numel(), GeluBackwardF{Arg(dx), Arg(x), Arg(dout)});
}

void SiluForwardCuda(Device& d, const TensorView& out, const TensorView& x) {
  LaunchMap(CtxOf(d), x.numel(), SiluForwardF{Arg(out), Arg(x)});
}
void SiluBackwardCuda(Device& d, const TensorView& dx, const TensorView& x,
                      const TensorView& dout) {
  LaunchMap(CtxOf(d), x.numel(), SiluBackwardF{Arg(dx), Arg(x), Arg(dout)});
}

void SwiGluForwardCuda(Device& d, const TensorView& out, const TensorView& gate,
                       const TensorView& up) {
  const int64_t F = gate.cols();
  LaunchMap(CtxOf(d), gate.rows() * F,
            SwiGluForwardF{Arg(out), Arg(gate), Arg(up), F, RowStride(out), RowStride(gate),
                           RowStride(up)});
}
void SwiGluBackwardCuda(Device& d, const TensorView& dgate, const TensorView& dup,
                        const TensorView& gate, const TensorView& up, const TensorView& dout) {
  const int64_t F = gate.cols();
  LaunchMap(
      CtxOf(d), gate.rows() * F,
      SwiGluBackwardF{Arg(dgate), Arg(dup), Arg(gate), Arg(up), Arg(dout), F, RowStride(dgate),
                      RowStride(dup), RowStride(gate), RowStride(up), RowStride(dout)});
}

}  // namespace

void RegisterElementwiseCudaOps() {
  constexpr DeviceKind k = DeviceKind::kCuda;
  const auto both = {DType::kF32, DType::kBF16};
  RegisterOp<AddFn>(k, "elementwise.add", &AddCuda, both);
  RegisterOp<AccumulateFn>(k, "elementwise.accumulate", &AccumulateCuda, both);
  RegisterOp<ScaleFn>(k, "elementwise.scale", &ScaleCuda, both);
  RegisterOp<GeluForwardFn>(k, "activation.gelu_forward", &GeluForwardCuda, both);
  RegisterOp<GeluBackwardFn>(k, "activation.gelu_backward", &GeluBackwardCuda, both);
  RegisterOp<SiluForwardFn>(k, "activation.silu_forward", &SiluForwardCuda, both);
  RegisterOp<SiluBackwardFn>(k, "activation.silu_backward", &SiluBackwardCuda, both);
  RegisterOp<SwiGluForwardFn>(k, "activation.swiglu_forward", &SwiGluForwardCuda, both);
  RegisterOp<SwiGluBackwardFn>(k, "activation.swiglu_backward", &SwiGluBackwardCuda, both);
}

}  // namespace anvil::kernels::cuda
