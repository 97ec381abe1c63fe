// The GPT's entry in the model registry (--model gpt): config conversion,
// validation, sizes, construction and Hugging Face GPT-2 naming.
//
// HF mapping (layout name -> HF name): "<name>" -> "transformer.<name>", and
// lm_head.weight = wte.weight (tied; written as a copy, ignored on import).
// HF's Conv1D stores (in, out), the transpose of this project's (out, in)
// Linear weights, so attn.c_attn, attn.c_proj, mlp.c_fc and mlp.c_proj
// weights are transposed both ways.
#pragma once

#include <string>

#include "models/gpt/gpt_config.h"
#include "models/model_spec.h"
#include "proto/config.pb.h"

namespace anvil {

GptConfig ToGptConfig(const proto::ModelConfig& m);

// Whether the layout tensor `name` is stored transposed by HF (Conv1D).
bool IsHfConv1DWeight(const std::string& name);

ModelSpec GptSpec();

}  // namespace anvil
