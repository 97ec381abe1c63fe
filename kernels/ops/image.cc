#include "kernels/ops/image.h"

#include "kernels/op_registry.h"
#include "kernels/ops/check_views.h"

namespace anvil::kernels {
namespace {

using internal::Expect;
using internal::ExpectF32;
using internal::ExpectFloat;

// A (B,N,C) activation: contiguous F32|BF16 with at least 2 dimensions.
void ExpectActivation(const TensorView& v, const char* op, const char* name) {
  ExpectFloat(v, op, name);
  Expect(v.ndim >= 2, op, "activations must be (B,...,C)");
}
bool SameShape(const TensorView& a, const TensorView& b) {
  if (a.ndim != b.ndim) return false;
  for (int i = 0; i < a.ndim; ++i) {
    if (a.shape[i] != b.shape[i]) return false;
  }
  return true;
}
// A per-sample (B,C) vector: F32|BF16, 2-D, last dimension contiguous, rows
// at any stride >= C (a column block of a wider tensor).
void ExpectPerSample(const TensorView& v, int64_t B, int64_t C, const char* op, const char* name) {
  Expect(v.present(), op, name);
  Expect(internal::IsFloat(v), op, "operands must be F32 or BF16");
  Expect(v.ndim == 2 && v.shape[0] == B && v.shape[1] == C, op, "per-sample vectors must be (B,C)");
  Expect((v.stride[1] == 1 || C == 1) && (v.stride[0] >= C || B == 1), op,
         "per-sample vectors need a contiguous last dimension");
}

}  // namespace

void GroupNormForward(Device& d, const TensorView& out, const TensorView& mean,
                      const TensorView& rstd, const TensorView& x, const TensorView& weight,
                      const TensorView& bias, const GroupNormParams& p) {
  static const OpHandle<GroupNormForwardFn> h("image.groupnorm_forward");
  ExpectActivation(x, h.name(), "x");
  ExpectActivation(out, h.name(), "out");
  ExpectFloat(weight, h.name(), "weight");
  if (bias.present()) ExpectFloat(bias, h.name(), "bias");
  ExpectF32(mean, h.name(), "mean must be F32");
  ExpectF32(rstd, h.name(), "rstd must be F32");
  const int64_t B = x.dim(0), C = x.dim(-1);
  Expect(p.groups >= 1 && C % p.groups == 0, h.name(), "C must be a multiple of groups");
  Expect(p.eps >= 0.0f, h.name(), "eps must be >= 0");
  Expect(SameShape(out, x) && weight.numel() == C && (!bias.present() || bias.numel() == C) &&
             mean.numel() == B * p.groups && rstd.numel() == B * p.groups,
         h.name(), "shapes disagree");
  if (x.numel() > 0) h.Get(d.kind())(d, out, mean, rstd, x, weight, bias, p);
}

void GroupNormBackward(Device& d, const TensorView& dx, const TensorView& dweight,
                       const TensorView& dbias, const TensorView& dout, const TensorView& x,
                       const TensorView& weight, const TensorView& mean, const TensorView& rstd,
                       const GroupNormParams& p) {
  static const OpHandle<GroupNormBackwardFn> h("image.groupnorm_backward");
  ExpectActivation(x, h.name(), "x");
  ExpectActivation(dout, h.name(), "dout");
  ExpectFloat(weight, h.name(), "weight");
  ExpectF32(mean, h.name(), "mean must be F32");
  ExpectF32(rstd, h.name(), "rstd must be F32");
  const int64_t B = x.dim(0), C = x.dim(-1);
  Expect(p.groups >= 1 && C % p.groups == 0, h.name(), "C must be a multiple of groups");
  Expect(SameShape(dout, x) && weight.numel() == C && mean.numel() == B * p.groups &&
             rstd.numel() == B * p.groups,
         h.name(), "shapes disagree");
  if (dx.present()) {
    ExpectActivation(dx, h.name(), "dx");
    Expect(SameShape(dx, x), h.name(), "dx must be x's shape");
  }
  for (const TensorView* g : {&dweight, &dbias}) {
    if (!g->present()) continue;
    ExpectF32(*g, h.name(), "dweight, dbias must be F32");
    Expect(g->numel() == C, h.name(), "dweight, dbias must be (C)");
  }
  if (x.numel() > 0) h.Get(d.kind())(d, dx, dweight, dbias, dout, x, weight, mean, rstd, p);
}

void Upsample2xForward(Device& d, const TensorView& out, const TensorView& x) {
  static const OpHandle<Upsample2xForwardFn> h("image.upsample2x_forward");
  ExpectFloat(out, h.name(), "out");
  ExpectFloat(x, h.name(), "x");
  Expect(x.ndim == 4 && out.ndim == 4 && out.dim(0) == x.dim(0) && out.dim(1) == 2 * x.dim(1) &&
             out.dim(2) == 2 * x.dim(2) && out.dim(3) == x.dim(3),
         h.name(), "x must be (B,H,W,C) and out (B,2H,2W,C)");
  if (x.numel() > 0) h.Get(d.kind())(d, out, x);
}

void Upsample2xBackward(Device& d, const TensorView& dx, const TensorView& dout) {
  static const OpHandle<Upsample2xBackwardFn> h("image.upsample2x_backward");
  ExpectFloat(dx, h.name(), "dx");
  ExpectFloat(dout, h.name(), "dout");
  Expect(dx.ndim == 4 && dout.ndim == 4 && dout.dim(0) == dx.dim(0) &&
             dout.dim(1) == 2 * dx.dim(1) && dout.dim(2) == 2 * dx.dim(2) &&
             dout.dim(3) == dx.dim(3),
         h.name(), "dx must be (B,H,W,C) and dout (B,2H,2W,C)");
  if (dx.numel() > 0) h.Get(d.kind())(d, dx, dout);
}

void AddChannelBias(Device& d, const TensorView& x, const TensorView& bias) {
  static const OpHandle<AddChannelBiasFn> h("image.add_channel_bias");
  ExpectActivation(x, h.name(), "x");
  ExpectPerSample(bias, x.dim(0), x.dim(-1), h.name(), "bias");
  if (x.numel() > 0) h.Get(d.kind())(d, x, bias);
}

void AddChannelBiasBackward(Device& d, const TensorView& dbias, const TensorView& dout) {
  static const OpHandle<AddChannelBiasBackwardFn> h("image.add_channel_bias_backward");
  ExpectActivation(dout, h.name(), "dout");
  ExpectPerSample(dbias, dout.dim(0), dout.dim(-1), h.name(), "dbias");
  if (dout.numel() > 0) h.Get(d.kind())(d, dbias, dout);
}

void ModulateForward(Device& d, const TensorView& out, const TensorView& x, const TensorView& scale,
                     const TensorView& shift) {
  static const OpHandle<ModulateForwardFn> h("image.modulate_forward");
  ExpectActivation(x, h.name(), "x");
  ExpectActivation(out, h.name(), "out");
  Expect(SameShape(out, x), h.name(), "out must be x's shape");
  ExpectPerSample(scale, x.dim(0), x.dim(-1), h.name(), "scale");
  ExpectPerSample(shift, x.dim(0), x.dim(-1), h.name(), "shift");
  if (x.numel() > 0) h.Get(d.kind())(d, out, x, scale, shift);
}

void ModulateBackward(Device& d, const TensorView& dx, const TensorView& dscale,
                      const TensorView& dshift, const TensorView& dout, const TensorView& x,
                      const TensorView& scale) {
  static const OpHandle<ModulateBackwardFn> h("image.modulate_backward");
  ExpectActivation(x, h.name(), "x");
  ExpectActivation(dout, h.name(), "dout");
  Expect(SameShape(dout, x), h.name(), "dout must be x's shape");
  const int64_t B = x.dim(0), C = x.dim(-1);
  ExpectPerSample(scale, B, C, h.name(), "scale");
  if (dx.present()) {
    ExpectActivation(dx, h.name(), "dx");
    Expect(SameShape(dx, x), h.name(), "dx must be x's shape");
  }
  if (dscale.present()) ExpectPerSample(dscale, B, C, h.name(), "dscale");
  if (dshift.present()) ExpectPerSample(dshift, B, C, h.name(), "dshift");
  if (x.numel() > 0) h.Get(d.kind())(d, dx, dscale, dshift, dout, x, scale);
}

void GatedResidualForward(Device& d, const TensorView& out, const TensorView& y,
                          const TensorView& gate) {
  static const OpHandle<GatedResidualForwardFn> h("image.gated_residual_forward");
  ExpectActivation(out, h.name(), "out");
  ExpectActivation(y, h.name(), "y");
  Expect(SameShape(out, y), h.name(), "out must be y's shape");
  ExpectPerSample(gate, y.dim(0), y.dim(-1), h.name(), "gate");
  if (y.numel() > 0) h.Get(d.kind())(d, out, y, gate);
}

void GatedResidualBackward(Device& d, const TensorView& dy, const TensorView& dgate,
                           const TensorView& dout, const TensorView& y, const TensorView& gate) {
  static const OpHandle<GatedResidualBackwardFn> h("image.gated_residual_backward");
  ExpectActivation(y, h.name(), "y");
  ExpectActivation(dout, h.name(), "dout");
  Expect(SameShape(dout, y), h.name(), "dout must be y's shape");
  ExpectPerSample(gate, y.dim(0), y.dim(-1), h.name(), "gate");
  if (dy.present()) {
    ExpectActivation(dy, h.name(), "dy");
    Expect(SameShape(dy, y), h.name(), "dy must be y's shape");
  }
  if (dgate.present()) ExpectPerSample(dgate, y.dim(0), y.dim(-1), h.name(), "dgate");
  if (y.numel() > 0) h.Get(d.kind())(d, dy, dgate, dout, y, gate);
}

}  // namespace anvil::kernels
