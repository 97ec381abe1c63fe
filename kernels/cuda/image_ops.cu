// CUDA implementations of the image family (kernels/ops/image.h, concat.h):
// GroupNorm, nearest 2x upsampling, per-sample channel bias, adaLN modulate
// and gate, channel concatenation, over NHWC (B,N,C) activations with any
// mix of F32/BF16 operands.
//
// Elementwise parts are grid-stride maps; every reduction over positions
// (GroupNorm statistics, per-sample and per-channel gradients) goes through
// column_reduce.cuh, so results are deterministic. GroupNorm follows the
// CPU's arithmetic: per-channel fp32 sums, combined per group in double,
// two passes (mean, then squared deviations), y = x * a[c] + s[c].
#include "kernels/cuda/column_reduce.cuh"
#include "kernels/op_registry.h"
#include "kernels/ops/concat.h"
#include "kernels/ops/image.h"

namespace anvil::kernels::cuda {
namespace {

struct Dims {
  int64_t B, N, C;
};
Dims BNC(const TensorView& x) {
  const int64_t B = x.dim(0), C = x.dim(-1);
  return Dims{B, B * C == 0 ? 0 : x.numel() / (B * C), C};
}

// ---- GroupNorm -----------------------------------------------------------------

// Column sums per sample: (x - center[b, c / Cg])^k, k = 1 (center null) or 2.
struct GroupMomentF {
  TArg x;
  const float* center;  // (B,G) or null
  int64_t N, C, Cg, G;
  __device__ void operator()(int64_t b, int64_t n, int64_t c, float* v) const {
    const float xv = x.ld((b * N + n) * C + c);
    if (center == nullptr) {
      v[0] = xv;
    } else {
      const float dv = xv - center[b * G + c / Cg];
      v[0] = dv * dv;
    }
  }
};

// One thread per (b, g): the group's mean (pass 1) or rstd (pass 2) from
// per-channel sums.
__global__ void GroupStatKernel(float* stat, const float* sums, int64_t B, int64_t G, int64_t Cg,
                                double count, float eps, bool is_rstd) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= B * G) return;
  const int64_t b = i / G, g = i % G, C = G * Cg;
  double t = 0;
  for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) t += sums[b * C + c];
  stat[i] = is_rstd ? static_cast<float>(1.0 / sqrt(t / count + static_cast<double>(eps)))
                    : static_cast<float>(t / count);
}

struct GroupNormApplyF {
  TArg out, x, w, bias;
  const float* mean;
  const float* rstd;
  int64_t N, C, Cg, G;
  __device__ void operator()(int64_t i) const {
    const int64_t c = i % C, b = i / (N * C), bg = b * G + c / Cg;
    const float a = rstd[bg] * w.ld(c);
    const float s = (bias.ok() ? bias.ld(c) : 0.0f) - mean[bg] * a;
    out.st(i, x.ld(i) * a + s);
  }
};

// s1 = sum_n dout, s2 = sum_n dout * x, per (b, c).
struct GroupGradSumsF {
  TArg dout, x;
  int64_t N, C;
  __device__ void operator()(int64_t b, int64_t n, int64_t c, float* v) const {
    const int64_t i = (b * N + n) * C + c;
    const float dy = dout.ld(i);
    v[0] = dy;
    v[1] = dy * x.ld(i);
  }
};

// Per (b, g): the (b, c) parameter-gradient partials and the group means
// m1 = mean(g), m2 = mean(g * xhat) of g = dout * w.
__global__ void GroupGradCoefKernel(float* dw_part, float* db_part, float* m12, const float* s1,
                                    const float* s2, TArg w, const float* mean, const float* rstd,
                                    int64_t B, int64_t G, int64_t Cg, double count) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= B * G) return;
  const int64_t b = i / G, g = i % G, C = G * Cg;
  const float m = mean[i], rs = rstd[i];
  double sum_g = 0, sum_gx = 0;
  for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) {
    const int64_t bc = b * C + c;
    const float dxhat_w = rs * (s2[bc] - m * s1[bc]);
    dw_part[bc] = dxhat_w;
    db_part[bc] = s1[bc];
    const double wc = w.ld(c);
    sum_g += wc * s1[bc];
    sum_gx += wc * dxhat_w;
  }
  m12[2 * i] = static_cast<float>(sum_g / count);
  m12[2 * i + 1] = static_cast<float>(sum_gx / count);
}

struct GroupNormDxF {
  TArg dx, dout, x, w;
  const float* mean;
  const float* rstd;
  const float* m12;
  int64_t N, C, Cg, G;
  __device__ void operator()(int64_t i) const {
    const int64_t c = i % C, b = i / (N * C), bg = b * G + c / Cg;
    const float rs = rstd[bg], m = mean[bg], m1 = m12[2 * bg], m2 = m12[2 * bg + 1];
    const float A = rs * w.ld(c), Bx = -rs * rs * m2, D = rs * (m * rs * m2 - m1);
    dx.add(i, A * dout.ld(i) + Bx * x.ld(i) + D);
  }
};

