// Helpers of the UNet tests: tiny configs and deterministic diffusion
// batches (x_t, timesteps, labels, target) held in host vectors.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "models/batch.h"
#include "models/unet/unet_config.h"

namespace anvil::testing {

// 8x8x2 images, widths 8 and 16, attention at 4x4 (and in mid.0), two
// groups, two heads, three classes: every kind of stage (concat, 1x1 skip,
// identity skip, down, up, attention) in a few thousand parameters.
inline UNetConfig TinyUNet() {
  UNetConfig c;
  c.image_size = 8;
  c.image_channels = 2;
  c.channels = 8;
  c.channel_mult = {1, 2};
  c.blocks_per_level = 1;
  c.attention_res = {4};
  c.norm_groups = 2;
  c.n_head = 2;
  c.num_classes = 3;
  return c;
}

struct DiffusionData {
  std::vector<float> x_t, target;
  std::vector<int32_t> t, labels;
  std::vector<int32_t> dropout_seeds;  // empty: none in the batch
  int B = 0, S = 0, C = 0;
  Batch batch() const {
    Batch b;
    const std::vector<int64_t> img = {B, S, S, C};
    b.Set("x_t", {DType::kF32, img, x_t.data()});
    b.Set("timesteps", {DType::kI32, {B}, t.data()});
    b.Set("labels", {DType::kI32, {B}, labels.data()});
    b.Set("target", {DType::kF32, img, target.data()});
    if (!dropout_seeds.empty()) b.Set("dropout_seeds", {DType::kI32, {B}, dropout_seeds.data()});
    return b;
  }
};

// Normal x_t and target, timesteps in [0, 1000), labels in [0, K] (K: null).
inline DiffusionData RandomDiffusion(int B, int S, int C, int K, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n(0.f, 1.f);
  DiffusionData d;
  d.B = B;
  d.S = S;
  d.C = C;
  d.x_t.resize(static_cast<size_t>(B) * S * S * C);
  d.target.resize(d.x_t.size());
  for (float& v : d.x_t) v = n(rng);
  for (float& v : d.target) v = n(rng);
  for (int i = 0; i < B; ++i) {
    d.t.push_back(static_cast<int32_t>(rng() % 1000));
    d.labels.push_back(static_cast<int32_t>(rng() % (K + 1)));
  }
  return d;
}

}  // namespace anvil::testing
