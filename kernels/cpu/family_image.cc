// CPU implementation of the image family (kernels/ops/image.h): GroupNorm,
// nearest 2x upsampling, per-sample channel bias, adaLN modulate and gate.
//
// Every op works a row (one position's C channels, or one image row's W*C)
// at a time through rows.h, so any mix of F32/BF16 operands runs the same
// fp32 loops. Ops that reduce over positions into per-sample (B,C) outputs
// or per-channel partials split the SAMPLES among threads: each output has
// one writer, so results are bitwise identical for any thread count.
// GroupNorm's parameter gradients go through (B,C) partials summed over b in
// a fixed order for the same reason.
#include <cmath>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/register_ops.h"
#include "kernels/cpu/rows.h"
#include "kernels/cpu/typed.h"
#include "kernels/op_registry.h"
#include "kernels/ops/image.h"

namespace anvil::kernels::cpu {
namespace {

bool Parallel(int nt, int64_t elems) {
  return nt > 1 && static_cast<size_t>(elems) >= kMinParallelElems;
}

// Row offset of sample b in a per-sample (B,C) view.
int64_t SampleRow(const TensorView& v, int64_t b) { return b * v.stride[0]; }

// ---- GroupNorm ---------------------------------------------------------------

void GroupNormForwardCpu(Device& d, const TensorView& out, const TensorView& mean,
                         const TensorView& rstd, const TensorView& x, const TensorView& weight,
                         const TensorView& bias, const GroupNormParams& p) {
  const int64_t B = x.dim(0), C = x.dim(-1), N = x.numel() / (B * C), G = p.groups, Cg = C / G;
  const int nt = Threads(d);
  F32In fw(d, weight), fb(d, bias);
  const float* w = fw.get();
  const float* bs = fb.get();
  float* mean_p = mean.as<float>();
  float* rstd_p = rstd.as<float>();
  const double count = static_cast<double>(N * Cg);
  ThreadBuffers tb(d, nt, 6, C);
#pragma omp parallel for num_threads(nt) schedule(static) if (Parallel(nt, x.numel()))
  for (int64_t b = 0; b < B; ++b) {
    float* in = tb.Get(0);
    float* o = tb.Get(1);
    float* sum = tb.Get(2);
    float* mc = tb.Get(3);
    float* a = tb.Get(4);
    float* s = tb.Get(5);
    const int64_t base = b * N * C;
    // Two passes (mean, then squared deviations): no cancellation.
    for (int64_t c = 0; c < C; ++c) sum[c] = 0.0f;
    for (int64_t n = 0; n < N; ++n) {
      const float* r = LoadRow(x, base + n * C, C, in);
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) sum[c] += r[c];
    }
    for (int64_t g = 0; g < G; ++g) {
      double t = 0;
      for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) t += sum[c];
      const float m = static_cast<float>(t / count);
      for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) mc[c] = m;
      mean_p[b * G + g] = m;
    }
    for (int64_t c = 0; c < C; ++c) sum[c] = 0.0f;
    for (int64_t n = 0; n < N; ++n) {
      const float* r = LoadRow(x, base + n * C, C, in);
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) sum[c] += (r[c] - mc[c]) * (r[c] - mc[c]);
    }
    for (int64_t g = 0; g < G; ++g) {
      double t = 0;
      for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) t += sum[c];
      const float rs = static_cast<float>(1.0 / std::sqrt(t / count + p.eps));
      rstd_p[b * G + g] = rs;
      for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) {
        a[c] = rs * w[c];
        s[c] = (bs != nullptr ? bs[c] : 0.0f) - mc[c] * a[c];
      }
    }
    for (int64_t n = 0; n < N; ++n) {
      const float* r = LoadRow(x, base + n * C, C, in);
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) o[c] = r[c] * a[c] + s[c];
      StoreRow(out, base + n * C, o, C, false);
    }
  }
}