struct RowsOfF {  // plain column sums of two (B,C) fp32 partial arrays
  const float* a;
  const float* b;
  int64_t C;
  __device__ void operator()(int64_t, int64_t r, int64_t c, float* v) const {
    v[0] = a[r * C + c];
    v[1] = b[r * C + c];
  }
};

void GroupNormForwardCuda(Device& d, const TensorView& out, const TensorView& mean,
                          const TensorView& rstd, const TensorView& x, const TensorView& weight,
                          const TensorView& bias, const GroupNormParams& p) {
  const Ctx& ctx = CtxOf(d);
  const auto [B, N, C] = BNC(x);
  const int64_t G = p.groups, Cg = C / G;
  if (B * C == 0) return;
  const double count = static_cast<double>(N * Cg);
  Tmp sums(d, sizeof(float) * B * C);
  const unsigned grid = CeilDiv(static_cast<size_t>(B * G), 128);
  float* mp = mean.as<float>();
  float* rp = rstd.as<float>();
  ColumnReduce<1>(d, ctx, GroupMomentF{Arg(x), nullptr, N, C, Cg, G}, B, N, C,
                  ColOuts<1>{{ColOut{sums.arg(), C, false}}});
  GroupStatKernel<<<grid, 128, 0, ctx.stream>>>(mp, sums.f(), B, G, Cg, count, p.eps, false);
  ANVIL_CUDA_LAUNCH_CHECK();
  ColumnReduce<1>(d, ctx, GroupMomentF{Arg(x), mp, N, C, Cg, G}, B, N, C,
                  ColOuts<1>{{ColOut{sums.arg(), C, false}}});
  GroupStatKernel<<<grid, 128, 0, ctx.stream>>>(rp, sums.f(), B, G, Cg, count, p.eps, true);
  ANVIL_CUDA_LAUNCH_CHECK();
  LaunchMap(ctx, x.numel(),
            GroupNormApplyF{Arg(out), Arg(x), Arg(weight), Arg(bias), mp, rp, N, C, Cg, G});
}

void GroupNormBackwardCuda(Device& d, const TensorView& dx, const TensorView& dweight,
                           const TensorView& dbias, const TensorView& dout, const TensorView& x,
                           const TensorView& weight, const TensorView& mean, const TensorView& rstd,
                           const GroupNormParams& p) {
  const Ctx& ctx = CtxOf(d);
  const auto [B, N, C] = BNC(x);
  const int64_t G = p.groups, Cg = C / G;
  if (B * C == 0) return;
  const double count = static_cast<double>(N * Cg);
  Tmp buf(d, sizeof(float) * (4 * B * C + 2 * B * G));
  float* s1 = buf.f();
  float* s2 = s1 + B * C;
  float* dw_part = s2 + B * C;
  float* db_part = dw_part + B * C;
  float* m12 = db_part + B * C;
  ColumnReduce<2>(d, ctx, GroupGradSumsF{Arg(dout), Arg(x), N, C}, B, N, C,
                  ColOuts<2>{{ColOut{TArg{s1, DType::kF32}, C, false},
                              ColOut{TArg{s2, DType::kF32}, C, false}}});
  GroupGradCoefKernel<<<CeilDiv(static_cast<size_t>(B * G), 128), 128, 0, ctx.stream>>>(
      dw_part, db_part, m12, s1, s2, Arg(weight), mean.as<float>(), rstd.as<float>(), B, G, Cg,
      count);
  ANVIL_CUDA_LAUNCH_CHECK();
  if (dx.present()) {
    LaunchMap(ctx, x.numel(),
              GroupNormDxF{Arg(dx), Arg(dout), Arg(x), Arg(weight), mean.as<float>(),
                           rstd.as<float>(), m12, N, C, Cg, G});
  }
  ColumnReduce<2>(d, ctx, RowsOfF{dw_part, db_part, C}, 1, B, C,
                  ColOuts<2>{{ColOut{Arg(dweight)}, ColOut{Arg(dbias)}}});
}

// ---- nearest 2x upsampling ----------------------------------------------------------

