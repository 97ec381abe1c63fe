// ModelSpec: everything the runtime knows about one kind of model.
//
// A model folder (models/<kind>/) describes itself with a ModelSpec and
// registers it (models/builtin_models.cc, one line per model; a model
// defined elsewhere, e.g. in a test, calls RegisterModel). The trainer,
// the memory check, the config validation, the checkpoint tools and the
// Hugging Face interchange look the spec up by the config's model kind
// (`--model`) and never name a model. The spec sees the run config because a
// model's validity can depend on its data (a sequence longer than the
// learned positions); it never sees ranks or shards.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/device.h"
#include "models/unit_model.h"
#include "proto/config.pb.h"

namespace anvil {

// The data source a model is fed by (runtime/data builds it).
enum class DataKind {
  kTokens,     // token shards: "tokens", "targets" (B,T) I32
  kImages,     // images: "images" (B,H,W,C) F32 in [-1,1], "labels" (B) I32
  kDiffusion,  // noised images: "x_t", "target" (B,H,W,C) F32, "timesteps",
               // "labels" (B) I32 (null class = num_classes when dropped)
};

struct ModelBuildOptions {
  int max_batch = 8;  // micro-batch the activation arena is sized for
  int max_seq = 0;    // sequence length it is sized for (token models)
  DType compute_dtype = DType::kF32;  // F32, or BF16 under mixed precision
  bool recompute = false;             // rerun each unit's forward in backward
};

// How a model's tensors are named in Hugging Face checkpoints
// (safetensors export with `ckpt_tool export`, import with --init_from).
struct HfNaming {
  // HF name of a layout tensor.
  std::function<std::string(const std::string& layout_name)> name;
  // Whether HF stores a layout tensor transposed (GPT-2's Conv1D weights).
  std::function<bool(const std::string& layout_name)> transposed;
  // Extra HF tensors written as copies of layout tensors (a tied lm_head):
  // {hf name, layout name}; ignored on import.
  std::function<std::vector<std::pair<std::string, std::string>>(const proto::ModelConfig&)>
      tied_copies;
  // config.json for transformers' from_pretrained(dir).
  std::function<std::string(const proto::ModelConfig&)> config_json;
};

struct ModelSpec {
  std::string kind;  // the value of --model
  DataKind data = DataKind::kTokens;
  // Checks the model fields of the config (and the data shape it implies);
  // errors name the flag, e.g. "--n_head must divide --n_embd".
  std::function<absl::Status(const proto::TrainConfig&)> validate;
  // One line for the start-up banner: "GPT L=4 H=4 C=128 T=128 V=256".
  std::function<std::string(const proto::ModelConfig&)> describe;
  // Parameter count and activation bytes of one micro-batch of the run, in
  // double precision so that absurd sizes can be refused before allocation.
  std::function<double(const proto::ModelConfig&)> param_count;
  std::function<double(const proto::TrainConfig&)> activation_bytes;
  std::function<absl::StatusOr<std::unique_ptr<UnitModel>>(
      const proto::ModelConfig&, const ModelBuildOptions&, kernels::Device*)>
      create;
  std::optional<HfNaming> hf;  // absent: no Hugging Face interchange
};

}  // namespace anvil
