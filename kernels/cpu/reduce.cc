// Whole-buffer reductions: sum of squares (double accumulation) and the
// inf/NaN test used for loss-scale overflow detection.
//
// SquaredNorm is bitwise deterministic for a given thread count: each thread
// reduces a fixed static slice and the partials are combined in thread order
// (an OpenMP reduction clause combines in finishing order). HasNonFinite
// looks at exponent bits, so it is immune to finite-math assumptions.
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cstdint>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/parallel.h"

namespace anvil::kernels::cpu {
namespace {
constexpr int kMaxReduceThreads = 64;
}  // namespace

double SquaredNorm(int nt, const float* x, size_t n) {
  const int team = n >= kMinParallelElems ? std::min(nt, kMaxReduceThreads) : 1;
  struct alignas(64) Partial {
    double v = 0.0;
  };
  Partial partial[kMaxReduceThreads];
#pragma omp parallel num_threads(team)
  {
    const int tid = omp_get_thread_num();
    const Slice s = ThreadSlice(static_cast<int64_t>(n), 16, tid, omp_get_num_threads());
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = s.begin; i < s.end; ++i) {
      const double d = x[i];
      sum += d * d;
    }
    partial[tid].v = sum;
  }
  double total = 0.0;
  for (int t = 0; t < team; ++t) total += partial[t].v;
  return total;
}

bool HasNonFinite(int nt, const float* x, size_t n) {
  const int64_t len = static_cast<int64_t>(n);
  uint32_t bad = 0;
#pragma omp parallel for simd num_threads(nt) schedule(static) \
    reduction(|                                                \
              : bad) if (n >= kMinParallelElems)
  for (int64_t i = 0; i < len; ++i) {
    bad |= static_cast<uint32_t>((std::bit_cast<uint32_t>(x[i]) & 0x7f800000u) == 0x7f800000u);
  }
  return bad != 0;
}

}  // namespace anvil::kernels::cpu
