// Helpers shared by the kernel tests: random data, closeness assertions,
// central finite differences, and a fixture parameterised over thread count.
//
// CPU device memory is plain host memory, so the CPU tests hand std::vector
// storage straight to the ops.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/device.h"
#include "tests/kernels/f32_ops.h"

namespace anvil::kernels::testing {

using DVec = std::vector<double>;
using FVec = std::vector<float>;

inline FVec Random(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  FVec v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

inline std::vector<int32_t> RandomTokens(size_t n, int V, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int32_t> dist(0, V - 1);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

inline DVec ToD(const FVec& v) { return DVec(v.begin(), v.end()); }

// Elementwise |got - want| <= atol + rtol * |want|; reports the worst element.
inline ::testing::AssertionResult AllClose(const FVec& got, const DVec& want, double atol,
                                           double rtol) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure() << "size " << got.size() << " vs " << want.size();
  }
  double worst = 0;
  size_t wi = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double excess = std::abs(got[i] - want[i]) / (atol + rtol * std::abs(want[i]));
    if (!(excess <= worst)) {  // also catches NaN
      worst = excess;
      wi = i;
      if (std::isnan(excess)) break;
    }
  }
  if (worst <= 1.0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "element " << wi << ": got " << got[wi] << ", want "
                                       << want[wi] << " (tolerance exceeded " << worst << "x)";
}

// Same, with the tolerance scaled by the largest |want| (for gradients,
// where small entries carry the absolute error of the large ones).
inline ::testing::AssertionResult AllCloseScaled(const FVec& got, const DVec& want, double tol) {
  double mx = 0;
  for (double w : want) mx = std::max(mx, std::abs(w));
  return AllClose(got, want, tol * std::max(mx, 1e-6), 0.0);
}

// want = base + k * delta, the expected content of an accumulated gradient.
inline DVec PlusScaled(const FVec& base, const DVec& delta, double k) {
  DVec r(base.size());
  for (size_t i = 0; i < r.size(); ++i) r[i] = base[i] + k * delta[i];
  return r;
}

inline double Dot(const FVec& a, const FVec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// Central differences of f with respect to every element of x (x is restored
// afterwards). The step actually taken is measured in float, so rounding of
// x +- eps does not bias the quotient.
inline DVec NumericalGrad(FVec& x, const std::function<double()>& f, float eps = 1e-3f) {
  DVec g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const float x0 = x[i];
    const float hi = x0 + eps, lo = x0 - eps;
    x[i] = hi;
    const double fp = f();
    x[i] = lo;
    const double fm = f();
    x[i] = x0;
    g[i] = (fp - fm) / (static_cast<double>(hi) - static_cast<double>(lo));
  }
  return g;
}

// Fixture: every CPU op test runs with 1, 2 and 3 threads (3 > cores here,
// and it makes uneven partitions).
class CpuKernelTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    device_ = MakeCpuDevice(GetParam());
    ops_ = std::make_unique<Ops>(*device_);
  }
  Ops& be() { return *ops_; }
  Device& device() { return *device_; }

 private:
  std::unique_ptr<Device> device_;
  std::unique_ptr<Ops> ops_;
};

// Names instances "1threads" etc. (appending, not prepending: GCC 12's
// -Wrestrict misfires on "t" + std::to_string(...) at -O3).
inline std::string ThreadsParamName(const ::testing::TestParamInfo<int>& info) {
  return std::to_string(info.param) + "threads";
}

#define ANVIL_THREADS_PARAMS(Suite)                                    \
  INSTANTIATE_TEST_SUITE_P(Threads, Suite, ::testing::Values(1, 2, 3), \
                           ::anvil::kernels::testing::ThreadsParamName)

}  // namespace anvil::kernels::testing
