#include "models/dit/dit_config.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace anvil {

absl::Status ValidateDitConfig(const DitConfig& c) {
  for (auto [name, v] : {std::pair{"n_layer", c.n_layer},
                         {"n_head", c.n_head},
                         {"n_embd", c.n_embd},
                         {"patch_size", c.patch_size},
                         {"image_size", c.image_size},
                         {"image_channels", c.image_channels}}) {
    if (v <= 0)
      return absl::InvalidArgumentError(absl::StrCat("--", name, " must be > 0, got ", v));
  }
  if (c.num_classes < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--image_classes must be >= 0 (0: unconditional), got ", c.num_classes));
  }
  if (c.n_embd % c.n_head != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--n_embd (", c.n_embd, ") must be divisible by --n_head (", c.n_head, ")"));
  }
  if (c.n_embd % 4 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--n_embd (", c.n_embd, ") must be divisible by 4 (2-D sin-cos positions)"));
  }
  if (c.image_size % c.patch_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--patch_size (", c.patch_size, ") must divide --image_size (", c.image_size, ")"));
  }
  if (c.freq_dim <= 0 || c.freq_dim % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the timestep frequency width must be even and > 0, got ", c.freq_dim));
  }
  if (!(c.norm_eps > 0.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("--norm_eps must be > 0, got ", c.norm_eps));
  }
  return absl::OkStatus();
}

double DitParamCount(const DitConfig& c) {
  const double C = c.n_embd, P = DitPatchDim(c), T = DitTokens(c), F = c.freq_dim,
               K = c.num_classes, L = c.n_layer;
  const double embed =
      (P * C + C) + (c.learned_pos ? T * C : 0.0) + (F * C + C) + (C * C + C) + (K + 1) * C;
  const double block = (3 * C * C + 3 * C) + (C * C + C) + (4 * C * C + 4 * C) + (4 * C * C + C) +
                       (6 * C * C + 6 * C);
  const double final_layer = (2 * C * C + 2 * C) + (C * P + P);
  return embed + L * block + final_layer;
}

int64_t DitNumParams(const DitConfig& c) { return static_cast<int64_t>(DitParamCount(c)); }

double DitActivationBytesEstimate(const DitConfig& c, int batch) {
  const double B = batch, T = DitTokens(c), C = c.n_embd, NH = c.n_head, P = DitPatchDim(c),
               L = c.n_layer, F = c.freq_dim;
  const double N = B * T;
  // Per block: two residuals, two norm outputs and their modulations, qkv,
  // the attention output and its projection, fc1 in and out, fc2's output,
  // the adaLN output (B,6C), attention row statistics and norm statistics.
  const double block = N * (2 * C + 4 * C + 3 * C + 2 * C + 8 * C + C) + B * 6 * C + N * NH + N * 4;
  // Outside the blocks: the patches (in and permuted target), tokens,
  // conditioning, the final layer, and the backward scratch.
  const double rest = N * (3 * P + C) + B * (F + 8 * C) + N * (3 * C + 2 * P) + B * 2 * C +
                      N * (3 * C + 3 * C + 4 * C + 4 * C) + B * 14 * C + N * 2;
  // Each of the arena's ~45 + 16 L pieces is rounded up to 64 bytes.
  return (L * block + rest) * 4 + (48 + 16 * L) * 64;
}

double DitFlopsPerImage(const DitConfig& c) {
  const double C = c.n_embd, P = DitPatchDim(c), T = DitTokens(c), F = c.freq_dim, L = c.n_layer;
  const double per_token = P * C + L * 12 * C * C + C * P;  // patch, blocks, final linear
  const double per_image = F * C + C * C + L * 6 * C * C + 2 * C * C;  // t MLP, adaLN
  // Attention: q.k and p.v, 2 T^2 C multiply-adds each per layer forward,
  // twice that backward.
  return 6.0 * (T * per_token + per_image) + 12.0 * L * T * T * C;
}

}  // namespace anvil