// With xhat = (x - mean) * rstd and g = dout * w over a group of M = N*C/G
// elements: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), written as
// dx = A[c] * dout + Bx[c] * x + D[c] per channel.
void GroupNormBackwardCpu(Device& d, const TensorView& dx, const TensorView& dweight,
                          const TensorView& dbias, const TensorView& dout, const TensorView& x,
                          const TensorView& weight, const TensorView& mean, const TensorView& rstd,
                          const GroupNormParams& p) {
  const int64_t B = x.dim(0), C = x.dim(-1), N = x.numel() / (B * C), G = p.groups, Cg = C / G;
  const int nt = Threads(d);
  F32In fw(d, weight);
  const float* w = fw.get();
  const float* mean_p = mean.as<float>();
  const float* rstd_p = rstd.as<float>();
  const double count = static_cast<double>(N * Cg);
  Scratch partial(d, static_cast<size_t>(2 * B * C) * sizeof(float));
  float* dw_part = partial.f32();    // (B,C): sum_n dout * xhat
  float* db_part = dw_part + B * C;  // (B,C): sum_n dout
  ThreadBuffers tb(d, nt, 8, C);
#pragma omp parallel for num_threads(nt) schedule(static) if (Parallel(nt, x.numel()))
  for (int64_t b = 0; b < B; ++b) {
    float* xin = tb.Get(0);
    float* din = tb.Get(1);
    float* o = tb.Get(2);
    float* s1 = tb.Get(3);
    float* s2 = tb.Get(4);
    float* A = tb.Get(5);
    float* Bx = tb.Get(6);
    float* D = tb.Get(7);
    const int64_t base = b * N * C;
    for (int64_t c = 0; c < C; ++c) s1[c] = s2[c] = 0.0f;
    for (int64_t n = 0; n < N; ++n) {
      const float* xr = LoadRow(x, base + n * C, C, xin);
      const float* dr = LoadRow(dout, base + n * C, C, din);
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        s1[c] += dr[c];
        s2[c] += dr[c] * xr[c];
      }
    }
    for (int64_t g = 0; g < G; ++g) {
      const float m = mean_p[b * G + g], rs = rstd_p[b * G + g];
      double sum_g = 0, sum_gx = 0;  // sum of g, of g * xhat over the group
      for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) {
        const float dxhat_w = rs * (s2[c] - m * s1[c]);  // sum_n dout * xhat
        dw_part[b * C + c] = dxhat_w;
        db_part[b * C + c] = s1[c];
        sum_g += static_cast<double>(w[c]) * s1[c];
        sum_gx += static_cast<double>(w[c]) * dxhat_w;
      }
      const float m1 = static_cast<float>(sum_g / count), m2 = static_cast<float>(sum_gx / count);
      for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) {
        A[c] = rs * w[c];
        Bx[c] = -rs * rs * m2;
        D[c] = rs * (m * rs * m2 - m1);
      }
    }
    if (!dx.present()) continue;
    for (int64_t n = 0; n < N; ++n) {
      const float* xr = LoadRow(x, base + n * C, C, xin);
      const float* dr = LoadRow(dout, base + n * C, C, din);
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) o[c] = A[c] * dr[c] + Bx[c] * xr[c] + D[c];
      StoreRow(dx, base + n * C, o, C, true);
    }
  }
  for (const auto& [grad, part_of] : {std::pair{&dweight, dw_part}, std::pair{&dbias, db_part}}) {
    if (!grad->present()) continue;
    float* g = grad->as<float>();
    const float* part = part_of;  // a plain variable: clang 14's OpenMP cannot capture bindings
    for (int64_t b = 0; b < B; ++b) {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) g[c] += part[b * C + c];
    }
  }
}

// ---- nearest 2x upsampling ------------------------------------------------------

void Upsample2xForwardCpu(Device& d, const TensorView& out, const TensorView& x) {
  const int64_t B = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3), WC = W * C;
  const int nt = Threads(d);
  ThreadBuffers tb(d, nt, 3, 2 * WC);
#pragma omp parallel for num_threads(nt) schedule(static) if (Parallel(nt, out.numel()))
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const float* r = LoadRow(x, bh * WC, WC, tb.Get(0));
    float* o = tb.Get(1);
    for (int64_t w = 0; w < W; ++w) {
      for (int64_t c = 0; c < C; ++c) o[2 * w * C + c] = o[(2 * w + 1) * C + c] = r[w * C + c];
    }
    // Output rows 2h and 2h+1 of sample b are rows 2*bh and 2*bh+1 overall.
    StoreRow(out, 2 * bh * 2 * WC, o, 2 * WC, false);
    StoreRow(out, (2 * bh + 1) * 2 * WC, o, 2 * WC, false);
  }
}

