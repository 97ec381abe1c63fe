#include "models/dit/dit_host.h"

#include <cmath>

#include "models/init_rng.h"

namespace anvil {

void DitSinCosPositions(const DitConfig& c, float* pos) {
  const int G = DitGrid(c), C = c.n_embd, Q = C / 4;
  for (int gy = 0; gy < G; ++gy) {
    for (int gx = 0; gx < G; ++gx) {
      float* row = pos + (static_cast<int64_t>(gy) * G + gx) * C;
      for (int k = 0; k < Q; ++k) {
        const double w = 1.0 / std::pow(10000.0, static_cast<double>(k) / Q);
        row[k] = static_cast<float>(std::sin(gx * w));
        row[Q + k] = static_cast<float>(std::cos(gx * w));
        row[2 * Q + k] = static_cast<float>(std::sin(gy * w));
        row[3 * Q + k] = static_cast<float>(std::cos(gy * w));
      }
    }
  }
}

namespace {

// Calls f(pixel offset in the NHWC image, row offset in (c,i,j) order, row
// offset in (i,j,c) order) for every value of a batch.
template <typename Fn>
void ForEachPixel(const DitConfig& c, int batch, Fn f) {
  const int64_t S = c.image_size, p = c.patch_size, G = DitGrid(c), Ch = c.image_channels;
  const int64_t P = DitPatchDim(c);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t gy = 0; gy < G; ++gy) {
      for (int64_t gx = 0; gx < G; ++gx) {
        const int64_t row = ((b * G + gy) * G + gx) * P;
        for (int64_t i = 0; i < p; ++i) {
          for (int64_t j = 0; j < p; ++j) {
            const int64_t px = ((b * S + gy * p + i) * S + gx * p + j) * Ch;
            for (int64_t ch = 0; ch < Ch; ++ch) {
              f(px + ch, row + (ch * p + i) * p + j, row + (i * p + j) * Ch + ch);
            }
          }
        }
      }
    }
  }
}

}  // namespace

void DitPatchify(const DitConfig& c, int batch, const float* x, float* rows) {
  ForEachPixel(c, batch, [&](int64_t px, int64_t cij, int64_t) { rows[cij] = x[px]; });
}

void DitToTokenOrder(const DitConfig& c, int batch, const float* img, float* rows) {
  ForEachPixel(c, batch, [&](int64_t px, int64_t, int64_t ijc) { rows[ijc] = img[px]; });
}

void DitFromTokenOrder(const DitConfig& c, int batch, const float* rows, float* img) {
  ForEachPixel(c, batch, [&](int64_t px, int64_t, int64_t ijc) { img[px] = rows[ijc]; });
}

void UniformInit(float* dst, size_t n, float a, uint64_t seed, uint64_t stream) {
  const uint64_t key = SplitMix64(seed ^ SplitMix64(stream + 0x2545f4914f6cdd1dULL));
  for (size_t i = 0; i < n; ++i) {
    const double u = UniformFromBits(SplitMix64(key + i));  // (0, 1]
    dst[i] = static_cast<float>((2.0 * u - 1.0) * a);
  }
}

}  // namespace anvil
