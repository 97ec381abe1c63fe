// CPU implementation of the ops in kernels/ops/diffusion_ops.h: SiLU, MSE
// loss, sinusoidal timestep embedding. Elementwise work goes a block of
// kBlock elements at a time through rows.h (fp32 math on F32/BF16 storage).
#include <cmath>
#include <cstdint>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/register_ops.h"
#include "kernels/cpu/rows.h"
#include "kernels/cpu/vec_math.h"
#include "kernels/cpu/typed.h"
#include "kernels/op_registry.h"
#include "kernels/ops/diffusion_ops.h"

namespace anvil::kernels::cpu {
namespace {

// Elements per block: a few pages, and the MSE's unit of summation (its
// partial sums are per block, so the result does not depend on threads).
constexpr int64_t kBlock = 4096;

int64_t Blocks(int64_t n) { return (n + kBlock - 1) / kBlock; }
bool Parallel(int nt, int64_t n) { return nt > 1 && static_cast<size_t>(n) >= kMinParallelElems; }

// FastExp vectorises inside the simd loops (std::exp is an opaque call).
inline float Sigmoid(float x) { return 1.0f / (1.0f + FastExp(-x)); }

void SiluForwardCpu(Device& d, const TensorView& out, const TensorView& x) {
  const int64_t n = x.numel();
  const int nt = Threads(d);
  ThreadBuffers tb(d, nt, 2, kBlock);
#pragma omp parallel for num_threads(nt) schedule(static) if (Parallel(nt, n))
  for (int64_t blk = 0; blk < Blocks(n); ++blk) {
    const int64_t off = blk * kBlock, len = std::min(kBlock, n - off);
    const float* xr = LoadRow(x, off, len, tb.Get(0));
    float* o = tb.Get(1);
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) o[i] = xr[i] * Sigmoid(xr[i]);
    StoreRow(out, off, o, len, false);
  }
}

void SiluBackwardCpu(Device& d, const TensorView& dx, const TensorView& x, const TensorView& dout) {
  const int64_t n = x.numel();
  const int nt = Threads(d);
  ThreadBuffers tb(d, nt, 3, kBlock);
#pragma omp parallel for num_threads(nt) schedule(static) if (Parallel(nt, n))
  for (int64_t blk = 0; blk < Blocks(n); ++blk) {
    const int64_t off = blk * kBlock, len = std::min(kBlock, n - off);
    const float* xr = LoadRow(x, off, len, tb.Get(0));
    const float* dr = LoadRow(dout, off, len, tb.Get(1));
    float* o = tb.Get(2);
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) {
      const float s = Sigmoid(xr[i]);
      o[i] = dr[i] * s * (1.0f + xr[i] * (1.0f - s));
    }
    StoreRow(dx, off, o, len, true);
  }
}

void MseLossForwardCpu(Device& d, const TensorView& loss, const TensorView& pred,
                       const TensorView& target) {
  const int64_t n = pred.numel(), nb = Blocks(n);
  const int nt = Threads(d);
  ThreadBuffers tb(d, nt, 2, kBlock);
  Scratch partial(d, static_cast<size_t>(nb) * sizeof(double));
  double* part = static_cast<double*>(partial.get());
#pragma omp parallel for num_threads(nt) schedule(static) if (Parallel(nt, n))
  for (int64_t blk = 0; blk < nb; ++blk) {
    const int64_t off = blk * kBlock, len = std::min(kBlock, n - off);
    const float* p = LoadRow(pred, off, len, tb.Get(0));
    const float* t = LoadRow(target, off, len, tb.Get(1));
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < len; ++i) s += (p[i] - t[i]) * (p[i] - t[i]);
    part[blk] = s;
  }
  double total = 0;
  for (int64_t blk = 0; blk < nb; ++blk) total += part[blk];
  *loss.as<float>() = static_cast<float>(total / static_cast<double>(n));
}

void MseLossBackwardCpu(Device& d, const TensorView& dpred, const TensorView& pred,
                        const TensorView& target, float dloss) {
  const int64_t n = pred.numel();
  const int nt = Threads(d);
  const float k = static_cast<float>(2.0 * dloss / static_cast<double>(n));
  ThreadBuffers tb(d, nt, 3, kBlock);
#pragma omp parallel for num_threads(nt) schedule(static) if (Parallel(nt, n))
  for (int64_t blk = 0; blk < Blocks(n); ++blk) {
    const int64_t off = blk * kBlock, len = std::min(kBlock, n - off);
    const float* p = LoadRow(pred, off, len, tb.Get(0));
    const float* t = LoadRow(target, off, len, tb.Get(1));
    float* o = tb.Get(2);
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) o[i] = k * (p[i] - t[i]);
    StoreRow(dpred, off, o, len, true);
  }
}

void TimestepEmbeddingCpu(Device& d, const TensorView& out, const TensorView& t,
                          const TimestepEmbeddingParams& p) {
  const int64_t B = out.dim(0), dim = out.dim(1), half = dim / 2;
  const int nt = Threads(d);
  // PyTorch's order, each step rounded to fp32: exponent = (-ln(max_period)
  // as fp32) * i / (half - shift); freq = exp(exponent); arg = t * freq.
  const float neg_log = -static_cast<float>(std::log(static_cast<double>(p.max_period)));
  const float denom =
      static_cast<float>(static_cast<double>(half) - static_cast<double>(p.downscale_freq_shift));
  ThreadBuffers tb(d, nt, 1, dim);
#pragma omp parallel for num_threads(nt) schedule(static) if (Parallel(nt, out.numel()))
  for (int64_t b = 0; b < B; ++b) {
    const float tb_val =
        t.dtype == DType::kI32 ? static_cast<float>(t.as<int32_t>()[b]) : t.as<float>()[b];
    float* o = tb.Get(0);
    float* first = o;
    float* second = o + half;
    if (p.flip_sin_to_cos) std::swap(first, second);  // first gets sin
    for (int64_t i = 0; i < half; ++i) {
      const float freq = std::exp(neg_log * static_cast<float>(i) / denom);
      float arg = tb_val * freq;
      if (p.scale != 1.0f) arg = p.scale * arg;
      first[i] = std::sin(arg);
      second[i] = std::cos(arg);
    }
    if (dim % 2 == 1) o[dim - 1] = 0.0f;
    StoreRow(out, b * dim, o, dim, false);
  }
}

}  // namespace

void RegisterDiffusionOps() {
  constexpr DeviceKind k = DeviceKind::kCpu;
  const auto both = {DType::kF32, DType::kBF16};
  RegisterOp<SiluForwardFn>(k, "activation.silu_forward", &SiluForwardCpu, both);
  RegisterOp<SiluBackwardFn>(k, "activation.silu_backward", &SiluBackwardCpu, both);
  RegisterOp<MseLossForwardFn>(k, "loss.mse_forward", &MseLossForwardCpu, both);
  RegisterOp<MseLossBackwardFn>(k, "loss.mse_backward", &MseLossBackwardCpu, both);
  RegisterOp<TimestepEmbeddingFn>(k, "embedding.timestep_embedding", &TimestepEmbeddingCpu, both);
}

}  // namespace anvil::kernels::cpu