struct UpsampleForwardF {
  TArg out, x;
  int64_t H, W, C;
  __device__ void operator()(int64_t i) const {
    const int64_t c = i % C, ox = (i / C) % (2 * W), oy = (i / (C * 2 * W)) % (2 * H),
                  b = i / (C * 4 * W * H);
    out.st(i, x.ld(((b * H + oy / 2) * W + ox / 2) * C + c));
  }
};
struct UpsampleBackwardF {
  TArg dx, dout;
  int64_t H, W, C;
  __device__ void operator()(int64_t i) const {
    const int64_t c = i % C, xx = (i / C) % W, y = (i / (C * W)) % H, b = i / (C * W * H);
    const int64_t row = 2 * W * C;
    const int64_t o = ((b * 2 * H + 2 * y) * 2 * W + 2 * xx) * C + c;
    dx.add(i, (dout.ld(o) + dout.ld(o + C)) + (dout.ld(o + row) + dout.ld(o + row + C)));
  }
};

void Upsample2xForwardCuda(Device& d, const TensorView& out, const TensorView& x) {
  LaunchMap(CtxOf(d), out.numel(),
            UpsampleForwardF{Arg(out), Arg(x), x.dim(1), x.dim(2), x.dim(3)});
}
void Upsample2xBackwardCuda(Device& d, const TensorView& dx, const TensorView& dout) {
  LaunchMap(CtxOf(d), dx.numel(),
            UpsampleBackwardF{Arg(dx), Arg(dout), dx.dim(1), dx.dim(2), dx.dim(3)});
}

// ---- per-sample channel bias, modulate, gate ------------------------------------------

struct AddChannelBiasF {
  TArg x, bias;
  int64_t N, C, bs;
  __device__ void operator()(int64_t i) const {
    const int64_t c = i % C, b = i / (N * C);
    x.st(i, x.ld(i) + bias.ld(b * bs + c));
  }
};
// v[0] = dout, v[1] = dout * other (other may be absent).
struct SampleSumsF {
  TArg dout, other;
  int64_t N, C;
  __device__ void operator()(int64_t b, int64_t n, int64_t c, float* v) const {
    const int64_t i = (b * N + n) * C + c;
    const float dy = dout.ld(i);
    v[0] = dy;
    v[1] = other.ok() ? dy * other.ld(i) : 0.0f;
  }
};
struct ModulateForwardF {
  TArg out, x, scale, shift;
  int64_t N, C, ss, hs;
  __device__ void operator()(int64_t i) const {
    const int64_t c = i % C, b = i / (N * C);
    out.st(i, x.ld(i) * (1.0f + scale.ld(b * ss + c)) + shift.ld(b * hs + c));
  }
};
// dx += dout * (factor0 + g[b]): modulate (factor0 1, g = scale), gate (0, gate).
struct ScaledGradF {
  TArg dx, dout, g;
  int64_t N, C, gs;
  float factor0;
  __device__ void operator()(int64_t i) const {
    const int64_t c = i % C, b = i / (N * C);
    dx.add(i, dout.ld(i) * (factor0 + g.ld(b * gs + c)));
  }
};
struct GatedResidualF {
  TArg out, y, gate;
  int64_t N, C, gs;
  __device__ void operator()(int64_t i) const {
    const int64_t c = i % C, b = i / (N * C);
    out.add(i, gate.ld(b * gs + c) * y.ld(i));
  }
};

int64_t SampleStride(const TensorView& v) { return v.ndim >= 2 ? v.stride[0] : 0; }

void AddChannelBiasCuda(Device& d, const TensorView& x, const TensorView& bias) {
  const auto [B, N, C] = BNC(x);
  LaunchMap(CtxOf(d), B * N * C, AddChannelBiasF{Arg(x), Arg(bias), N, C, SampleStride(bias)});
}
void AddChannelBiasBackwardCuda(Device& d, const TensorView& dbias, const TensorView& dout) {
  const auto [B, N, C] = BNC(dout);
  ColumnReduce<2>(d, CtxOf(d), SampleSumsF{Arg(dout), TArg{}, N, C}, B, N, C,
                  ColOuts<2>{{ColOut{Arg(dbias), SampleStride(dbias)}, ColOut{}}});
}

void ModulateForwardCuda(Device& d, const TensorView& out, const TensorView& x,
                         const TensorView& scale, const TensorView& shift) {
  const auto [B, N, C] = BNC(x);
  LaunchMap(CtxOf(d), B * N * C,
            ModulateForwardF{Arg(out), Arg(x), Arg(scale), Arg(shift), N, C, SampleStride(scale),
                             SampleStride(shift)});
}
void ModulateBackwardCuda(Device& d, const TensorView& dx, const TensorView& dscale,
                          const TensorView& dshift, const TensorView& dout, const TensorView& x,
                          const TensorView& scale) {
  const Ctx& ctx = CtxOf(d);
  const auto [B, N, C] = BNC(x);
  if (dx.present()) {
    LaunchMap(ctx, B * N * C,
              ScaledGradF{Arg(dx), Arg(dout), Arg(scale), N, C, SampleStride(scale), 1.0f});
  }
  if (dscale.present() || dshift.present()) {
    ColumnReduce<2>(d, ctx, SampleSumsF{Arg(dout), Arg(x), N, C}, B, N, C,
                    ColOuts<2>{{ColOut{Arg(dshift), SampleStride(dshift)},
                                ColOut{Arg(dscale), SampleStride(dscale)}}});
  }
}

