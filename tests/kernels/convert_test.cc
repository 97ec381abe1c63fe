// bf16/fp16 conversions: every 16-bit pattern round-trips, widening matches
// an independent formula, narrowing matches an independent nearest-value
// search on crafted ties and random floats, bulk == scalar bit for bit, and
// the convert family's dispatch.
#include "kernels/cpu/convert.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "tests/kernels/test_util.h"

namespace anvil::kernels {
namespace {

bool IsBF16Nan(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0; }
bool IsF16Nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }

// Value of a non-negative finite-or-inf bf16/fp16 pattern, with the inf
// pattern standing for the next power of two (where round-to-nearest would
// put the first value past the largest finite one).
double BF16Value(uint16_t h) {
  if (h == 0x7f80) return std::ldexp(1.0, 128);
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}
double F16Value(uint16_t h) {
  const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e == 0) return std::ldexp(m, -24);
  if (e == 31) return 65536.0;  // only called on 0x7c00
  return std::ldexp(1024 + m, e - 25);
}

// Round-to-nearest-even by search over the table of representable values.
template <typename ValueFn>
uint16_t NearestEven(float f, uint16_t max_finite, uint16_t inf_bits, ValueFn value,
                     uint16_t sign_bit) {
  const double a = std::abs(static_cast<double>(f));
  const uint16_t sign = std::signbit(f) ? sign_bit : 0;
  if (a >= value(inf_bits)) return sign | inf_bits;
  // Largest pattern with value <= a (patterns are monotonic in value).
  uint32_t lo = 0, hi = static_cast<uint32_t>(max_finite) + 1;  // value(hi) > a
  while (hi - lo > 1) {
    const uint32_t mid = (lo + hi) / 2;
    if (value(static_cast<uint16_t>(mid)) <= a)
      lo = mid;
    else
      hi = mid;
  }
  const double dlo = a - value(static_cast<uint16_t>(lo));
  const double dhi = value(static_cast<uint16_t>(hi)) - a;
  uint32_t r = dlo < dhi ? lo : (dhi < dlo ? hi : (lo % 2 == 0 ? lo : hi));
  return static_cast<uint16_t>(sign | r);
}

uint16_t RefBF16(float f) { return NearestEven(f, 0x7f7f, 0x7f80, BF16Value, 0x8000); }
uint16_t RefF16(float f) { return NearestEven(f, 0x7bff, 0x7c00, F16Value, 0x8000); }

TEST(ConvertTest, AllBF16PatternsRoundTrip) {
  std::vector<uint16_t> all(65536), back(65536);
  std::vector<float> wide(65536);
  for (uint32_t h = 0; h < 65536; ++h) all[h] = static_cast<uint16_t>(h);
  ConvertBF16ToF32(wide.data(), all.data(), all.size());
  ConvertF32ToBF16(back.data(), wide.data(), wide.size());
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint16_t b = static_cast<uint16_t>(h);
    ASSERT_EQ(std::bit_cast<uint32_t>(wide[h]), h << 16);
    ASSERT_EQ(std::bit_cast<uint32_t>(BF16ToF32(b)), h << 16);
    const uint16_t want = IsBF16Nan(b) ? (b | 0x40) : b;  // NaN comes back quiet
    ASSERT_EQ(F32ToBF16(wide[h]), want) << std::hex << h;
    ASSERT_EQ(back[h], want) << std::hex << h;
  }
}

TEST(ConvertTest, AllF16PatternsRoundTrip) {
  std::vector<uint16_t> all(65536), back(65536);
  std::vector<float> wide(65536);
  for (uint32_t h = 0; h < 65536; ++h) all[h] = static_cast<uint16_t>(h);
  ConvertF16ToF32(wide.data(), all.data(), all.size());
  ConvertF32ToF16(back.data(), wide.data(), wide.size());
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint16_t b = static_cast<uint16_t>(h);
    const float f = F16ToF32(b);
    ASSERT_EQ(std::bit_cast<uint32_t>(f), std::bit_cast<uint32_t>(wide[h])) << std::hex << h;
    if (IsF16Nan(b)) {
      ASSERT_TRUE(std::isnan(f));
      ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0);
    } else if ((h & 0x7fff) == 0x7c00) {
      ASSERT_EQ(f, (h & 0x8000) ? -std::numeric_limits<float>::infinity()
                                : std::numeric_limits<float>::infinity());
    } else {
      const double v = F16Value(b & 0x7fff);
      ASSERT_EQ(static_cast<double>(f), (h & 0x8000) ? -v : v) << std::hex << h;
    }
    const uint16_t want = IsF16Nan(b) ? (b | 0x200) : b;
    ASSERT_EQ(F32ToF16(f), want) << std::hex << h;
    ASSERT_EQ(back[h], want) << std::hex << h;
  }
}

