// UNetConfig: the shape of a DDPM-style UNet, its validation, and the plan
// of stages (units) both the model and its size estimates walk.
//
// Plan (images S x S x IC, base width ch, levels l = 0..L-1 of width
// ch*mult[l] at resolution S/2^l, nb = blocks per level):
//   unit 0 "embed": sinusoidal(t, ch) -> linear(ch,E) -> SiLU -> linear(E,E)
//     (+ class_embed[label], K+1 rows, the last the null class) = temb,
//     E = 4 ch; stem 3x3 conv IC -> ch;
//   down: per level nb residual blocks, each pushed as a skip; the last block
//     of every level but the lowest also downsamples (3x3 conv, stride 2),
//     the result pushed too;
//   mid: two residual blocks at the lowest resolution;
//   up: per level (lowest first) nb+1 residual blocks, each taking
//     concat(h, popped skip) along C; the last block of every level but the
//     top also upsamples (nearest 2x, then 3x3 conv);
//   last unit "out": GroupNorm -> SiLU -> 3x3 conv ch -> IC.
// A block at a resolution listed in attention_res (and mid.0 when the
// lowest resolution is listed) is followed by self-attention in its unit.
// Every stage output is a "tensor" (S', C'); tensor 0 is the stem's output.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "models/param_layout.h"

namespace anvil {

struct UNetConfig {
  int image_size = 28;      // S (square images)
  int image_channels = 1;   // IC
  int channels = 32;        // ch, base width
  std::vector<int> channel_mult = {1, 2, 2};
  int blocks_per_level = 1;          // nb
  std::vector<int> attention_res = {7};  // resolutions with self-attention
  int norm_groups = 8;      // GroupNorm groups
  int n_head = 4;           // attention heads
  int num_classes = 10;     // K; 0: unconditional (no class embedding)
  float norm_eps = 1e-5f;
  float dropout = 0.0f;     // in each residual block, before its second conv; [0, 1)
};

// Parses "1,2,2" into {1, 2, 2}; `flag` names the field in errors.
absl::StatusOr<std::vector<int>> ParseIntList(const std::string& s, const std::string& flag);

// Positive sizes; S divisible by 2^(L-1); every width divisible by the
// groups and by n_head where attention runs. Errors name the flag.
absl::Status ValidateUNetConfig(const UNetConfig& c);

inline int UNetEmbedWidth(const UNetConfig& c) { return 4 * c.channels; }

enum class Resample { kNone, kDown, kUp };

struct UNetTensor {
  int res = 0;  // spatial size (res x res)
  int c = 0;    // channels
};

struct UNetStage {
  std::string name;  // unit name, also the parameter prefix: "down.0.0", "mid.1", "up.2.0"
  int in_a = 0;      // input tensor
  int in_b = -1;     // concatenated skip tensor, or -1
  int cin = 0, cout = 0, res = 0;
  bool attn = false;
  Resample resample = Resample::kNone;
  int out = 0;       // the block's (+ attention's) output tensor
  int out2 = -1;     // the resampled output tensor, or -1
};

struct UNetPlan {
  std::vector<UNetTensor> tensors;
  std::vector<UNetStage> stages;  // units 1..stages.size()
  int final_tensor = 0;           // input of the "out" unit
};

UNetPlan BuildUNetPlan(const UNetConfig& c);

// The parameter layout: unit 0 "embed", one unit per stage, then "out".
// Names: time_embed.{0,2}.{weight,bias}, class_embed.weight, stem.*;
// <stage>.{norm1,conv1,temb,norm2,conv2,skip,attn.norm,attn.qkv,attn.proj,
// down,up}.{weight,bias}; out.norm.*, out.conv.*. Conv weights (OC,IC,KH,KW),
// linear weights (out,in), as PyTorch stores them.
void DeclareUNetParams(const UNetConfig& c, const UNetPlan& plan, ParamLayout* layout);

// Parameters, and training FLOPs (forward + backward = 3 x forward) per image.
int64_t UNetNumParams(const UNetConfig& c);
double UNetFlopsPerImage(const UNetConfig& c);
// Bytes of the activation arena for a micro-batch with fp32 activations and
// no recomputation: an upper bound within a few percent of what UNet
// allocates (bf16 and recompute only lower it).
double UNetActivationBytesEstimate(const UNetConfig& c, int batch);

}  // namespace anvil
