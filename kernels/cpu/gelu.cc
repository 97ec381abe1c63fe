// GELU, tanh approximation, forward and backward (elementwise).
//
// out = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3);
// dinp += dout * (0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) du/dx).
// Evaluated through s = 0.5 (1 + tanh u) = 1 / (1 + e), e = exp(-2u), and
// 1 - s = e / (1 + e): no cancellation, so the result keeps full relative
// precision in the negative tail, where 1 + tanh(u) is tiny.
// The exponent argument is capped at kMaxArg so s stays a normal float: for
// x < ~-10 the true output is below 1e-30 in magnitude anyway, and letting s
// go subnormal made the backward pass ~10x slower (microcode assists).
#include <algorithm>
#include <cstdint>

#include "kernels/cpu/convert.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vec_math.h"

namespace anvil::kernels::cpu {
namespace {
constexpr float kS = 0.7978845608028654f;  // sqrt(2/pi)
constexpr float kC = 0.044715f;
constexpr float kMaxArg = 80.0f;  // exp(80) ~ 5.5e34: 1/(1+e) stays normal

inline float ExpNeg2U(float x) {
  const float a = -2.0f * kS * (x + kC * x * x * x);
  return FastExp(std::min(a, kMaxArg));  // NaN passes through (min keeps a unless kMaxArg < a)
}
// Storage types: float, or bf16 bit patterns (uint16_t). The math is fp32
// either way, in blocks: a bf16 block is widened into a stack buffer, and
// its result rounded once on the way back (convert.h's vector converters,
// not a per-element conversion inside the math loop). Elementwise, so the
// result does not depend on the thread count. The math loops vectorise only
// with -fno-trapping-math (kernels/CMakeLists.txt) where the CPU has no
// AVX-512: the exp argument's clamp is a compare GCC must not speculate.
constexpr int64_t kBlock = 2048;

// A block's values as fp32: the float storage itself, or bf16 widened into buf.
inline const float* In(const float* p, int64_t, float*) { return p; }
inline const float* In(const uint16_t* p, int64_t n, float* buf) {
  ConvertBF16ToF32(buf, p, static_cast<size_t>(n));
  return buf;
}
// A block to update in place (Done writes a bf16 one back).
inline float* InOut(float* p, int64_t, float*) { return p; }
inline float* InOut(uint16_t* p, int64_t n, float* buf) {
  In(p, n, buf);
  return buf;
}
// A block to write (Done rounds a bf16 one into place).
inline float* Out(float* p, float*) { return p; }
inline float* Out(uint16_t*, float* buf) { return buf; }
inline void Done(float*, const float*, int64_t) {}
inline void Done(uint16_t* p, const float* buf, int64_t n) {
  ConvertF32ToBF16(p, buf, static_cast<size_t>(n));
}

template <class Out_, class In_>
void Forward(int nt, Out_* out, const In_* inp, size_t n) {
  const int64_t len = static_cast<int64_t>(n), blocks = (len + kBlock - 1) / kBlock;
#pragma omp parallel for num_threads(nt) schedule(static) if (n >= kMinParallelElems)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t off = b * kBlock, m = std::min(kBlock, len - off);
    alignas(64) float xb[kBlock], yb[kBlock], den[kBlock];
    const float* x = In(inp + off, m, xb);
    float* y = Out(out + off, yb);
    // Denominators first, then one divide per element: in a single loop the
    // compiler divided twice per vector (x by the clamped branch's constant
    // denominator too, then blended), and the divider is the bottleneck
    // (kernel_bench, Zen 5, bf16: 1.86 -> 0.57 ms per call). Same operations,
    // bit-identical results. `den` is its own buffer: y may be x (in place).
#pragma omp simd
    for (int64_t i = 0; i < m; ++i) den[i] = 1.0f + ExpNeg2U(x[i]);
#pragma omp simd
    for (int64_t i = 0; i < m; ++i) y[i] = x[i] / den[i];
    Done(out + off, y, m);
  }
}

template <class T>
void Backward(int nt, T* dinp, const T* inp, const T* dout, size_t n) {
  const int64_t len = static_cast<int64_t>(n), blocks = (len + kBlock - 1) / kBlock;
#pragma omp parallel for num_threads(nt) schedule(static) if (n >= kMinParallelElems)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t off = b * kBlock, m = std::min(kBlock, len - off);
    alignas(64) float xb[kBlock], db[kBlock], gb[kBlock];
    const float* x = In(inp + off, m, xb);
    const float* dy = In(dout + off, m, db);
    float* g = InOut(dinp + off, m, gb);
#pragma omp simd
    for (int64_t i = 0; i < m; ++i) {
      const float xi = x[i];
      const float e = ExpNeg2U(xi);
      const float s = 1.0f / (1.0f + e);
      const float du = kS * (1.0f + 3.0f * kC * xi * xi);
      // 0.5 x (1 - tanh^2) du = 2 x s (1 - s) du, with 1 - s = e s.
      const float grad = s + 2.0f * xi * s * (e * s) * du;
      g[i] = g[i] + dy[i] * grad;
    }
    Done(dinp + off, g, m);
  }
}

}  // namespace

void GeluForward(int nt, float* out, const float* inp, size_t n) { Forward(nt, out, inp, n); }
void GeluBackward(int nt, float* dinp, const float* inp, const float* dout, size_t n) {
  Backward(nt, dinp, inp, dout, n);
}
void GeluForwardBf16(int nt, uint16_t* out, const uint16_t* inp, size_t n) {
  Forward(nt, out, inp, n);
}
void GeluBackwardBf16(int nt, uint16_t* dinp, const uint16_t* inp, const uint16_t* dout, size_t n) {
  Backward(nt, dinp, inp, dout, n);
}

}  // namespace anvil::kernels::cpu
