// Rotary position embedding (Hugging Face Llama convention), in place over
// a strided (B,T,NH,hd) view, forward and backward.
//
// For position t and i < hd/2, with h = hd/2, a_i = t * theta^(-2i/hd):
//   forward   y_i = x_i cos a_i - x_{i+h} sin a_i,  y_{i+h} = x_{i+h} cos a_i + x_i sin a_i
//   backward  the transpose (inverse) rotation, applied to the gradient.
// The angle is formed as HF forms it (fp32 inverse frequency times the
// position, rounded to fp32) and its cos/sin evaluated in double, so the
// table matches HF's fp32 table to an ulp or so; it is cached (GetTable).
// Rows (b,t,head) are independent: row-parallel, fp32 math on F32 or BF16
// storage (each element widened on load, rounded once on store).
#include <cmath>
#include <memory>
#include <mutex>
#include <vector>

#include "kernels/cpu/convert.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/typed.h"
#include "kernels/cpu/typed_ops.h"

namespace anvil::kernels::cpu {
namespace {

// The (T, hd/2) cos and sin tables of one (theta, T, hd), built once and
// shared: forward and backward of every layer use the same table, so a
// one-entry cache (rebuilt when a call asks for another shape) hits on
// every call of a training step. Callers hold the shared_ptr while they
// read, so a rebuild for another shape never frees a table in use.
struct RopeTable {
  float theta = 0;
  int64_t T = 0, hd = 0;
  std::vector<float> cos, sin;  // (T, hd/2) each
};

std::shared_ptr<const RopeTable> GetTable(float theta, int64_t T, int64_t hd) {
  static std::mutex mu;
  static std::shared_ptr<const RopeTable> cached;
  std::lock_guard<std::mutex> lock(mu);
  if (cached != nullptr && cached->theta == theta && cached->T >= T && cached->hd == hd) {
    return cached;  // a longer table's first T rows are the same angles
  }
  auto t = std::make_shared<RopeTable>();
  t->theta = theta;
  t->T = T;
  t->hd = hd;
  const int64_t h = hd / 2;
  t->cos.resize(T * h);
  t->sin.resize(T * h);
  for (int64_t i = 0; i < h; ++i) {
    const float inv_freq = static_cast<float>(
        1.0 / std::pow(static_cast<double>(theta), static_cast<double>(2 * i) / hd));
    for (int64_t p = 0; p < T; ++p) {
      const double a = static_cast<float>(p) * inv_freq;  // fp32 product, like HF
      t->cos[p * h + i] = static_cast<float>(std::cos(a));
      t->sin[p * h + i] = static_cast<float>(std::sin(a));
    }
  }
  cached = t;
  return cached;
}

inline float Load(const float* p, int64_t i) { return p[i]; }
inline float Load(const uint16_t* p, int64_t i) { return BF16ToF32(p[i]); }
inline void Store(float* p, int64_t i, float v) { p[i] = v; }
inline void Store(uint16_t* p, int64_t i, float v) { p[i] = F32ToBF16(v); }

// Rotates every (b,t,head) row of x, stored as S (float or bf16 bits), in
// place; sign +1: forward rotation, -1: its inverse. Each element is read
// once and written once, rounded once.
template <class S>
void RotateRows(int nt, const TensorView& x, const RopeTable& table, float sign) {
  const int64_t T = x.shape[1], NH = x.shape[2], hd = x.shape[3], h = hd / 2;
  const int64_t rows = x.shape[0] * T * NH;
  const float* cs = table.cos.data();
  const float* sn = table.sin.data();
  S* base = static_cast<S*>(x.data);
  const bool par = rows * hd >= int64_t{kMinParallelElems};
#pragma omp parallel for num_threads(nt) schedule(static) if (par)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t b = row / (T * NH), t = (row / NH) % T, head = row % NH;
    S* p = base + b * x.stride[0] + t * x.stride[1] + head * x.stride[2];
    const float* c = cs + t * h;
    const float* s = sn + t * h;
#pragma omp simd
    for (int64_t i = 0; i < h; ++i) {
      const float x1 = Load(p, i), x2 = Load(p, i + h);
      const float si = sign * s[i];
      Store(p, i, x1 * c[i] - x2 * si);
      Store(p, i + h, x2 * c[i] + x1 * si);
    }
  }
}

void Rotate(Device& d, const TensorView& x, float theta, float sign) {
  const std::shared_ptr<const RopeTable> table = GetTable(theta, x.shape[1], x.shape[3]);
  if (x.dtype == DType::kF32) {
    RotateRows<float>(Threads(d), x, *table, sign);
  } else {
    RotateRows<uint16_t>(Threads(d), x, *table, sign);
  }
}

}  // namespace

void RopeForwardCpu(Device& d, const TensorView& x, const RopeParams& p) {
  Rotate(d, x, p.theta, 1.0f);
}

void RopeBackwardCpu(Device& d, const TensorView& dx, const RopeParams& p) {
  Rotate(d, dx, p.theta, -1.0f);
}

}  // namespace anvil::kernels::cpu
