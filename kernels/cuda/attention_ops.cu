// CUDA implementation of the attention family (kernels/ops/attention.h):
// scaled dot-product attention over strided (B,T,heads,HS) views, causal or
// not, grouped-query (NH % NKV == 0), F32 or BF16, flash style: nothing of
// size T x T is stored.
//
// One warp per row. Forward: a query row walks its keys with an online
// softmax (running max m, sum l, fp32 accumulator rescaled by exp(m_old -
// m_new)); out = acc / l and lse = m + log l (of the scaled scores), as the
// CPU's flash_attention.cc. Backward recomputes P = exp(scale q.k - lse)
// from the saved lse with D = rowsum(dout * out):
//   dq_i += scale sum_j P_ij (dout_i.v_j - D_i) k_j      (a warp per query row)
//   dk_j += scale sum_i P_ij (dout_i.v_j - D_i) q_i      (a warp per key row,
//   dv_j += sum_i P_ij dout_i                             over the group's heads)
// so every gradient element has one writer (no atomics, deterministic) and
// bf16 gradients are read, added in fp32 and rounded once. Each lane holds
// HS/32 (rounded up to 1, 2, 4 or 8) elements of a row: HS <= 256.
#include <cmath>

#include "kernels/cuda/family_util.cuh"
#include "kernels/cuda/reduce.cuh"
#include "kernels/op_registry.h"
#include "kernels/ops/attention.h"

