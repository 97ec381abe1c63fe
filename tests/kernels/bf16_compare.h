// BF16 helpers for the diffusion-op tests: rounding host vectors to bf16 and
// the tolerance of bf16_ops_test.cc (same policy, here in a header so the
// new op tests can share it): a BF16 output is the fp32 result rounded once
// (error <= 2^-9 of its magnitude) plus a reduction-order term of a few fp32
// ulps for a length-K reduction:
//   |got - want| <= 2^-8 * |want| + (K * 2^-22 + 2^-12) * max|want|
// (the relative term only for BF16 outputs).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "kernels/cpu/convert.h"
#include "kernels/tensor.h"
#include "tests/kernels/test_util.h"

namespace anvil::kernels::testing {

using U16 = std::vector<uint16_t>;

inline U16 ToBf16(const FVec& v) {
  U16 r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = F32ToBF16(v[i]);
  return r;
}
inline FVec FromBf16(const U16& v) {
  FVec r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = BF16ToF32(v[i]);
  return r;
}
inline FVec Rounded(const FVec& v) { return FromBf16(ToBf16(v)); }
inline TensorView B16(const U16& v, std::initializer_list<int64_t> shape) {
  return View(v.data(), DType::kBF16, shape);
}

inline ::testing::AssertionResult Bf16Close(const FVec& got, const FVec& want, int64_t K,
                                            bool bf16_out) {
  if (got.size() != want.size()) return ::testing::AssertionFailure() << "size differs";
  double mx = 0;
  for (float w : want) mx = std::max(mx, std::fabs(static_cast<double>(w)));
  const double floor = (K * std::ldexp(1.0, -22) + std::ldexp(1.0, -12)) * std::max(mx, 1e-6);
  const double rel = bf16_out ? std::ldexp(1.0, -8) : 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(err <= rel * std::fabs(want[i]) + floor)) {
      return ::testing::AssertionFailure() << "element " << i << ": got " << got[i] << ", want "
                                           << want[i] << " (max |want| " << mx << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace anvil::kernels::testing
