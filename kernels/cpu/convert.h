// Float <-> bf16 / fp16 conversions, scalar and bulk (CPU).
//
// Invariants, for every one of the 2^32 float inputs:
//  - Narrowing rounds to nearest, ties to even, in integer arithmetic (the
//    result does not depend on MXCSR flush/denormal modes).
//  - NaN stays NaN: sign kept, quiet bit set, the top payload bits kept (the
//    same bits F16C/AVX512-BF16 hardware produces). +-inf stays +-inf.
//  - fp16: values >= 65520 in magnitude round to inf; values below 2^-14 become
//    fp16 subnormals, correctly rounded; below 2^-25 they become +-0.
//  - Widening is exact. Bulk versions give bit-identical results to the scalar
//    ones (they are the same code, written so the compiler vectorises it).
// Half-precision values are carried as their uint16_t bit patterns.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace anvil::kernels {

inline uint16_t F32ToBF16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const uint32_t nan = (u >> 16) | 0x0040u;
  return static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
}

inline float BF16ToF32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

inline uint16_t F32ToF16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t a = u & 0x7fffffffu;
  // Normal fp16 range: rebias the exponent, round the 13 dropped bits; a carry
  // out of the mantissa correctly bumps the exponent (up to inf at 65520).
  const uint32_t normal = (a - (112u << 23) + 0xfffu + ((a >> 13) & 1u)) >> 13;
  // Subnormal range (a < 2^-14): shift the significand so one unit is 2^-24.
  // The exponent is clamped so the shift stays in [14, 25]; at 25 (and for
  // anything smaller, a < 2^-25) the value is below half a unit and rounds
  // to 0, or exactly half of one and ties to 0.
  const uint32_t exp = a >> 23;
  const uint32_t e = exp < 101u ? 101u : (exp > 112u ? 112u : exp);
  const uint32_t shift = 126u - e;
  const uint32_t mant = (a & 0x7fffffu) | 0x800000u;
  const uint32_t q = mant >> shift;
  const uint32_t rem = mant & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1u);
  const uint32_t up = static_cast<uint32_t>(rem > half) | (static_cast<uint32_t>(rem == half) & q);
  const uint32_t sub = exp < 101u ? 0u : q + (up & 1u);
  uint32_t r = a < (113u << 23) ? sub : normal;
  r = a >= 0x477ff000u ? 0x7c00u : r;                          // overflow -> inf
  r = a > 0x7f800000u ? (0x7e00u | ((a >> 13) & 0x3ffu)) : r;  // NaN stays quiet NaN
  return static_cast<uint16_t>(sign | r);
}

inline float F16ToF32(uint16_t h) {
  const uint32_t x = h;
  const uint32_t sign = (x & 0x8000u) << 16;
  const uint32_t exp = (x >> 10) & 0x1fu;
  const uint32_t mant = x & 0x3ffu;
  const uint32_t normal = ((exp + 112u) << 23) | (mant << 13);
  const uint32_t special = 0x7f800000u | (mant << 13);
  // Subnormals (and zero): mant * 2^-24 is exact in float.
  const uint32_t sub = std::bit_cast<uint32_t>(static_cast<float>(static_cast<int32_t>(mant)) *
                                               5.9604644775390625e-8f);
  // Bit-mask selects rather than ?: so the bulk loop has no control flow.
  const uint32_t is_sub = 0u - static_cast<uint32_t>(exp == 0);
  const uint32_t is_special = 0u - static_cast<uint32_t>(exp == 31u);
  uint32_t r = (sub & is_sub) | (normal & ~is_sub);
  r = (special & is_special) | (r & ~is_special);
  return std::bit_cast<float>(sign | r);
}

// Bulk conversions of n elements, single-threaded (callers parallelise).
void ConvertF32ToBF16(uint16_t* dst, const float* src, size_t n);
void ConvertBF16ToF32(float* dst, const uint16_t* src, size_t n);
void ConvertF32ToF16(uint16_t* dst, const float* src, size_t n);
void ConvertF16ToF32(float* dst, const uint16_t* src, size_t n);

}  // namespace anvil::kernels
