// bf16 / fp16 conversions against the hardware and a double reference: every
// fp16 bit pattern widens like the F16C instruction, narrowing matches F16C
// (fp16) and a double reference of round-to-nearest-even (bf16) on edge cases
// and random floats; bulk equals scalar. (The collectives use these too.)
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/convert.h"

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace anvil::kernels {
namespace {

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::vector<float> TestFloats() {
  std::vector<float> v = {0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65519.99f, 65520.0f, 1e10f,
                          std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity(), 0x1.0p-14f, 0x1.0p-24f,
                          0x1.0p-25f, 0x1.8p-25f, 0x1.0p-26f, 6.1e-5f, 1.0f + 0x1.0p-8f,
                          1.0f + 0x1.0p-11f, 1.0f + 0x3.0p-11f, 3.3895314e38f};
  for (uint64_t i = 0; i < 200000; ++i) {
    // Random bit patterns across all exponents, and values near 1.
    v.push_back(FromBits(static_cast<uint32_t>(Mix(i))));
    v.push_back(static_cast<float>((static_cast<double>(Mix(i + (1ull << 40)) >> 11) * 0x1.0p-53 - 0.5) * 140000.0));
  }
  return v;
}

// bf16 by definition: the nearest bf16 to f, ties to even, via integer math
// on the exact value (a bf16 is a float with 16 zero low bits).
uint16_t Bf16Reference(float f) {
  const uint32_t u = Bits(f);
  if (std::isinf(f)) return static_cast<uint16_t>(u >> 16);
  const uint32_t lo = u & 0xffff0000u;  // truncation toward zero
  const uint32_t hi = lo + 0x10000u;    // next bf16 away from zero
  const double dl = FromBits(lo);
  // Past the largest finite bf16 the next value is 2^128 (rounds to inf).
  const double dh = (hi & 0x7fffffffu) == 0x7f800000u ? std::copysign(0x1.0p128, f)
                                                      : static_cast<double>(FromBits(hi));
  const double d = f;
  const double el = std::fabs(d - dl);
  const double eh = std::fabs(dh - d);
  if (el < eh || (el == eh && ((lo >> 16) & 1u) == 0)) return static_cast<uint16_t>(lo >> 16);
  return static_cast<uint16_t>(hi >> 16);
}

TEST(ConvertHardwareTest, WidenHalfEveryPattern) {
  std::vector<uint16_t> all(65536);
  for (uint32_t i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
  std::vector<float> vec(65536);
  ConvertF16ToF32(vec.data(), all.data(), all.size());
  for (uint32_t i = 0; i < 65536; ++i) {
    const float s = F16ToF32(static_cast<uint16_t>(i));
    if (std::isnan(s)) {
      EXPECT_TRUE(std::isnan(vec[i])) << i;
      continue;
    }
    ASSERT_EQ(Bits(s), Bits(vec[i])) << "pattern " << i;
#if defined(__F16C__)
    ASSERT_EQ(Bits(s), Bits(_cvtsh_ss(static_cast<uint16_t>(i)))) << "pattern " << i;
#endif
  }
}

TEST(ConvertHardwareTest, NarrowHalfMatchesHardware) {
  const std::vector<float> in = TestFloats();
  std::vector<uint16_t> vec(in.size());
  ConvertF32ToF16(vec.data(), in.data(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const uint16_t s = F32ToF16(in[i]);
    if (std::isnan(in[i])) {
      EXPECT_EQ(s & 0x7c00u, 0x7c00u);
      EXPECT_NE(s & 0x3ffu, 0u);
      continue;
    }
    ASSERT_EQ(s, vec[i]) << "value " << in[i];
#if defined(__F16C__)
    ASSERT_EQ(s, _cvtss_sh(in[i], _MM_FROUND_TO_NEAREST_INT)) << "value " << in[i];
#endif
    // Round trip of every representable value is exact.
    ASSERT_EQ(F32ToF16(F16ToF32(s)), s) << in[i];
  }
}

TEST(ConvertHardwareTest, Bf16RoundsToNearestEven) {
  const std::vector<float> in = TestFloats();
  std::vector<uint16_t> out(in.size());
  ConvertF32ToBF16(out.data(), in.data(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (std::isnan(in[i])) {
      EXPECT_TRUE(std::isnan(BF16ToF32(out[i]))) << "NaN must stay NaN";
      continue;
    }
    ASSERT_EQ(out[i], Bf16Reference(in[i])) << "value " << in[i];
  }
  // Ties: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 -> even (1).
  EXPECT_EQ(BF16ToF32(F32ToBF16(1.0f + 0x1.0p-8f)), 1.0f);
  EXPECT_EQ(BF16ToF32(F32ToBF16(1.0f + 0x3.0p-8f)), 1.0f + 0x1.0p-6f);
  // A NaN whose payload lives only in the low bits must not become inf.
  EXPECT_TRUE(std::isnan(BF16ToF32(F32ToBF16(FromBits(0x7f800001u)))));
}

}  // namespace
}  // namespace anvil::kernels
