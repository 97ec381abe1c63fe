// CUDA implementations of the embedding family (kernels/ops/embedding.h,
// diffusion_ops.h): token (+ position) lookup, rotary position embedding
// (Hugging Face Llama convention) and the sinusoidal timestep embedding,
// over F32/BF16 storage with fp32 arithmetic.
//
// Lookup backward with F32 dout runs the original kernels (encoder.cu);
// BF16 dout is widened once into scratch first (dtable and dpos are F32).
// RoPE builds its (T, hd/2) cos/sin table per call the way rope.cc does
// (fp32 inverse frequency times the fp32 position, cos/sin in double), so
// both devices rotate by the same fp32 angles.
#include <cmath>

#include "kernels/cuda/family_util.cuh"
#include "kernels/op_registry.h"
#include "kernels/ops/diffusion_ops.h"
#include "kernels/ops/embedding.h"

namespace anvil::kernels::cuda {
namespace {

struct LookupF {
  TArg out, table, pos;
  const int32_t* ids;
  int64_t T, C;
  __device__ void operator()(int64_t i) const {
    const int64_t row = i / C, c = i % C, t = row % T;
    float v = table.ld(static_cast<int64_t>(ids[row]) * C + c);
    if (pos.ok()) v += pos.ld(t * C + c);
    out.st(i, v);
  }
};

void EmbeddingForwardCuda(Device& d, const TensorView& out, const TensorView& ids,
                          const TensorView& table, const TensorView& pos) {
  const int64_t C = table.cols();
  const int64_t T = pos.present() ? ids.shape[1] : ids.numel();
  LaunchMap(CtxOf(d), ids.numel() * C,
            LookupF{Arg(out), Arg(table), Arg(pos), ids.as<int32_t>(), T, C});
}

void EmbeddingBackwardCuda(Device& d, const TensorView& dtable, const TensorView& dpos,
                           const TensorView& dout, const TensorView& ids) {
  const Ctx& ctx = CtxOf(d);
  const int C = static_cast<int>(dtable.cols());
  const int B = dpos.present() ? static_cast<int>(ids.shape[0]) : 1;
  const int T = dpos.present() ? static_cast<int>(ids.shape[1]) : static_cast<int>(ids.numel());
  const size_t n = static_cast<size_t>(dout.numel());
  Tmp wide(d, dout.dtype == DType::kF32 ? 0 : sizeof(float) * n);
  const float* g = dout.as<float>();
  if (dout.dtype != DType::kF32) {
    Convert(ctx, wide.get(), DType::kF32, dout.data, dout.dtype, n);
    g = wide.f();
  }
  Tmp sink(d, dpos.present() ? 0 : sizeof(float) * T * C);
  EncoderBackward(ctx, dtable.as<float>(), dpos.present() ? dpos.as<float>() : sink.f(), g,
                  ids.as<int32_t>(), B, T, C);
}

// ---- RoPE ----------------------------------------------------------------------

__global__ void RopeTableKernel(float* cs, float* sn, int64_t T, int64_t h, int64_t hd,
                                double theta) {
  const int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (k >= T * h) return;
  const int64_t p = k / h, i = k % h;
  const float inv_freq =
      static_cast<float>(1.0 / pow(theta, static_cast<double>(2 * i) / static_cast<double>(hd)));
  const double a = static_cast<float>(p) * inv_freq;  // fp32 product, like HF
  cs[k] = static_cast<float>(cos(a));
  sn[k] = static_cast<float>(sin(a));
}

struct RotateF {
  TArg x;
  const float* cs;
  const float* sn;
  int64_t T, NH, h, sb, st, sh;
  float sign;
  __device__ void operator()(int64_t k) const {
    const int64_t i = k % h, head = (k / h) % NH, t = (k / (h * NH)) % T, b = k / (h * NH * T);
    const int64_t p = b * sb + t * st + head * sh;
    const float x1 = x.ld(p + i), x2 = x.ld(p + i + h);
    const float c = cs[t * h + i], s = sign * sn[t * h + i];
    x.st(p + i, x1 * c - x2 * s);
    x.st(p + i + h, x2 * c + x1 * s);
  }
};

void Rotate(Device& d, const TensorView& x, float theta, float sign) {
  const Ctx& ctx = CtxOf(d);
  const int64_t B = x.shape[0], T = x.shape[1], NH = x.shape[2], hd = x.shape[3], h = hd / 2;
  if (B * T * NH * h == 0) return;
  Tmp table(d, sizeof(float) * 2 * T * h);
  RopeTableKernel<<<CeilDiv(static_cast<size_t>(T * h), 256), 256, 0, ctx.stream>>>(
      table.f(), table.f() + T * h, T, h, hd, static_cast<double>(theta));
  ANVIL_CUDA_LAUNCH_CHECK();
  LaunchMap(ctx, B * T * NH * h,
            RotateF{Arg(x), table.f(), table.f() + T * h, T, NH, h, x.stride[0], x.stride[1],
                    x.stride[2], sign});
}

void RopeForwardCuda(Device& d, const TensorView& x, const RopeParams& p) {
  Rotate(d, x, p.theta, 1.0f);
}
void RopeBackwardCuda(Device& d, const TensorView& dx, const RopeParams& p) {
  Rotate(d, dx, p.theta, -1.0f);
}

// ---- timestep embedding ------------------------------------------------------------

struct TimestepF {
  TArg out;
  const void* t;
  bool t_int;
  int64_t dim, half;
  float neg_log, denom, scale;
  bool flip;
  __device__ void operator()(int64_t k) const {
    const int64_t b = k / dim, j = k % dim;
    if (j >= 2 * half) {  // odd dim: a zero last column
      out.st(k, 0.0f);
      return;
    }
    const float tv = t_int ? static_cast<float>(static_cast<const int32_t*>(t)[b])
                           : static_cast<const float*>(t)[b];
    const bool in_first_half = j < half;
    const int64_t i = in_first_half ? j : j - half;
    const float freq = expf(neg_log * static_cast<float>(i) / denom);
    float arg = tv * freq;
    if (scale != 1.0f) arg = scale * arg;
    // Without flip the first half is sin, the second cos; flip swaps them.
    out.st(k, in_first_half != flip ? sinf(arg) : cosf(arg));
  }
};

void TimestepEmbeddingCuda(Device& d, const TensorView& out, const TensorView& t,
                           const TimestepEmbeddingParams& p) {
  const int64_t B = out.dim(0), dim = out.dim(1), half = dim / 2;
  const float neg_log = -static_cast<float>(std::log(static_cast<double>(p.max_period)));
  const float denom =
      static_cast<float>(static_cast<double>(half) - static_cast<double>(p.downscale_freq_shift));
  LaunchMap(CtxOf(d), B * dim,
            TimestepF{Arg(out), t.data, t.dtype == DType::kI32, dim, half, neg_log, denom, p.scale,
                      p.flip_sin_to_cos});
}

}  // namespace

void RegisterEmbeddingCudaOps() {
  constexpr DeviceKind k = DeviceKind::kCuda;
  const auto both = {DType::kF32, DType::kBF16};
  RegisterOp<EmbeddingForwardFn>(k, "embedding.forward", &EmbeddingForwardCuda, both);
  RegisterOp<EmbeddingBackwardFn>(k, "embedding.backward", &EmbeddingBackwardCuda, both);
  RegisterOp<RopeForwardFn>(k, "embedding.rope_forward", &RopeForwardCuda, both);
  RegisterOp<RopeBackwardFn>(k, "embedding.rope_backward", &RopeBackwardCuda, both);
  RegisterOp<TimestepEmbeddingFn>(k, "embedding.timestep_embedding", &TimestepEmbeddingCuda, both);
}

}  // namespace anvil::kernels::cuda
