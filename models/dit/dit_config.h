// DitConfig: the shape of a DiT (Peebles & Xie, "Scalable Diffusion Models
// with Transformers"): a class-conditional image Transformer over p x p
// patches with adaLN-Zero blocks. Its validation, parameter count and
// activation-memory estimate.
//
// The paper's configs are n_layer/n_embd/n_head: S 12/384/6, B 12/768/12
// (L 24/1024/16, XL 28/1152/16), with p 2, 4 or 8. The denoiser here
// predicts only the noise (or v): out_channels = image_channels (no learned
// sigma).
#pragma once

#include <cstdint>

#include "absl/status/status.h"

namespace anvil {

struct DitConfig {
  int n_layer = 4;           // L blocks
  int n_head = 4;            // NH attention heads
  int n_embd = 128;          // C hidden width = NH * head size, divisible by 4
  int patch_size = 4;        // p
  int image_size = 28;       // S: images S x S, S divisible by p
  int image_channels = 1;    // image channels in and out
  int num_classes = 10;      // K; the class table has K + 1 rows (K = null)
  bool learned_pos = false;  // learned positions instead of fixed 2-D sin-cos
  int freq_dim = 256;        // sinusoidal timestep features before the t MLP
  float norm_eps = 1e-6f;    // LayerNorm epsilon (no affine)
};

// Positive sizes, C divisible by NH and by 4 (2-D sin-cos halves), S by p.
// Errors name the flag: "--patch_size (3) must divide --image_size (28)".
absl::Status ValidateDitConfig(const DitConfig& c);

inline int DitGrid(const DitConfig& c) { return c.image_size / c.patch_size; }
inline int DitTokens(const DitConfig& c) { return DitGrid(c) * DitGrid(c); }
// Values per token the patch embedding reads and the final layer writes.
inline int DitPatchDim(const DitConfig& c) {
  return c.patch_size * c.patch_size * c.image_channels;
}

// Number of parameters (the fixed positional embedding is not one).
int64_t DitNumParams(const DitConfig& c);
double DitParamCount(const DitConfig& c);

// Bytes of the activation arena for micro-batches of `batch` images with
// fp32 activations and no recomputation (an upper bound within a few
// percent of what Dit allocates).
double DitActivationBytesEstimate(const DitConfig& c, int batch);

// Training FLOPs (forward + backward) per image: 6 x the matmul parameters
// a token or an image passes through, plus non-causal attention.
double DitFlopsPerImage(const DitConfig& c);

}  // namespace anvil
