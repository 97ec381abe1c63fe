// The dropout mask as a pure function, shared by every device's dropout op:
// element i of sample b is kept when a 24-bit hash of (the sample's seed,
// the call's salt, i) is at least p * 2^24. No mask is stored: forward and
// backward (and a recomputed forward) rebuild the same mask from the seed,
// and a sample's mask depends only on its own seed, so it is the same on
// whichever rank holds the sample.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define ANVIL_HOST_DEVICE __host__ __device__
#else
#define ANVIL_HOST_DEVICE
#endif

namespace anvil::kernels {

ANVIL_HOST_DEVICE inline uint64_t DropoutMix(uint64_t z) {  // SplitMix64's finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The key of one sample for one call site (salt).
ANVIL_HOST_DEVICE inline uint64_t DropoutKey(uint32_t seed, uint32_t salt) {
  return DropoutMix((static_cast<uint64_t>(seed) << 32 | salt) + 0x9e3779b97f4a7c15ULL);
}

// Keep element i when its 24-bit uniform is >= threshold = round(p * 2^24).
ANVIL_HOST_DEVICE inline bool DropoutKeep(uint64_t key, uint64_t i, uint32_t threshold) {
  return static_cast<uint32_t>(DropoutMix(key ^ (i * 0xd1b54a32d192ed03ULL)) >> 40) >= threshold;
}

ANVIL_HOST_DEVICE inline uint32_t DropoutThreshold(float p) {
  return static_cast<uint32_t>(static_cast<double>(p) * 16777216.0 + 0.5);
}

}  // namespace anvil::kernels
