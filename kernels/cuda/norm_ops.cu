// CUDA implementations of the norm family (kernels/ops/norm.h): LayerNorm
// and RMSNorm over the last dimension, F32 or BF16 operands, statistics and
// normalisation in fp32.
//
// All-F32 LayerNorm runs the original fp32 kernels (layernorm.cu); other
// dtype mixes and RMSNorm run the typed kernels here: one warp per row for
// the row-wise parts (two passes for the variance, as the CPU), parameter
// gradients through column_reduce.cuh (deterministic, no atomics).
#include "kernels/cuda/column_reduce.cuh"
#include "kernels/cuda/reduce.cuh"
#include "kernels/op_registry.h"
#include "kernels/ops/norm.h"

namespace anvil::kernels::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kRowsPerBlock = kThreads / 32;

unsigned RowBlocks(int64_t N) { return CeilDiv(static_cast<size_t>(N), kRowsPerBlock); }

__global__ void LayerNormForwardKernel(TArg out, float* mean, float* rstd, TArg x, TArg w, TArg b,
                                       int64_t N, int64_t C, float eps) {
  const int64_t row = blockIdx.x * static_cast<int64_t>(kRowsPerBlock) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;  // whole warps exit together
  const int64_t off = row * C;
  float s = 0.0f;
  for (int64_t c = lane; c < C; c += 32) s += x.ld(off + c);
  const float m = WarpSum(s) / static_cast<float>(C);
  float v = 0.0f;
  for (int64_t c = lane; c < C; c += 32) {
    const float dv = x.ld(off + c) - m;
    v += dv * dv;
  }
  const float r = 1.0f / sqrtf(WarpSum(v) / static_cast<float>(C) + eps);
  for (int64_t c = lane; c < C; c += 32) {
    const float bias = b.ok() ? b.ld(c) : 0.0f;
    out.st(off + c, (x.ld(off + c) - m) * r * w.ld(c) + bias);
  }
  if (lane == 0) {
    mean[row] = m;
    rstd[row] = r;
  }
}

__global__ void LayerNormBackwardKernel(TArg dx, TArg dout, TArg x, TArg w, const float* mean,
                                        const float* rstd, int64_t N, int64_t C) {
  const int64_t row = blockIdx.x * static_cast<int64_t>(kRowsPerBlock) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;
  const int64_t off = row * C;
  const float m = mean[row], r = rstd[row];
  float ds = 0.0f, dns = 0.0f;
  for (int64_t c = lane; c < C; c += 32) {
    const float wd = w.ld(c) * dout.ld(off + c);
    ds += wd;
    dns += wd * (x.ld(off + c) - m) * r;
  }
  const float dmean = WarpSum(ds) / static_cast<float>(C);
  const float dnmean = WarpSum(dns) / static_cast<float>(C);
  for (int64_t c = lane; c < C; c += 32) {
    const float xhat = (x.ld(off + c) - m) * r;
    dx.add(off + c, (w.ld(c) * dout.ld(off + c) - dmean - xhat * dnmean) * r);
  }
}

// dweight += dout * xhat, dbias += dout, column sums over rows.
struct LayerNormParamGradF {
  TArg dout, x;
  const float* mean;
  const float* rstd;
  int64_t C;
  __device__ void operator()(int64_t, int64_t r, int64_t c, float* v) const {
    const float dy = dout.ld(r * C + c);
    v[0] = dy * (x.ld(r * C + c) - mean[r]) * rstd[r];
    v[1] = dy;
  }
};

__global__ void RmsNormForwardKernel(TArg out, float* rstd, TArg x, TArg w, int64_t N, int64_t C,
                                     float eps) {
  const int64_t row = blockIdx.x * static_cast<int64_t>(kRowsPerBlock) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;
  const int64_t off = row * C;
  float ss = 0.0f;
  for (int64_t c = lane; c < C; c += 32) {
    const float v = x.ld(off + c);
    ss += v * v;
  }
  const float s = 1.0f / sqrtf(WarpSum(ss) / static_cast<float>(C) + eps);
  for (int64_t c = lane; c < C; c += 32) out.st(off + c, x.ld(off + c) * s * w.ld(c));
  if (lane == 0) rstd[row] = s;
}

__global__ void RmsNormBackwardKernel(TArg dx, TArg dout, TArg x, TArg w, const float* rstd,
                                      int64_t N, int64_t C) {
  const int64_t row = blockIdx.x * static_cast<int64_t>(kRowsPerBlock) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;
  const int64_t off = row * C;
  const float s = rstd[row];
  float dot = 0.0f;
  for (int64_t c = lane; c < C; c += 32) dot += w.ld(c) * dout.ld(off + c) * x.ld(off + c) * s;
  const float m = WarpSum(dot) / static_cast<float>(C);
  for (int64_t c = lane; c < C; c += 32) {
    dx.add(off + c, (w.ld(c) * dout.ld(off + c) - x.ld(off + c) * s * m) * s);
  }
}

