// Hugging Face GPT-2 interchange: export a checkpoint's weights to a
// safetensors file `transformers` loads (GPT2LMHeadModel), and import such a
// file as the initial weights of a run.
//
// Mapping (layout name -> HF name): "<name>" -> "transformer.<name>", and
// lm_head.weight = wte.weight (tied; written as a copy, ignored on import).
// HF's Conv1D stores (in, out), the transpose of this project's (out, in)
// Linear weights, so attn.c_attn, attn.c_proj, mlp.c_fc and mlp.c_proj
// weights are transposed both ways. Embeddings, norms and biases are copied.
//
// Export streams: one tensor at a time is read from the checkpoint's shard
// files (only the byte ranges holding it), transposed and appended, so memory
// is bounded by the largest tensor, never the model. Import accepts names
// with or without the "transformer." prefix, F32/F16/BF16 data, and ignores
// the attention-mask buffers (attn.bias, attn.masked_bias).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "models/param_layout.h"
#include "proto/checkpoint.pb.h"
#include "proto/config.pb.h"

namespace anvil::ckpt {

// Whether the layout tensor `name` is stored transposed by HF (Conv1D).
bool IsHfConv1DWeight(const std::string& name);

struct ExportStats {
  int tensors = 0;
  uint64_t bytes = 0;
  uint64_t peak_tensor_bytes = 0;  // the largest buffer held at once
};

// Writes `out_path` (safetensors, F32) from the params of the checkpoint at
// `checkpoint_path` (already verified by the caller).
absl::StatusOr<ExportStats> ExportHfGpt2(const std::string& checkpoint_path,
                                         const proto::CheckpointManifest& manifest,
                                         const std::string& out_path);

// config.json for GPT2LMHeadModel.from_pretrained(dir).
std::string HfGpt2ConfigJson(const proto::ModelConfig& model);

struct ImportReport {
  std::vector<float> params;         // full flat buffer in `layout` order
  std::vector<std::string> ignored;  // tensors in the file that were not used
};

// Reads a HF GPT-2 safetensors file into the flat layout. Errors name a
// missing tensor or one whose shape differs from the model's.
absl::StatusOr<ImportReport> ImportHfGpt2(const std::string& path, const ParamLayout& layout);

}  // namespace anvil::ckpt
