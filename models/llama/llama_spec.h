// The Llama's entry in the model registry (--model llama): config
// conversion (n_kv_head 0 = n_head; ffn_hidden 0 = 8C/3 rounded up to a
// multiple of 64, the SwiGLU width that keeps the MLP's parameter count at
// GPT's 8C^2), validation, sizes, construction and Hugging Face naming.
// Layout names are LlamaForCausalLM's own, so HF interchange is the name
// identity with no transposes; a tied head has no lm_head.weight (as
// transformers' save_pretrained writes it).
#pragma once

#include "models/llama/llama_config.h"
#include "models/model_spec.h"
#include "proto/config.pb.h"

namespace anvil {

LlamaConfig ToLlamaConfig(const proto::ModelConfig& m);

ModelSpec LlamaSpec();

}  // namespace anvil