struct RmsNormWeightGradF {
  TArg dout, x;
  const float* rstd;
  int64_t C;
  __device__ void operator()(int64_t, int64_t r, int64_t c, float* v) const {
    v[0] = dout.ld(r * C + c) * x.ld(r * C + c) * rstd[r];
  }
};

void LayerNormForwardCuda(Device& d, const TensorView& out, const TensorView& mean,
                          const TensorView& rstd, const TensorView& x, const TensorView& w,
                          const TensorView& b, const LayerNormParams& p) {
  const Ctx& ctx = CtxOf(d);
  const int64_t N = x.rows(), C = x.cols();
  if (N == 0) return;
  if (AllF32({&out, &x, &w, &b})) {
    Tmp zero(d, sizeof(float) * C, !b.present());
    LayerNormForward(ctx, out.as<float>(), mean.as<float>(), rstd.as<float>(), x.as<float>(),
                     w.as<float>(), b.present() ? b.as<float>() : zero.f(), static_cast<int>(N),
                     static_cast<int>(C), p.eps);
    return;
  }
  LayerNormForwardKernel<<<RowBlocks(N), kThreads, 0, ctx.stream>>>(
      Arg(out), mean.as<float>(), rstd.as<float>(), Arg(x), Arg(w), Arg(b), N, C, p.eps);
  ANVIL_CUDA_LAUNCH_CHECK();
}

void LayerNormBackwardCuda(Device& d, const TensorView& dx, const TensorView& dw,
                           const TensorView& db, const TensorView& dout, const TensorView& x,
                           const TensorView& w, const TensorView& mean, const TensorView& rstd,
                           const LayerNormParams&) {
  const Ctx& ctx = CtxOf(d);
  const int64_t N = x.rows(), C = x.cols();
  if (N == 0) return;
  if (AllF32({&dx, &dout, &x, &w})) {
    Tmp scratch(d, sizeof(float) * C);
    LayerNormBackward(ctx, dx.as<float>(), dw.as<float>(),
                      db.present() ? db.as<float>() : scratch.f(), dout.as<float>(), x.as<float>(),
                      w.as<float>(), mean.as<float>(), rstd.as<float>(), static_cast<int>(N),
                      static_cast<int>(C));
    return;
  }
  LayerNormBackwardKernel<<<RowBlocks(N), kThreads, 0, ctx.stream>>>(
      Arg(dx), Arg(dout), Arg(x), Arg(w), mean.as<float>(), rstd.as<float>(), N, C);
  ANVIL_CUDA_LAUNCH_CHECK();
  ColOuts<2> outs{{ColOut{Arg(dw)}, ColOut{Arg(db)}}};
  ColumnReduce<2>(d, ctx,
                  LayerNormParamGradF{Arg(dout), Arg(x), mean.as<float>(), rstd.as<float>(), C}, 1,
                  N, C, outs);
}

void RmsNormForwardCuda(Device& d, const TensorView& out, const TensorView& rstd,
                        const TensorView& x, const TensorView& w, const RmsNormParams& p) {
  const Ctx& ctx = CtxOf(d);
  const int64_t N = x.rows(), C = x.cols();
  if (N == 0) return;
  RmsNormForwardKernel<<<RowBlocks(N), kThreads, 0, ctx.stream>>>(Arg(out), rstd.as<float>(),
                                                                  Arg(x), Arg(w), N, C, p.eps);
  ANVIL_CUDA_LAUNCH_CHECK();
}

void RmsNormBackwardCuda(Device& d, const TensorView& dx, const TensorView& dw,
                         const TensorView& dout, const TensorView& x, const TensorView& w,
                         const TensorView& rstd) {
  const Ctx& ctx = CtxOf(d);
  const int64_t N = x.rows(), C = x.cols();
  if (N == 0) return;
  if (dx.present()) {
    RmsNormBackwardKernel<<<RowBlocks(N), kThreads, 0, ctx.stream>>>(
        Arg(dx), Arg(dout), Arg(x), Arg(w), rstd.as<float>(), N, C);
    ANVIL_CUDA_LAUNCH_CHECK();
  }
  if (dw.present()) {
    ColOuts<1> outs{{ColOut{Arg(dw)}}};
    ColumnReduce<1>(d, ctx, RmsNormWeightGradF{Arg(dout), Arg(x), rstd.as<float>(), C}, 1, N, C,
                    outs);
  }
}

}  // namespace

void RegisterNormCudaOps() {
  constexpr DeviceKind k = DeviceKind::kCuda;
  const auto both = {DType::kF32, DType::kBF16};
  RegisterOp<LayerNormForwardFn>(k, "norm.layernorm_forward", &LayerNormForwardCuda, both);
  RegisterOp<LayerNormBackwardFn>(k, "norm.layernorm_backward", &LayerNormBackwardCuda, both);
  RegisterOp<RmsNormForwardFn>(k, "norm.rmsnorm_forward", &RmsNormForwardCuda, both);
  RegisterOp<RmsNormBackwardFn>(k, "norm.rmsnorm_backward", &RmsNormBackwardCuda, both);
}

}  // namespace anvil::kernels::cuda
