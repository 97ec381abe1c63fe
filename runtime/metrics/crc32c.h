// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of the
// TFRecord framing, and TFRecord's "masked" form of it.
// Invariants: Crc32c("123456789") == 0xE3069283 (the check value of the
// CRC-32C catalogue entry); Crc32c(b, Crc32c(a)) == Crc32c(a + b), so a
// buffer may be checksummed in pieces. Masking (a rotation plus a constant)
// exists so that a CRC stored next to the data it covers does not checksum
// to a fixed pattern; MaskCrc32c and UnmaskCrc32c are inverses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace anvil::metrics {

// `crc`: the CRC of the bytes before `data` (0 for none).
uint32_t Crc32c(const void* data, size_t n, uint32_t crc);
inline uint32_t Crc32c(std::string_view s, uint32_t crc = 0) {
  return Crc32c(s.data(), s.size(), crc);
}

inline uint32_t MaskCrc32c(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}
inline uint32_t UnmaskCrc32c(uint32_t masked) {
  const uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

}  // namespace anvil::metrics
