// 32-bit transposes (kernels/cpu/transpose.h) against the definition, bit
// for bit: random words (NaN payloads included, which a float path that
// rounded or quieted them would change), shapes with and without full 8x8
// blocks and both edges, leading dimensions wider than the rows, and the
// padding of the destination left untouched.
#include "kernels/cpu/transpose.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace anvil::kernels {
namespace {

struct Shape {
  int rows, cols;
};

class TransposeTest : public ::testing::TestWithParam<Shape> {};

TEST_P(TransposeTest, EqualsTheDefinitionBitForBit) {
  const auto [rows, cols] = GetParam();
  const int64_t lds = cols + 3, ldd = rows + 5;
  constexpr uint32_t kGuard = 0xdeadbeefu;
  std::mt19937 rng(rows * 1000 + cols);
  std::vector<uint32_t> src(static_cast<size_t>(rows) * lds + 1);
  for (auto& w : src) w = rng();
  std::vector<uint32_t> dst(static_cast<size_t>(cols) * ldd + 1, kGuard);
  cpu::Transpose32(src.data(), lds, rows, cols, dst.data(), ldd);
  for (int c = 0; c < cols; ++c) {
    for (int64_t r = 0; r < ldd; ++r) {
      const uint32_t want = r < rows ? src[r * lds + c] : kGuard;
      ASSERT_EQ(dst[c * ldd + r], want) << "dst(" << c << ", " << r << ")";
    }
  }
  EXPECT_EQ(dst.back(), kGuard);
}

INSTANTIATE_TEST_SUITE_P(Shapes, TransposeTest,
                         ::testing::Values(Shape{0, 5}, Shape{5, 0}, Shape{1, 1}, Shape{7, 9},
                                           Shape{8, 8}, Shape{9, 8}, Shape{8, 17}, Shape{16, 24},
                                           Shape{64, 64}, Shape{13, 64}, Shape{64, 3},
                                           Shape{100, 40}, Shape{256, 64}));

TEST(TransposeTest, FloatOverloadKeepsNaNPayloads) {
  constexpr int rows = 16, cols = 16;
  std::vector<float> src(rows * cols), dst(rows * cols);
  for (int i = 0; i < rows * cols; ++i) {
    const uint32_t bits = 0x7f800001u + static_cast<uint32_t>(i) * 4099u;  // signalling NaNs
    std::memcpy(&src[i], &bits, 4);
  }
  cpu::Transpose32(src.data(), cols, rows, cols, dst.data(), rows);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      uint32_t got, want;
      std::memcpy(&got, &dst[c * rows + r], 4);
      std::memcpy(&want, &src[r * cols + c], 4);
      ASSERT_EQ(got, want) << r << ", " << c;
    }
  }
}

}  // namespace
}  // namespace anvil::kernels