void Upsample2xBackwardCpu(Device& d, const TensorView& dx, const TensorView& dout) {
  const int64_t B = dx.dim(0), H = dx.dim(1), W = dx.dim(2), C = dx.dim(3), WC = W * C;
  const int nt = Threads(d);
  ThreadBuffers tb(d, nt, 3, 2 * WC);
#pragma omp parallel for num_threads(nt) schedule(static) if (Parallel(nt, dout.numel()))
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const float* r0 = LoadRow(dout, 2 * bh * 2 * WC, 2 * WC, tb.Get(0));
    const float* r1 = LoadRow(dout, (2 * bh + 1) * 2 * WC, 2 * WC, tb.Get(1));
    float* o = tb.Get(2);
    for (int64_t w = 0; w < W; ++w) {
      const float* a0 = r0 + 2 * w * C;
      const float* a1 = r1 + 2 * w * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) o[w * C + c] = (a0[c] + a0[C + c]) + (a1[c] + a1[C + c]);
    }
    StoreRow(dx, bh * WC, o, WC, true);
  }
}

// ---- per-sample channel bias ------------------------------------------------------

void AddChannelBiasCpu(Device& d, const TensorView& x, const TensorView& bias) {
  const int64_t B = x.dim(0), C = x.dim(-1), N = x.numel() / (B * C);
  const int nt = Threads(d);
  ThreadBuffers tb(d, nt, 3, C);
#pragma omp parallel for num_threads(nt) schedule(static) if (Parallel(nt, x.numel()))
  for (int64_t row = 0; row < B * N; ++row) {
    const float* br = LoadRow(bias, SampleRow(bias, row / N), C, tb.Get(0));
    const float* xr = LoadRow(x, row * C, C, tb.Get(1));
    float* o = tb.Get(2);
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) o[c] = xr[c] + br[c];
    StoreRow(x, row * C, o, C, false);
  }
}

void AddChannelBiasBackwardCpu(Device& d, const TensorView& dbias, const TensorView& dout) {
  const int64_t B = dout.dim(0), C = dout.dim(-1), N = dout.numel() / (B * C);
  const int nt = Threads(d);
  ThreadBuffers tb(d, nt, 2, C);
#pragma omp parallel for num_threads(nt) schedule(static) if (Parallel(nt, dout.numel()))
  for (int64_t b = 0; b < B; ++b) {
    float* acc = tb.Get(1);
    for (int64_t c = 0; c < C; ++c) acc[c] = 0.0f;
    for (int64_t n = 0; n < N; ++n) {
      const float* r = LoadRow(dout, (b * N + n) * C, C, tb.Get(0));
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) acc[c] += r[c];
    }
    StoreRow(dbias, SampleRow(dbias, b), acc, C, true);
  }
}

// ---- adaLN modulate and gate ------------------------------------------------------

void ModulateForwardCpu(Device& d, const TensorView& out, const TensorView& x,
                        const TensorView& scale, const TensorView& shift) {
  const int64_t B = x.dim(0), C = x.dim(-1), N = x.numel() / (B * C);
  const int nt = Threads(d);
  ThreadBuffers tb(d, nt, 4, C);
#pragma omp parallel for num_threads(nt) schedule(static) if (Parallel(nt, x.numel()))
  for (int64_t row = 0; row < B * N; ++row) {
    const int64_t b = row / N;
    const float* sc = LoadRow(scale, SampleRow(scale, b), C, tb.Get(0));
    const float* sh = LoadRow(shift, SampleRow(shift, b), C, tb.Get(1));
    const float* xr = LoadRow(x, row * C, C, tb.Get(2));
    float* o = tb.Get(3);
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) o[c] = xr[c] * (1.0f + sc[c]) + sh[c];
    StoreRow(out, row * C, o, C, false);
  }
}

