// How closely two gradient vectors of one model agree: the model tests'
// bf16-vs-fp32 and thread-count checks.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <vector>

#include "gtest/gtest.h"

namespace anvil::testing {

struct GradAgreement {
  double cosine = 0;      // of the angle between the two vectors
  double norm_ratio = 0;  // |got| / |ref|
  double max_diff = 0;    // max_i |got_i - ref_i| / max_i |ref_i|
};

inline GradAgreement CompareGrads(const std::vector<float>& ref, const std::vector<float>& got) {
  EXPECT_EQ(ref.size(), got.size());
  double dot = 0, nr = 0, ng = 0, max_ref = 0, max_diff = 0;
  for (size_t i = 0; i < std::min(ref.size(), got.size()); ++i) {
    const double r = ref[i], g = got[i];
    dot += r * g;
    nr += r * r;
    ng += g * g;
    max_ref = std::max(max_ref, std::fabs(r));
    max_diff = std::max(max_diff, std::fabs(g - r));
  }
  return {dot / std::sqrt(nr * ng), std::sqrt(ng / nr), max_diff / std::max(max_ref, 1e-30)};
}

// A bf16 step at another thread count. Bit-equality is not promised: the
// GEMM libraries' threads may change an fp32 sum's order (OpenBLAS's Zen
// kernels: a 77x48x72 sgemm's last bit differs between 1 and 2 threads), and
// one such bit can move a value across a bf16 rounding boundary (2^-8
// relative), which later layers carry. The bounds are far above that and far
// below what a race or a thread-dependent bug (a lost or doubled slice) gives.
inline void ExpectSameStepAtAnotherThreadCount(const char* what, double loss, double loss_other,
                                               const std::vector<float>& grads,
                                               const std::vector<float>& grads_other) {
  const GradAgreement a = CompareGrads(grads, grads_other);
  std::printf("%s, other thread count: loss %.7f vs %.7f, gradient cosine %.8f, max diff %.2e\n",
              what, loss_other, loss, a.cosine, a.max_diff);
  EXPECT_NEAR(loss_other, loss, 1e-5 * std::fabs(loss)) << what;
  EXPECT_GT(a.cosine, 0.99999) << what;
  EXPECT_LT(a.max_diff, 1e-3) << what;
}

}  // namespace anvil::testing
