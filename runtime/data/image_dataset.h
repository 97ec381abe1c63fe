// ImageDataset: a labelled image data set held in memory as 8-bit pixels.
//
// Invariants: pixels holds count * height * width * channels bytes, NHWC
// (row-major, channels last); channels is 1 (grayscale) or 3 (RGB); labels
// is empty (no labels) or holds count values in [0, num_classes). Pixels are
// scaled to [-1, 1] only when a batch is cut (ToUnitRange), so the set costs
// one byte per value (Fashion-MNIST: 47 MB).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace anvil {

struct ImageDataset {
  int64_t count = 0;
  int height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;
  std::vector<int32_t> labels;           // empty: unlabelled
  int num_classes = 0;                   // 0 when unlabelled
  std::vector<std::string> class_names;  // ImageFolder: the folder names, sorted
  std::string source;                    // file or folder it was read from (for messages)

  int64_t sample_bytes() const { return static_cast<int64_t>(height) * width * channels; }
  const uint8_t* image(int64_t i) const { return pixels.data() + i * sample_bytes(); }
  bool labelled() const { return !labels.empty(); }
};

// 8-bit pixel to [-1, 1]. One rounding (v - 127.5 is exact), so the result
// cannot depend on whether a compiler fuses a multiply and an add into an FMA
// (GCC does at -O2 and above, not at -O1): every translation unit, and the
// tests that rebuild a batch by hand, get the same bits.
inline float ToUnitRange(uint8_t v) { return (static_cast<float>(v) - 127.5f) * (2.0f / 255.0f); }

// [-1, 1] to an 8-bit pixel (clamped, rounded to nearest, halves up; NaN
// gives 0). The rounding adds nothing after the multiply, for the same
// reason as above.
inline uint8_t FromUnitRange(float v) {
  const float p = (v + 1.0f) * 127.5f;
  return static_cast<uint8_t>(!(p > 0.0f) ? 0.0f : (p >= 255.0f ? 255.0f : std::round(p)));
}

}  // namespace anvil