TEST(ConvertTest, BF16TiesRoundToEven) {
  for (uint32_t h = 0; h < 0x7f80; ++h) {
    for (uint32_t sign : {0u, 0x8000u}) {
      const float mid = std::bit_cast<float>(((h | sign) << 16) | 0x8000u);
      const uint16_t even = static_cast<uint16_t>(sign | ((h & 1) ? h + 1 : h));
      ASSERT_EQ(F32ToBF16(mid), even) << std::hex << h;
      const float above = std::nextafter(mid, std::copysign(INFINITY, mid));
      const float below = std::nextafter(mid, std::copysign(0.0f, mid));
      ASSERT_EQ(F32ToBF16(above), static_cast<uint16_t>(sign | (h + 1))) << std::hex << h;
      ASSERT_EQ(F32ToBF16(below), static_cast<uint16_t>(sign | h)) << std::hex << h;
    }
  }
  // The midpoint above the largest finite bf16 overflows to inf.
  EXPECT_EQ(F32ToBF16(std::bit_cast<float>(0x7f7f8000u)), 0x7f80);
  EXPECT_EQ(F32ToBF16(std::bit_cast<float>(0x7f7f7fffu)), 0x7f7f);
}

TEST(ConvertTest, F16TiesRoundToEven) {
  for (uint32_t h = 0; h < 0x7c00; ++h) {
    for (uint32_t sign : {0u, 0x8000u}) {
      const double lo = F16Value(static_cast<uint16_t>(h)),
                   hi = F16Value(static_cast<uint16_t>(h + 1));
      const float mid = static_cast<float>((lo + hi) / 2);
      ASSERT_EQ(static_cast<double>(mid), (lo + hi) / 2) << "midpoint must be exact";
      const float smid = sign ? -mid : mid;
      const uint16_t even = static_cast<uint16_t>(sign | ((h & 1) ? h + 1 : h));
      ASSERT_EQ(F32ToF16(smid), even) << std::hex << h;
      const float above = std::nextafter(smid, std::copysign(INFINITY, smid));
      const float below = std::nextafter(smid, std::copysign(0.0f, smid));
      ASSERT_EQ(F32ToF16(above), static_cast<uint16_t>(sign | (h + 1))) << std::hex << h;
      ASSERT_EQ(F32ToF16(below), static_cast<uint16_t>(sign | h)) << std::hex << h;
    }
  }
  EXPECT_EQ(F32ToF16(65504.0f), 0x7bff);
  EXPECT_EQ(F32ToF16(65519.996f), 0x7bff);
  EXPECT_EQ(F32ToF16(65520.0f), 0x7c00);  // tie with an odd max: to inf
  EXPECT_EQ(F32ToF16(1e10f), 0x7c00);
  EXPECT_EQ(F32ToF16(-1e10f), 0xfc00);
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and 2^-24
  EXPECT_EQ(F32ToF16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(F32ToF16(std::ldexp(3.0f, -25)), 0x0002);  // tie between 1 and 2 units
  EXPECT_EQ(F32ToF16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(F32ToF16(-0.0f), 0x8000);
}

TEST(ConvertTest, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(F32ToBF16(inf), 0x7f80);
  EXPECT_EQ(F32ToBF16(-inf), 0xff80);
  EXPECT_EQ(F32ToF16(inf), 0x7c00);
  EXPECT_EQ(F32ToF16(-inf), 0xfc00);
  // NaNs whose payload lives only in low bits must not truncate to inf.
  EXPECT_TRUE(IsBF16Nan(F32ToBF16(std::bit_cast<float>(0x7f800001u))));
  EXPECT_TRUE(IsBF16Nan(F32ToBF16(std::bit_cast<float>(0xffffffffu))));
  EXPECT_TRUE(IsF16Nan(F32ToF16(std::bit_cast<float>(0x7f800001u))));
  EXPECT_EQ(F32ToF16(std::bit_cast<float>(0xff800001u)) & 0x8000, 0x8000);
  EXPECT_EQ(F32ToBF16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(F32ToBF16(std::bit_cast<float>(0x00008000u)), 0x0000);  // tie to even: 0
  EXPECT_EQ(F32ToBF16(std::bit_cast<float>(0x00018000u)), 0x0002);  // tie to even: 2
}

TEST(ConvertTest, RandomFloatsMatchNearestSearchAndBulkMatchesScalar) {
  std::mt19937 gen(42);
  const size_t n = 1 << 19;
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) {
    uint32_t u = gen();
    // Half the samples land near the fp16 range, where most logic lives.
    if (i % 2) u = (u & 0x80ffffffu) | ((96u + (u >> 24) % 50u) << 23);
    x[i] = std::bit_cast<float>(u);
  }
  std::vector<uint16_t> bb(n), hh(n);
  ConvertF32ToBF16(bb.data(), x.data(), n);
  ConvertF32ToF16(hh.data(), x.data(), n);
  for (size_t i = 0; i < n; ++i) {
    ASSERT_EQ(bb[i], F32ToBF16(x[i])) << i;
    ASSERT_EQ(hh[i], F32ToF16(x[i])) << i;
    if (std::isnan(x[i])) continue;
    ASSERT_EQ(bb[i], RefBF16(x[i])) << std::hex << std::bit_cast<uint32_t>(x[i]);
    ASSERT_EQ(hh[i], RefF16(x[i])) << std::hex << std::bit_cast<uint32_t>(x[i]);
  }
}

class BackendConvertTest : public ::testing::TestWithParam<int> {};

TEST_P(BackendConvertTest, DispatchesEveryPair) {
  auto device = MakeCpuDevice(GetParam());
  testing::Ops ops(*device);
  testing::Ops* be = &ops;
  const size_t n = 100003;  // above the parallel threshold, odd
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> dist(-70000.0f, 70000.0f);
  std::vector<float> f(n);
  for (auto& v : f) v = dist(gen);
  std::vector<uint16_t> b(n), h(n), b2(n), h2(n);
  std::vector<float> fb(n), fh(n), f2(n);
  be->Convert(b.data(), DType::kBF16, f.data(), DType::kF32, n);
  be->Convert(h.data(), DType::kF16, f.data(), DType::kF32, n);
  be->Convert(fb.data(), DType::kF32, b.data(), DType::kBF16, n);
  be->Convert(fh.data(), DType::kF32, h.data(), DType::kF16, n);
  be->Convert(h2.data(), DType::kF16, b.data(), DType::kBF16, n);
  be->Convert(b2.data(), DType::kBF16, h.data(), DType::kF16, n);
  be->Convert(f2.data(), DType::kF32, f.data(), DType::kF32, n);
  for (size_t i = 0; i < n; ++i) {
    ASSERT_EQ(b[i], F32ToBF16(f[i]));
    ASSERT_EQ(h[i], F32ToF16(f[i]));
    ASSERT_EQ(std::bit_cast<uint32_t>(fb[i]), std::bit_cast<uint32_t>(BF16ToF32(b[i])));
    ASSERT_EQ(std::bit_cast<uint32_t>(fh[i]), std::bit_cast<uint32_t>(F16ToF32(h[i])));
    ASSERT_EQ(h2[i], F32ToF16(BF16ToF32(b[i])));
    ASSERT_EQ(b2[i], F32ToBF16(F16ToF32(h[i])));
    ASSERT_EQ(f2[i], f[i]);
  }
  std::vector<int32_t> ints(1000), ints2(1000);
  for (int i = 0; i < 1000; ++i) ints[i] = i * 7919 - 12345;
  be->Convert(ints2.data(), DType::kI32, ints.data(), DType::kI32, ints.size());
  EXPECT_EQ(ints, ints2);
}

ANVIL_THREADS_PARAMS(BackendConvertTest);

}  // namespace
}  // namespace anvil::kernels
