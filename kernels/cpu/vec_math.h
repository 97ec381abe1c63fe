// Branch-free exp that the compiler vectorises inside `omp simd` loops
// (libm's expf is an opaque call without -ffast-math).
//
// FastExp: Cody-Waite range reduction plus the Cephes degree-6 polynomial;
// max relative error ~2 ulp on [-87, 88]. Results below ~2^-126 flush to 0,
// inputs above 88 saturate at ~1.7e38 (no inf), NaN propagates.
#pragma once

#include <bit>
#include <cstdint>

namespace anvil::kernels::cpu {

inline float FastExp(float x) {
  float xc = x < -88.0f ? -88.0f : x;  // written so NaN passes through
  xc = xc > 88.0f ? 88.0f : xc;
  // Round x*log2(e) to an integer with the 1.5*2^23 trick; the integer is
  // read back from the low mantissa bits.
  const float t = xc * 1.44269504088896341f + 12582912.0f;
  const float n = t - 12582912.0f;
  const int32_t ni = std::bit_cast<int32_t>(t) - 0x4b400000;
  float r = xc - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  const float r2 = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r2 + r + 1.0f;
  // 2^n by building the exponent field; n = -127 gives bits 0, i.e. 0.0f.
  const int32_t biased = ni + 127;
  const float scale = std::bit_cast<float>(static_cast<uint32_t>(biased < 0 ? 0 : biased) << 23);
  return p * scale;
}

}  // namespace anvil::kernels::cpu
