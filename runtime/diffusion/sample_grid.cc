#include "runtime/diffusion/sample_grid.h"

#include <algorithm>
#include <cmath>

#include "common/status_macros.h"

namespace anvil::diffusion {
namespace {

uint8_t ToPixel(float x) {
  const double v = std::round((static_cast<double>(x) + 1.0) * 127.5);
  return static_cast<uint8_t>(std::clamp(v, 0.0, 255.0));
}

}  // namespace

absl::Status SampleBatched(const NoiseSchedule& schedule, const BatchModelFn& model, int height,
                           int width, int channels, int64_t n, int max_batch, const int32_t* labels,
                           SamplingOptions options, float* out) {
  const int64_t numel = int64_t{height} * width * channels;
  const uint64_t first = options.first_sample;
  for (int64_t begin = 0; begin < n; begin += max_batch) {
    const int b = static_cast<int>(std::min<int64_t>(max_batch, n - begin));
    options.first_sample = first + static_cast<uint64_t>(begin);
    const ModelFn fn = [&](const float* x_t, const int32_t* t, const int32_t* y, float* o) {
      return model(b, x_t, t, y, o);
    };
    RETURN_IF_ERROR(Sample(schedule, fn, SampleShape{b, height, width, channels},
                           labels != nullptr ? labels + begin : nullptr, options,
                           out + begin * numel));
  }
  return absl::OkStatus();
}

GridImage TileGrid(const float* images, int rows, int cols, int height, int width, int channels) {
  GridImage g;
  g.height = rows * (height + kGridBorder) + kGridBorder;
  g.width = cols * (width + kGridBorder) + kGridBorder;
  g.channels = channels;
  g.pixels.assign(static_cast<size_t>(g.height) * g.width * channels, 0);
  const int64_t numel = int64_t{height} * width * channels;
  for (int row = 0; row < rows; ++row) {
    for (int i = 0; i < cols; ++i) {
      const float* img = images + (int64_t{row} * cols + i) * numel;
      const size_t top = static_cast<size_t>(row) * (height + kGridBorder) + kGridBorder;
      const size_t left = static_cast<size_t>(i) * (width + kGridBorder) + kGridBorder;
      for (int y = 0; y < height; ++y) {
        uint8_t* dst = g.pixels.data() + ((top + y) * g.width + left) * channels;
        for (int k = 0; k < width * channels; ++k) dst[k] = ToPixel(img[y * width * channels + k]);
      }
    }
  }
  return g;
}

absl::StatusOr<GridImage> DrawClassGrid(const NoiseSchedule& schedule, const BatchModelFn& model,
                                        int height, int width, int channels, int num_classes,
                                        int cols, int max_batch, const SamplingOptions& options) {
  const int rows = num_classes > 0 ? num_classes : cols;
  const int64_t n = int64_t{rows} * cols;
  std::vector<int32_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[i] = static_cast<int32_t>(i / cols);
  std::vector<float> images(static_cast<size_t>(n * height * width * channels));
  SamplingOptions so = options;
  so.first_sample = 0;
  RETURN_IF_ERROR(SampleBatched(schedule, model, height, width, channels, n, max_batch,
                                num_classes > 0 ? labels.data() : nullptr, so, images.data()));
  return TileGrid(images.data(), rows, cols, height, width, channels);
}

}  // namespace anvil::diffusion
