#include "models/llama/llama_hf.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace anvil {
namespace {

// The shortest decimal that reads back as exactly v (JSON number syntax);
// whole numbers as "500.0", as Python writes them.
std::string ShortestFloat(float v) {
  char buf[32];
  if (v == std::floor(v) && std::fabs(v) < 1e15f) {
    std::snprintf(buf, sizeof(buf), "%.1f", static_cast<double>(v));
    return buf;
  }
  for (int prec = 1; prec <= 9; ++prec) {
    std::snprintf(buf, sizeof(buf), "%.*g", prec, static_cast<double>(v));
    if (std::strtof(buf, nullptr) == v) break;
  }
  return buf;
}

}  // namespace

std::string LlamaHfConfigJson(const LlamaConfig& c) {
  const int V = c.vocab_size;
  const int bos = V > 1 ? 1 : 0, eos = V > 2 ? 2 : V - 1;  // HF's defaults, clamped to the vocab
  const std::string theta = ShortestFloat(c.rope_theta);
  return absl::StrCat(
      "{\n"
      "  \"architectures\": [\"LlamaForCausalLM\"],\n"
      "  \"model_type\": \"llama\",\n"
      "  \"hidden_size\": ", c.n_embd, ",\n",
      "  \"intermediate_size\": ", c.ffn_hidden, ",\n",
      "  \"num_hidden_layers\": ", c.n_layer, ",\n",
      "  \"num_attention_heads\": ", c.n_head, ",\n",
      "  \"num_key_value_heads\": ", c.n_kv_head, ",\n",
      "  \"head_dim\": ", c.n_embd / c.n_head, ",\n",
      "  \"hidden_act\": \"silu\",\n"
      "  \"max_position_embeddings\": ", c.max_seq_len, ",\n",
      "  \"rms_norm_eps\": ", ShortestFloat(c.norm_eps), ",\n",
      "  \"rope_theta\": ", theta, ",\n",
      "  \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": ", theta, "},\n",
      "  \"attention_bias\": false,\n"
      "  \"mlp_bias\": false,\n"
      "  \"tie_word_embeddings\": ", c.tie_embeddings ? "true" : "false", ",\n",
      "  \"vocab_size\": ", V, ",\n",
      "  \"bos_token_id\": ", bos, ",\n",
      "  \"eos_token_id\": ", eos, ",\n",
      "  \"initializer_range\": 0.02,\n"
      "  \"torch_dtype\": \"float32\",\n"
      "  \"dtype\": \"float32\"\n"
      "}\n");
}

}  // namespace anvil