namespace anvil::kernels::cuda {
namespace {

constexpr int kWarps = 4;  // rows per block

struct Heads {
  TArg a;
  int64_t sb, st, sh;
  __device__ int64_t at(int64_t b, int64_t t, int64_t h) const { return b * sb + t * st + h * sh; }
};
Heads HeadsOf(const TensorView& v) { return Heads{Arg(v), v.stride[0], v.stride[1], v.stride[2]}; }

struct Dims {
  int64_t B, T, NH, NKV;
  int HS;
  bool causal;
  float scale;
};

template <int P>
__device__ __forceinline__ void LoadRow(float (&r)[P], const Heads& v, int64_t off, int HS,
                                        int lane) {
  for (int j = 0; j < P; ++j) {
    const int e = lane + 32 * j;
    r[j] = e < HS ? v.a.ld(off + e) : 0.0f;
  }
}

template <int P>
__device__ __forceinline__ float Dot(const float (&a)[P], const float (&b)[P]) {
  float s = 0.0f;
  for (int j = 0; j < P; ++j) s += a[j] * b[j];
  return WarpSum(s);
}

__device__ __forceinline__ int64_t WarpRow() {
  return blockIdx.x * static_cast<int64_t>(kWarps) + threadIdx.x / 32;
}

// Rows ordered (b, h, t), the layout of lse (B,NH,T).
template <int P>
__global__ void ForwardKernel(Heads out, float* lse, Heads q, Heads k, Heads v, Dims d) {
  const int64_t row = WarpRow();
  if (row >= d.B * d.NH * d.T) return;  // whole warps exit together
  const int lane = threadIdx.x % 32;
  const int64_t t = row % d.T, h = (row / d.T) % d.NH, b = row / (d.T * d.NH);
  const int64_t g = h / (d.NH / d.NKV);
  float qr[P], kr[P], vr[P], acc[P];
  LoadRow(qr, q, q.at(b, t, h), d.HS, lane);
  for (int j = 0; j < P; ++j) acc[j] = 0.0f;
  float m = -INFINITY, l = 0.0f;
  const int64_t kend = d.causal ? t + 1 : d.T;
  for (int64_t j = 0; j < kend; ++j) {
    LoadRow(kr, k, k.at(b, j, g), d.HS, lane);
    const float s = Dot(qr, kr) * d.scale;
    const float m_new = fmaxf(m, s);
    const float corr = expf(m - m_new);  // 0 on the first key (m = -inf)
    const float p = expf(s - m_new);
    l = l * corr + p;
    LoadRow(vr, v, v.at(b, j, g), d.HS, lane);
    for (int e = 0; e < P; ++e) acc[e] = acc[e] * corr + p * vr[e];
    m = m_new;
  }
  const float inv = 1.0f / l;
  const int64_t o = out.at(b, t, h);
  for (int e = 0; e < P; ++e) {
    const int c = lane + 32 * e;
    if (c < d.HS) out.a.st(o + c, acc[e] * inv);
  }
  if (lane == 0) lse[row] = m + logf(l);
}

// D (B,NH,T) = rowsum(dout * out).
template <int P>
__global__ void RowDotKernel(float* D, Heads dout, Heads out, Dims d) {
  const int64_t row = WarpRow();
  if (row >= d.B * d.NH * d.T) return;
  const int lane = threadIdx.x % 32;
  const int64_t t = row % d.T, h = (row / d.T) % d.NH, b = row / (d.T * d.NH);
  float a[P], c[P];
  LoadRow(a, dout, dout.at(b, t, h), d.HS, lane);
  LoadRow(c, out, out.at(b, t, h), d.HS, lane);
  const float s = Dot(a, c);
  if (lane == 0) D[row] = s;
}

template <int P>
__global__ void DqKernel(Heads dq, Heads dout, Heads q, Heads k, Heads v, const float* lse,
                         const float* D, Dims d) {
  const int64_t row = WarpRow();
  if (row >= d.B * d.NH * d.T) return;
  const int lane = threadIdx.x % 32;
  const int64_t t = row % d.T, h = (row / d.T) % d.NH, b = row / (d.T * d.NH);
  const int64_t g = h / (d.NH / d.NKV);
  float qr[P], dor[P], kr[P], vr[P], acc[P];
  LoadRow(qr, q, q.at(b, t, h), d.HS, lane);
  LoadRow(dor, dout, dout.at(b, t, h), d.HS, lane);
  for (int e = 0; e < P; ++e) acc[e] = 0.0f;
  const float L = lse[row], Di = D[row];
  const int64_t kend = d.causal ? t + 1 : d.T;
  for (int64_t j = 0; j < kend; ++j) {
    LoadRow(kr, k, k.at(b, j, g), d.HS, lane);
    LoadRow(vr, v, v.at(b, j, g), d.HS, lane);
    const float p = expf(Dot(qr, kr) * d.scale - L);
    const float ds = p * (Dot(dor, vr) - Di) * d.scale;
    for (int e = 0; e < P; ++e) acc[e] += ds * kr[e];
  }
  const int64_t o = dq.at(b, t, h);
  for (int e = 0; e < P; ++e) {
    const int c = lane + 32 * e;
    if (c < d.HS) dq.a.add(o + c, acc[e]);
  }
}

// Rows ordered (b, g, j) over key rows.
template <int P>
__global__ void DkvKernel(Heads dk, Heads dv, Heads dout, Heads q, Heads k, Heads v,
                          const float* lse, const float* D, Dims d) {
  const int64_t row = WarpRow();
  if (row >= d.B * d.NKV * d.T) return;
  const int lane = threadIdx.x % 32;
  const int64_t j = row % d.T, g = (row / d.T) % d.NKV, b = row / (d.T * d.NKV);
  const int64_t rep = d.NH / d.NKV;
  float kr[P], vr[P], qr[P], dor[P], dk_acc[P], dv_acc[P];
  LoadRow(kr, k, k.at(b, j, g), d.HS, lane);
  LoadRow(vr, v, v.at(b, j, g), d.HS, lane);
  for (int e = 0; e < P; ++e) dk_acc[e] = dv_acc[e] = 0.0f;
  for (int64_t h = g * rep; h < (g + 1) * rep; ++h) {
    for (int64_t i = d.causal ? j : 0; i < d.T; ++i) {
      const int64_t r = (b * d.NH + h) * d.T + i;
      LoadRow(qr, q, q.at(b, i, h), d.HS, lane);
      LoadRow(dor, dout, dout.at(b, i, h), d.HS, lane);
      const float p = expf(Dot(qr, kr) * d.scale - lse[r]);
      const float ds = p * (Dot(dor, vr) - D[r]) * d.scale;
      for (int e = 0; e < P; ++e) {
        dv_acc[e] += p * dor[e];
        dk_acc[e] += ds * qr[e];
      }
    }
  }
  const int64_t ok = dk.at(b, j, g), ov = dv.at(b, j, g);
  for (int e = 0; e < P; ++e) {
    const int c = lane + 32 * e;
    if (c < d.HS) {
      dk.a.add(ok + c, dk_acc[e]);
      dv.a.add(ov + c, dv_acc[e]);
    }
  }
}

Dims DimsOf(const TensorView& q, const TensorView& k, const AttentionParams& p) {
  Dims d{q.shape[0], q.shape[1], q.shape[2], k.shape[2], static_cast<int>(q.shape[3]),
         p.causal,   p.scale};
  if (d.scale == 0.0f) d.scale = 1.0f / std::sqrt(static_cast<float>(d.HS));
  ANVIL_KCHECK(d.HS <= 256, "CUDA attention supports head sizes up to 256");
  return d;
}

int PerLane(int HS) {
  const int need = (HS + 31) / 32;
  return need <= 1 ? 1 : need <= 2 ? 2 : need <= 4 ? 4 : 8;
}

unsigned Grid(int64_t rows) { return CeilDiv(static_cast<size_t>(rows), kWarps); }

// Launches Kernel<P> for the head size's P with the given arguments.
#define ANVIL_ATTN_LAUNCH(KERNEL, ROWS, ...)                           \
  do {                                                                 \
    const unsigned grid_ = Grid(ROWS);                                 \
    switch (PerLane(dims.HS)) {                                        \
      case 1:                                                          \
        KERNEL<1><<<grid_, 32 * kWarps, 0, ctx.stream>>>(__VA_ARGS__); \
        break;                                                         \
      case 2:                                                          \
        KERNEL<2><<<grid_, 32 * kWarps, 0, ctx.stream>>>(__VA_ARGS__); \
        break;                                                         \
      case 4:                                                          \
        KERNEL<4><<<grid_, 32 * kWarps, 0, ctx.stream>>>(__VA_ARGS__); \
        break;                                                         \
      default:                                                         \
        KERNEL<8><<<grid_, 32 * kWarps, 0, ctx.stream>>>(__VA_ARGS__); \
        break;                                                         \
    }                                                                  \
    ANVIL_CUDA_LAUNCH_CHECK();                                         \
  } while (0)

void AttentionForwardCuda(Device& dev, const TensorView& out, const TensorView& lse,
                          const TensorView& q, const TensorView& k, const TensorView& v,
                          const AttentionParams& p) {
  const Ctx& ctx = CtxOf(dev);
  const Dims dims = DimsOf(q, k, p);
  const int64_t rows = dims.B * dims.NH * dims.T;
  if (rows == 0) return;
  ANVIL_ATTN_LAUNCH(ForwardKernel, rows, HeadsOf(out), lse.as<float>(), HeadsOf(q), HeadsOf(k),
                    HeadsOf(v), dims);
}

void AttentionBackwardCuda(Device& dev, const TensorView& dq, const TensorView& dk,
                           const TensorView& dv, const TensorView& dout, const TensorView& q,
                           const TensorView& k, const TensorView& v, const TensorView& out,
                           const TensorView& lse, const AttentionParams& p) {
  const Ctx& ctx = CtxOf(dev);
  const Dims dims = DimsOf(q, k, p);
  const int64_t rows = dims.B * dims.NH * dims.T;
  if (rows == 0) return;
  Tmp D(dev, sizeof(float) * rows);
  ANVIL_ATTN_LAUNCH(RowDotKernel, rows, D.f(), HeadsOf(dout), HeadsOf(out), dims);
  ANVIL_ATTN_LAUNCH(DqKernel, rows, HeadsOf(dq), HeadsOf(dout), HeadsOf(q), HeadsOf(k), HeadsOf(v),
                    lse.as<float>(), D.f(), dims);
  ANVIL_ATTN_LAUNCH(DkvKernel, dims.B * dims.NKV * dims.T, HeadsOf(dk), HeadsOf(dv), HeadsOf(dout),
                    HeadsOf(q), HeadsOf(k), HeadsOf(v), lse.as<float>(), D.f(), dims);
}

#undef ANVIL_ATTN_LAUNCH

}  // namespace

void RegisterAttentionCudaOps() {
  constexpr DeviceKind k = DeviceKind::kCuda;
  const auto both = {DType::kF32, DType::kBF16};
  RegisterOp<AttentionForwardFn>(k, "attention.forward", &AttentionForwardCuda, both);
  RegisterOp<AttentionBackwardFn>(k, "attention.backward", &AttentionBackwardCuda, both);
}

}  // namespace anvil::kernels::cuda
