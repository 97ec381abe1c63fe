// ClassifierConfig: the shape of the small image classifier (--model
// classifier), its validation, parameter count and activation estimate.
//
// The network is fixed: four 3x3 convolutions (padding 1), each followed by
// SiLU, with widths D/4, D/2, D/2, D and strides 1, 2, 1, 2, then a global
// average pool to the D-wide feature vector (the "penultimate layer" the
// quality metric compares) and one linear layer to the class logits. Only D
// (--n_embd), the image shape and the class count vary.
#pragma once

#include <array>
#include <cstdint>

#include "absl/status/status.h"

namespace anvil {

struct ClassifierConfig {
  int image_size = 28;     // H = W
  int image_channels = 1;  // C of the input, 1 (grey) or 3 (RGB)
  int num_classes = 10;    // K
  int width = 128;         // D, the feature width; divisible by 4
};

// One convolution of the stack: in -> out channels, stride, output side.
struct ConvStage {
  int in = 0, out = 0, stride = 1;
  int in_size = 0, out_size = 0;  // spatial side of its input and output
};
inline constexpr int kClassifierConvs = 4;
std::array<ConvStage, kClassifierConvs> ClassifierStages(const ClassifierConfig& c);

// Errors name the flag: --n_embd (width), --image_size, --image_channels,
// --image_classes.
absl::Status ValidateClassifierConfig(const ClassifierConfig& c);

double ClassifierParamCount(const ClassifierConfig& c);
// Multiply-adds of one image's forward pass.
double ClassifierForwardMacs(const ClassifierConfig& c);
// Bytes of the activation arena for micro-batches of `batch` images with
// fp32 activations: an upper bound within a few percent of the arena.
double ClassifierActivationBytesEstimate(const ClassifierConfig& c, int batch);

}  // namespace anvil
