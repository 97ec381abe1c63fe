// The peak measurements (sgemm through OpenBLAS, fp32 and bf16 through
// oneDNN) return a finite positive rate (the MFU denominators) and respect
// their size argument, so callers can keep them quick.
#include "kernels/cpu/peak.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>

namespace anvil::kernels {
namespace {

template <typename F>
void ExpectPositiveAndQuick(F measure) {
  const auto t0 = std::chrono::steady_clock::now();
  const double gflops = measure(1, 128, 2);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(std::isfinite(gflops));
  EXPECT_GT(gflops, 0.1);
  EXPECT_LT(gflops, 1e6);
  EXPECT_LT(s, 5.0);
}

TEST(PeakTest, SmallMeasurementIsPositiveAndQuick) {
  ExpectPositiveAndQuick(MeasureSgemmPeakGflops);
}

TEST(PeakTest, DnnlFp32MeasurementIsPositiveAndQuick) {
  ExpectPositiveAndQuick(MeasureDnnlSgemmPeakGflops);
}

TEST(PeakTest, Bf16MeasurementIsPositiveAndQuick) {
  ExpectPositiveAndQuick(MeasureBf16GemmPeakGflops);
}

}  // namespace
}  // namespace anvil::kernels
