// image.concat_channels: forward copies a's and b's channels side by side
// (F32 and BF16, mixed), backward ACCUMULATES the two halves of dout.
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/convert.h"
#include "kernels/device.h"
#include "kernels/ops/concat.h"

namespace anvil::kernels {
namespace {

TEST(ConcatChannels, ForwardAndAccumulatingBackward) {
  auto d = MakeCpuDevice(2);
  const int R = 3000, A = 5, Bc = 3;  // enough rows to run threaded
  std::vector<float> a(R * A), b(R * Bc), out(R * (A + Bc));
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i % 97) - 40.f;
  for (size_t i = 0; i < b.size(); ++i) b[i] = 0.5f * static_cast<float>(i % 31);
  ConcatChannels(*d, View(out.data(), {R, A + Bc}), View(a.data(), {R, A}),
                 View(b.data(), {R, Bc}));
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < A; ++c) ASSERT_EQ(out[r * 8 + c], a[r * A + c]);
    for (int c = 0; c < Bc; ++c) ASSERT_EQ(out[r * 8 + A + c], b[r * Bc + c]);
  }
  // Backward: da, db start at 1 and gain dout's halves.
  std::vector<float> da(a.size(), 1.f), db(b.size(), 1.f);
  ConcatChannelsBackward(*d, View(da.data(), {R, A}), View(db.data(), {R, Bc}),
                         View(out.data(), {R, A + Bc}));
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(da[i], a[i] + 1.f);
  for (size_t i = 0; i < b.size(); ++i) ASSERT_EQ(db[i], b[i] + 1.f);
  // BF16 out from F32 a and BF16 b: the values are exact in bf16.
  std::vector<uint16_t> b16(b.size()), out16(out.size());
  ConvertF32ToBF16(b16.data(), b.data(), b.size());
  ConcatChannels(*d, View(out16.data(), DType::kBF16, {2, R / 2, A + Bc}),
                 View(a.data(), {2, R / 2, A}), View(b16.data(), DType::kBF16, {2, R / 2, Bc}));
  std::vector<float> back(out.size());
  ConvertBF16ToF32(back.data(), out16.data(), out16.size());
  EXPECT_EQ(back, out);
}

}  // namespace
}  // namespace anvil::kernels
