// PNG files through libpng's simplified API: 8-bit grayscale or RGB.
//
// ReadPng gives the image in its own colour type reduced to 8 bits: gray
// (and gray+alpha) as 1 channel, everything else (palette, RGB, RGBA) as 3;
// alpha is composited onto black. Errors name the file and what is wrong in
// one line ("not a PNG file", libpng's own message for a damaged one).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace anvil {

struct PngImage {
  int height = 0, width = 0, channels = 0;  // channels 1 or 3
  std::vector<uint8_t> pixels;              // HWC
};

// Header only (size and channels), without decoding the pixels.
absl::StatusOr<PngImage> ReadPngInfo(const std::string& path);
absl::StatusOr<PngImage> ReadPng(const std::string& path);
// channels 1 (gray) or 3 (RGB); pixels HWC.
// The PNG file's bytes, in memory (TensorBoard image summaries).
absl::StatusOr<std::string> EncodePng(int height, int width, int channels, const uint8_t* pixels);
absl::Status WritePng(const std::string& path, int height, int width, int channels,
                      const uint8_t* pixels);

}  // namespace anvil
