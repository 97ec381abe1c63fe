// Reference checks for reduction results, shared by the thread matrix and
// the multi-process worker. Integers are checked exactly; floats against a
// double-precision sum of the inputs as the buffers held them, with a bound
// from the dtype's unit roundoff u (2^-24 fp32, 2^-8 bf16, 2^-11 fp16):
// every rounding of a partial sum errs by at most u * sum|x_i|, so
//  - fp32, and bf16/fp16 staged in fp32: N fp32 roundings + one final
//    rounding to the dtype: N 2^-24 sum|x| + u |result|;
//  - bf16/fp16 reduced on the wire: N-1 roundings to the dtype (+ avg):
//    (N-1) u sum|x| + u |result|;
// plus 2^-24 N for fp16 subnormal spacing; world size 1 must be exact.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/collectives/collective_options.h"
#include "tests/collectives/test_util.h"

namespace anvil::testing {

inline double UnitRoundoff(DType t) {
  switch (t) {
    case DType::kBF16: return 0x1.0p-8;
    case DType::kF16: return 0x1.0p-11;
    default: return 0x1.0p-24;
  }
}

inline bool IsFloat(DType t) { return t == DType::kF32 || t == DType::kBF16 || t == DType::kF16; }

struct ReduceCase {
  DType dtype;
  ReduceOp op;
  Accumulation acc;
  size_t count;
  uint64_t seed;
};

// Every reducible dtype x op (x accumulation for bf16/fp16 sums) x size.
inline std::vector<ReduceCase> ReduceCases(const std::vector<size_t>& sizes) {
  std::vector<ReduceCase> cases;
  uint64_t seed = 1;
  for (DType t : {DType::kF32, DType::kBF16, DType::kF16, DType::kI32, DType::kI64}) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax}) {
      std::vector<Accumulation> accs = {Accumulation::kFloat32};
      if ((t == DType::kBF16 || t == DType::kF16) && op != ReduceOp::kMax) {
        accs.push_back(Accumulation::kWireDType);
      }
      for (Accumulation acc : accs) {
        for (size_t n : sizes) cases.push_back({t, op, acc, n, seed++});
      }
    }
  }
  return cases;
}

inline std::string Describe(const ReduceCase& c, int world) {
  return absl::StrCat(std::string(DTypeName(c.dtype)), " ", std::string(ReduceOpName(c.op)),
                      c.acc == Accumulation::kWireDType ? " wire" : "", " n=", c.count,
                      " world=", world);
}

// Empty when element `got` (read at input index `src`) is right.
inline std::string CheckReduced(const ReduceCase& c, int world, double got, int64_t got_int,
                                size_t src) {
  if (!IsFloat(c.dtype)) {
    int64_t sum = 0;
    int64_t mx = INT64_MIN;
    for (int r = 0; r < world; ++r) {
      const int64_t x = static_cast<int64_t>(InputValue(c.dtype, c.seed, r, src));
      sum += x;
      mx = std::max(mx, x);
    }
    const int64_t want = c.op == ReduceOp::kMax ? mx : c.op == ReduceOp::kAvg ? sum / world : sum;
    if (got_int == want) return "";
    return absl::StrCat(Describe(c, world), " index ", src, ": got ", got_int, " want ", want);
  }
  TypedBuffer one(c.dtype, 1);
  double sum = 0;
  double sumabs = 0;
  double mx = -INFINITY;
  for (int r = 0; r < world; ++r) {
    one.Set(0, InputValue(c.dtype, c.seed, r, src));
    const double x = one.Get(0);
    sum += x;
    sumabs += std::fabs(x);
    mx = std::max(mx, x);
  }
  if (c.op == ReduceOp::kMax) {
    if (got == mx) return "";
    return absl::StrCat(Describe(c, world), " index ", src, ": max got ", got, " want ", mx);
  }
  const double scale = c.op == ReduceOp::kAvg ? 1.0 / world : 1.0;
  const double want = sum * scale;
  const double u = UnitRoundoff(c.dtype);
  double tol;
  if (c.dtype == DType::kF32 || c.acc == Accumulation::kFloat32) {
    tol = scale * world * 0x1.0p-24 * sumabs + u * std::fabs(want);
  } else {
    tol = scale * (world - 1) * u * sumabs + u * std::fabs(want);
  }
  tol += world * 0x1.0p-24;
  if (world == 1) tol = 0;
  if (std::fabs(got - want) <= tol) return "";
  return absl::StrCat(Describe(c, world), " index ", src, ": got ", got, " want ", want, " tol ",
                      tol);
}

}  // namespace anvil::testing