void GatedResidualForwardCuda(Device& d, const TensorView& out, const TensorView& y,
                              const TensorView& gate) {
  const auto [B, N, C] = BNC(y);
  LaunchMap(CtxOf(d), B * N * C,
            GatedResidualF{Arg(out), Arg(y), Arg(gate), N, C, SampleStride(gate)});
}
void GatedResidualBackwardCuda(Device& d, const TensorView& dy, const TensorView& dgate,
                               const TensorView& dout, const TensorView& y,
                               const TensorView& gate) {
  const Ctx& ctx = CtxOf(d);
  const auto [B, N, C] = BNC(y);
  if (dy.present()) {
    LaunchMap(ctx, B * N * C,
              ScaledGradF{Arg(dy), Arg(dout), Arg(gate), N, C, SampleStride(gate), 0.0f});
  }
  if (dgate.present()) {
    ColumnReduce<2>(d, ctx, SampleSumsF{Arg(dout), Arg(y), N, C}, B, N, C,
                    ColOuts<2>{{ColOut{}, ColOut{Arg(dgate), SampleStride(dgate)}}});
  }
}

// ---- channel concatenation --------------------------------------------------------------

struct ConcatF {
  TArg out, a, b;
  int64_t ca, cb;
  __device__ void operator()(int64_t i) const {
    const int64_t co = ca + cb, r = i / co, c = i % co;
    out.st(i, c < ca ? a.ld(r * ca + c) : b.ld(r * cb + c - ca));
  }
};
struct ConcatBackwardF {
  TArg da, db, dout;
  int64_t ca, cb;
  __device__ void operator()(int64_t i) const {
    const int64_t co = ca + cb, r = i / co, c = i % co;
    if (c < ca) {
      if (da.ok()) da.add(r * ca + c, dout.ld(i));
    } else if (db.ok()) {
      db.add(r * cb + c - ca, dout.ld(i));
    }
  }
};

void ConcatChannelsCuda(Device& d, const TensorView& out, const TensorView& a,
                        const TensorView& b) {
  LaunchMap(CtxOf(d), out.numel(), ConcatF{Arg(out), Arg(a), Arg(b), a.dim(-1), b.dim(-1)});
}
void ConcatChannelsBackwardCuda(Device& d, const TensorView& da, const TensorView& db,
                                const TensorView& dout) {
  const int64_t co = dout.dim(-1);
  const int64_t ca = da.present() ? da.dim(-1) : co - db.dim(-1);
  LaunchMap(CtxOf(d), dout.numel(), ConcatBackwardF{Arg(da), Arg(db), Arg(dout), ca, co - ca});
}

}  // namespace

void RegisterImageCudaOps() {
  constexpr DeviceKind k = DeviceKind::kCuda;
  const auto both = {DType::kF32, DType::kBF16};
  RegisterOp<GroupNormForwardFn>(k, "image.groupnorm_forward", &GroupNormForwardCuda, both);
  RegisterOp<GroupNormBackwardFn>(k, "image.groupnorm_backward", &GroupNormBackwardCuda, both);
  RegisterOp<Upsample2xForwardFn>(k, "image.upsample2x_forward", &Upsample2xForwardCuda, both);
  RegisterOp<Upsample2xBackwardFn>(k, "image.upsample2x_backward", &Upsample2xBackwardCuda, both);
  RegisterOp<AddChannelBiasFn>(k, "image.add_channel_bias", &AddChannelBiasCuda, both);
  RegisterOp<AddChannelBiasBackwardFn>(k, "image.add_channel_bias_backward",
                                       &AddChannelBiasBackwardCuda, both);
  RegisterOp<ModulateForwardFn>(k, "image.modulate_forward", &ModulateForwardCuda, both);
  RegisterOp<ModulateBackwardFn>(k, "image.modulate_backward", &ModulateBackwardCuda, both);
  RegisterOp<GatedResidualForwardFn>(k, "image.gated_residual_forward", &GatedResidualForwardCuda,
                                     both);
  RegisterOp<GatedResidualBackwardFn>(k, "image.gated_residual_backward",
                                      &GatedResidualBackwardCuda, both);
  RegisterOp<ConcatChannelsFn>(k, "image.concat_channels", &ConcatChannelsCuda, both);
  RegisterOp<ConcatChannelsBackwardFn>(k, "image.concat_channels_backward",
                                       &ConcatChannelsBackwardCuda, both);
}

}  // namespace anvil::kernels::cuda