void ModulateBackwardCpu(Device& d, const TensorView& dx, const TensorView& dscale,
                         const TensorView& dshift, const TensorView& dout, const TensorView& x,
                         const TensorView& scale) {
  const int64_t B = x.dim(0), C = x.dim(-1), N = x.numel() / (B * C);
  const int nt = Threads(d);
  ThreadBuffers tb(d, nt, 6, C);
#pragma omp parallel for num_threads(nt) schedule(static) if (Parallel(nt, x.numel()))
  for (int64_t b = 0; b < B; ++b) {
    const float* sc = LoadRow(scale, SampleRow(scale, b), C, tb.Get(0));
    float* o = tb.Get(3);
    float* acc_sc = tb.Get(4);
    float* acc_sh = tb.Get(5);
    for (int64_t c = 0; c < C; ++c) acc_sc[c] = acc_sh[c] = 0.0f;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t off = (b * N + n) * C;
      const float* dr = LoadRow(dout, off, C, tb.Get(1));
      const float* xr = LoadRow(x, off, C, tb.Get(2));
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        o[c] = dr[c] * (1.0f + sc[c]);
        acc_sc[c] += dr[c] * xr[c];
        acc_sh[c] += dr[c];
      }
      if (dx.present()) StoreRow(dx, off, o, C, true);
    }
    if (dscale.present()) StoreRow(dscale, SampleRow(dscale, b), acc_sc, C, true);
    if (dshift.present()) StoreRow(dshift, SampleRow(dshift, b), acc_sh, C, true);
  }
}

void GatedResidualForwardCpu(Device& d, const TensorView& out, const TensorView& y,
                             const TensorView& gate) {
  const int64_t B = y.dim(0), C = y.dim(-1), N = y.numel() / (B * C);
  const int nt = Threads(d);
  ThreadBuffers tb(d, nt, 3, C);
#pragma omp parallel for num_threads(nt) schedule(static) if (Parallel(nt, y.numel()))
  for (int64_t row = 0; row < B * N; ++row) {
    const float* g = LoadRow(gate, SampleRow(gate, row / N), C, tb.Get(0));
    const float* yr = LoadRow(y, row * C, C, tb.Get(1));
    float* o = tb.Get(2);
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) o[c] = g[c] * yr[c];
    StoreRow(out, row * C, o, C, true);
  }
}

void GatedResidualBackwardCpu(Device& d, const TensorView& dy, const TensorView& dgate,
                              const TensorView& dout, const TensorView& y, const TensorView& gate) {
  const int64_t B = y.dim(0), C = y.dim(-1), N = y.numel() / (B * C);
  const int nt = Threads(d);
  ThreadBuffers tb(d, nt, 5, C);
#pragma omp parallel for num_threads(nt) schedule(static) if (Parallel(nt, y.numel()))
  for (int64_t b = 0; b < B; ++b) {
    const float* g = LoadRow(gate, SampleRow(gate, b), C, tb.Get(0));
    float* o = tb.Get(3);
    float* acc = tb.Get(4);
    for (int64_t c = 0; c < C; ++c) acc[c] = 0.0f;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t off = (b * N + n) * C;
      const float* dr = LoadRow(dout, off, C, tb.Get(1));
      const float* yr = LoadRow(y, off, C, tb.Get(2));
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        o[c] = g[c] * dr[c];
        acc[c] += dr[c] * yr[c];
      }
      if (dy.present()) StoreRow(dy, off, o, C, true);
    }
    if (dgate.present()) StoreRow(dgate, SampleRow(dgate, b), acc, C, true);
  }
}

}  // namespace

void RegisterImageOps() {
  constexpr DeviceKind k = DeviceKind::kCpu;
  const auto both = {DType::kF32, DType::kBF16};
  RegisterOp<GroupNormForwardFn>(k, "image.groupnorm_forward", &GroupNormForwardCpu, both);
  RegisterOp<GroupNormBackwardFn>(k, "image.groupnorm_backward", &GroupNormBackwardCpu, both);
  RegisterOp<Upsample2xForwardFn>(k, "image.upsample2x_forward", &Upsample2xForwardCpu, both);
  RegisterOp<Upsample2xBackwardFn>(k, "image.upsample2x_backward", &Upsample2xBackwardCpu, both);
  RegisterOp<AddChannelBiasFn>(k, "image.add_channel_bias", &AddChannelBiasCpu, both);
  RegisterOp<AddChannelBiasBackwardFn>(k, "image.add_channel_bias_backward",
                                       &AddChannelBiasBackwardCpu, both);
  RegisterOp<ModulateForwardFn>(k, "image.modulate_forward", &ModulateForwardCpu, both);
  RegisterOp<ModulateBackwardFn>(k, "image.modulate_backward", &ModulateBackwardCpu, both);
  RegisterOp<GatedResidualForwardFn>(k, "image.gated_residual_forward", &GatedResidualForwardCpu,
                                     both);
  RegisterOp<GatedResidualBackwardFn>(k, "image.gated_residual_backward", &GatedResidualBackwardCpu,
                                      both);
}

}  // namespace anvil::kernels::cpu
