#include "models/classifier/classifier_config.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace anvil {

std::array<ConvStage, kClassifierConvs> ClassifierStages(const ClassifierConfig& c) {
  const int D = c.width;
  const std::array<std::pair<int, int>, kClassifierConvs> shape = {
      std::pair{D / 4, 1}, {D / 2, 2}, {D / 2, 1}, {D, 2}};
  std::array<ConvStage, kClassifierConvs> s;
  int in = c.image_channels, size = c.image_size;
  for (int i = 0; i < kClassifierConvs; ++i) {
    s[i].in = in;
    s[i].out = shape[i].first;
    s[i].stride = shape[i].second;
    s[i].in_size = size;
    s[i].out_size = (size + 2 - 3) / s[i].stride + 1;  // 3x3, padding 1
    in = s[i].out;
    size = s[i].out_size;
  }
  return s;
}

absl::Status ValidateClassifierConfig(const ClassifierConfig& c) {
  if (c.width < 4 || c.width % 4 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--n_embd (the classifier's feature width) must be a "
                     "positive multiple of 4, got ",
                     c.width));
  }
  if (c.image_size < 4 || c.image_size > 4096) {
    return absl::InvalidArgumentError(
        absl::StrCat("--image_size must be in 4..4096, got ", c.image_size));
  }
  if (c.image_channels != 1 && c.image_channels != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("--image_channels must be 1 or 3, got ", c.image_channels));
  }
  if (c.num_classes < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("--image_classes must be >= 2 for a classifier, got ", c.num_classes));
  }
  return absl::OkStatus();
}

double ClassifierParamCount(const ClassifierConfig& c) {
  double n = 0;
  for (const ConvStage& s : ClassifierStages(c)) n += 9.0 * s.in * s.out + s.out;
  return n + static_cast<double>(c.width) * c.num_classes + c.num_classes;
}

double ClassifierForwardMacs(const ClassifierConfig& c) {
  double macs = 0;
  for (const ConvStage& s : ClassifierStages(c)) {
    macs += static_cast<double>(s.out_size) * s.out_size * s.out * s.in * 9.0;
  }
  return macs + static_cast<double>(c.width) * c.num_classes;
}

double ClassifierActivationBytesEstimate(const ClassifierConfig& c, int batch) {
  const double B = batch;
  double per_image = static_cast<double>(c.image_size) * c.image_size * c.image_channels * 2;
  double largest = 0;
  for (const ConvStage& s : ClassifierStages(c)) {
    const double n = static_cast<double>(s.out_size) * s.out_size * s.out;
    per_image += 2 * n;  // pre-activation and activation
    largest = std::max(largest, std::max(n, static_cast<double>(s.in_size) * s.in_size * s.in));
  }
  per_image += 2 * largest;  // backward scratch: dact, dpre
  per_image +=
      3.0 * c.width + 4.0 * c.num_classes;  // pooled (+ copy, grad); logits, probs, dlogits
  per_image += 2;                           // label, loss
  return B * per_image * 4;
}

}  // namespace anvil
