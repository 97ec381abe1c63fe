// Hugging Face interchange for any registered model with HF naming
// (ModelSpec::hf): export a checkpoint's weights to a safetensors file
// `transformers` loads, and import such a file as the initial weights of a
// run. The model's spec says how each layout tensor is named and whether HF
// stores it transposed; tied copies (a GPT-2 lm_head) are written on export
// and ignored on import.
//
// Export streams: one tensor at a time is read from the checkpoint's shard
// files (only the byte ranges holding it), transposed if needed and
// appended, so memory is bounded by the largest tensor, never the model.
// Import accepts a file or a folder holding model.safetensors (what export
// and save_pretrained write), HF names or layout names, F32/F16/BF16 data,
// and ignores tensors the model does not have (e.g. GPT-2's attention-mask
// buffers), listing them.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "models/model_spec.h"
#include "models/param_layout.h"
#include "proto/checkpoint.pb.h"

namespace anvil::ckpt {

struct ExportStats {
  int tensors = 0;
  uint64_t bytes = 0;
  uint64_t peak_tensor_bytes = 0;  // the largest buffer held at once
};

// Writes `out_path` (safetensors, F32) from the params of the checkpoint at
// `checkpoint_path` (already verified by the caller).
absl::StatusOr<ExportStats> ExportHf(const std::string& checkpoint_path,
                                     const proto::CheckpointManifest& manifest,
                                     const HfNaming& naming, const std::string& out_path);

struct ImportReport {
  std::string file;                  // the safetensors file read
  std::vector<float> params;         // full flat buffer in `layout` order
  std::vector<std::string> ignored;  // tensors in the file that were not used
};

// Reads a HF safetensors file (or DIR/model.safetensors) into the flat
// layout. Errors name a missing tensor or one whose shape differs.
absl::StatusOr<ImportReport> ImportHf(const std::string& path, const ParamLayout& layout,
                                      const HfNaming& naming);

}  // namespace anvil::ckpt
