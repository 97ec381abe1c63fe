// Sample grids: images drawn in batches and tiled into one 8-bit picture
// with one row per class, for the `sample` tool's PNG and the trainer's
// TensorBoard image summary.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/diffusion/sampling.h"

namespace anvil::diffusion {

// The model for a batch of `batch` rows (batch <= the caller's max_batch).
using BatchModelFn = std::function<absl::Status(int batch, const float* x_t, const int32_t* t,
                                                const int32_t* labels, float* out)>;

// Draws n images (H,W,C each) in batches of at most max_batch, with sample
// indices options.first_sample + i (so the batching changes no image);
// labels (n) or null for unconditional. out (n,H,W,C).
absl::Status SampleBatched(const NoiseSchedule& schedule, const BatchModelFn& model, int height,
                           int width, int channels, int64_t n, int max_batch, const int32_t* labels,
                           SamplingOptions options, float* out);

struct GridImage {
  int height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;  // HWC
};

inline constexpr int kGridBorder = 2;  // black pixels around and between images

// Tiles rows * cols images (row-major order, each H,W,C in [-1, 1]) with
// kGridBorder pixels of black between and around them.
GridImage TileGrid(const float* images, int rows, int cols, int height, int width, int channels);

// A class grid: with num_classes > 0, one row per class, cols images each
// (sample index row * cols + col, label = row); unconditional (0): cols x
// cols images. Sample indices start at 0.
absl::StatusOr<GridImage> DrawClassGrid(const NoiseSchedule& schedule, const BatchModelFn& model,
                                        int height, int width, int channels, int num_classes,
                                        int cols, int max_batch, const SamplingOptions& options);

}  // namespace anvil::diffusion
