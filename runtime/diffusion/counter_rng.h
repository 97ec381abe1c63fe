// Counter-based random numbers for the diffusion process: every value is a
// pure function of (seed, stream, a, b, i), so training noise, timesteps,
// label dropout and sampling noise need no RNG object to be saved, and any
// rank computes the same value for the same global sample.
//
// Invariant: different (stream, a, b) give independent-looking sequences;
// the same arguments always give the same bits on every machine (integer
// arithmetic only up to the final conversion, which is IEEE double).
#pragma once

#include <cmath>
#include <cstdint>

#include "models/init_rng.h"

namespace anvil::diffusion {

// Streams keep the uses of one seed apart.
enum class RngStream : uint64_t {
  kTrainNoise = 1,
  kTrainTimestep = 2,
  kLabelDrop = 3,
  kSampleInit = 4,
  kSampleStep = 5,
  kDropout = 6,
};

// A key naming one sequence; values are drawn with Bits(key, i).
inline uint64_t CounterKey(uint64_t seed, RngStream stream, uint64_t a, uint64_t b = 0) {
  uint64_t k = SplitMix64(seed ^ SplitMix64(static_cast<uint64_t>(stream) * 0x2545f4914f6cdd1dULL));
  k = SplitMix64(k ^ SplitMix64(a + 0x6a09e667f3bcc909ULL));
  return SplitMix64(k ^ SplitMix64(b + 0xbb67ae8584caa73bULL));
}

inline uint64_t CounterBits(uint64_t key, uint64_t i) { return SplitMix64(key ^ SplitMix64(i)); }

// Uniform in (0, 1].
inline double CounterUniform(uint64_t key, uint64_t i) {
  return UniformFromBits(CounterBits(key, i));
}

// Uniform integer in [0, n), n > 0 (multiply-high: bias below 2^-64 * n).
inline uint32_t CounterBelow(uint64_t key, uint64_t i, uint32_t n) {
  return static_cast<uint32_t>((static_cast<unsigned __int128>(CounterBits(key, i)) * n) >> 64);
}

// dst[i] ~ N(0, 1) for i in [0, n): Box-Muller on pairs, so value i depends
// only on (key, i) — a prefix of a longer draw is the shorter draw.
inline void CounterNormal(uint64_t key, float* dst, uint64_t n) {
  for (uint64_t i = 0; i < n; i += 2) {
    const double u1 = CounterUniform(key, i);
    const double u2 = CounterUniform(key, i + 1);
    const double r = std::sqrt(-2.0 * std::log(u1));
    dst[i] = static_cast<float>(r * std::cos(2.0 * M_PI * u2));
    if (i + 1 < n) dst[i + 1] = static_cast<float>(r * std::sin(2.0 * M_PI * u2));
  }
}

}  // namespace anvil::diffusion
