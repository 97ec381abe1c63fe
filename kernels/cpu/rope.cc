// Rotary position embedding (Hugging Face Llama convention), in place over
// a strided (B,T,NH,hd) view, forward and backward.
//
// For position t and i < hd/2, with h = hd/2, a_i = t * theta^(-2i/hd):
//   forward   y_i = x_i cos a_i - x_{i+h} sin a_i,  y_{i+h} = x_{i+h} cos a_i + x_i sin a_i
//   backward  the transpose (inverse) rotation, applied to the gradient.
// The angle is formed as HF forms it (fp32 inverse frequency times the
// position, rounded to fp32) and its cos/sin evaluated in double, so the
// table matches HF's fp32 table to an ulp or so; it is cached (GetTable).
// Rows (b,t,head) are independent: row-parallel, each row widened to fp32
// (rows.h).
#include <omp.h>

#include <cmath>
#include <memory>
#include <mutex>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/rows.h"
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

// sign +1: forward rotation; -1: its inverse.
void Rotate(Device& d, const TensorView& x, float theta, float sign) {
  const int64_t B = x.shape[0], T = x.shape[1], NH = x.shape[2], hd = x.shape[3], h = hd / 2;
  const int nt = Threads(d);
  const std::shared_ptr<const RopeTable> table = GetTable(theta, T, hd);
  const float* cs = table->cos.data();
  const float* sn = table->sin.data();
  Scratch buf(d, sizeof(float) * hd * nt);
  const int64_t rows = B * T * NH;
  const bool par = rows * hd >= int64_t{kMinParallelElems};
#pragma omp parallel num_threads(nt) if (par)
  {
    float* r = buf.f32() + hd * omp_get_thread_num();
#pragma omp for schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t b = row / (T * NH), t = (row / NH) % T, head = row % NH;
      void* p = ElemPtr(x, b * x.stride[0] + t * x.stride[1] + head * x.stride[2]);
      LoadRow(r, p, x.dtype, hd);
      const float* c = cs + t * h;
      const float* s = sn + t * h;
#pragma omp simd
      for (int64_t i = 0; i < h; ++i) {
        const float x1 = r[i], x2 = r[i + h];
        const float si = sign * s[i];
        r[i] = x1 * c[i] - x2 * si;
        r[i + h] = x2 * c[i] + x1 * si;
      }
      StoreRow(p, x.dtype, r, hd);
    }
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
