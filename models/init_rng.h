// Deterministic parameter initialisation: a counter-based normal generator.
// Value i of tensor `stream` depends only on (seed, stream, i), so any slice of
// the flat buffer can be initialised independently (by any rank) and identically.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace anvil {

inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Uniform in (0, 1], from 53 random bits.
inline double UniformFromBits(uint64_t bits) {
  return (static_cast<double>(bits >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

// dst[i] ~ N(0, std^2), Box-Muller on pairs of counter-derived uniforms.
inline void NormalInit(float* dst, size_t n, float std, uint64_t seed, uint64_t stream) {
  const uint64_t key = SplitMix64(seed ^ SplitMix64(stream + 0x5851f42d4c957f2dULL));
  for (size_t i = 0; i < n; i += 2) {
    const double u1 = UniformFromBits(SplitMix64(key + 2 * i));
    const double u2 = UniformFromBits(SplitMix64(key + 2 * i + 1));
    const double r = std::sqrt(-2.0 * std::log(u1));
    dst[i] = static_cast<float>(std * r * std::cos(2.0 * M_PI * u2));
    if (i + 1 < n) dst[i + 1] = static_cast<float>(std * r * std::sin(2.0 * M_PI * u2));
  }
}

}  // namespace anvil
