// Hugging Face interop for the Llama: the config.json that
// transformers' LlamaForCausalLM.from_pretrained accepts for a LlamaConfig.
// Tensor names need no mapping: the Llama's layout names are HF's (llama.h).
#pragma once

#include <string>

#include "models/llama/llama_config.h"

namespace anvil {

// config.json text: architectures, model_type "llama", the sizes, rope theta
// and rms eps (written so they parse back to the same fp32 values), tied or
// not, bos/eos ids inside the vocab, no biases, torch_dtype float32 (and
// dtype, the key transformers 5 writes).
std::string LlamaHfConfigJson(const LlamaConfig& c);

}  // namespace anvil
