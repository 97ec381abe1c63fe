// MeasureSgemmPeakGflops returns a finite positive rate (the MFU denominator)
// and respects its size argument, so callers can keep it quick.
#include "kernels/cpu/peak.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>

namespace anvil::kernels {
namespace {

TEST(PeakTest, SmallMeasurementIsPositiveAndQuick) {
  const auto t0 = std::chrono::steady_clock::now();
  const double gflops = MeasureSgemmPeakGflops(1, 128, 2);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(std::isfinite(gflops));
  EXPECT_GT(gflops, 0.1);
  EXPECT_LT(gflops, 1e6);
  EXPECT_LT(s, 5.0);
}

}  // namespace
}  // namespace anvil::kernels
