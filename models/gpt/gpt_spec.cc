#include "models/gpt/gpt_spec.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "models/gpt/gpt.h"

namespace anvil {

GptConfig ToGptConfig(const proto::ModelConfig& m) {
  GptConfig g;
  g.n_layer = m.n_layer();
  g.n_head = m.n_head();
  g.n_embd = m.n_embd();
  g.max_seq_len = m.max_seq_len();
  g.vocab_size = m.vocab_size();
  return g;
}

bool IsHfConv1DWeight(const std::string& name) {
  for (const char* s :
       {".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight"}) {
    if (absl::EndsWith(name, s)) return true;
  }
  return false;
}

namespace {

std::string HfConfigJson(const proto::ModelConfig& c) {
  // bos/eos: the last id of the vocabulary (GPT-2's <|endoftext|> is 50256,
  // the last of its 50257), so it is always a valid id here too.
  const int eos = c.vocab_size() - 1;
  return absl::StrCat(
      "{\n  \"architectures\": [\"GPT2LMHeadModel\"],\n  \"model_type\": \"gpt2\",\n",
      "  \"vocab_size\": ", c.vocab_size(), ",\n  \"n_positions\": ", c.max_seq_len(),
      ",\n  \"n_embd\": ", c.n_embd(), ",\n  \"n_layer\": ", c.n_layer(),
      ",\n  \"n_head\": ", c.n_head(), ",\n  \"bos_token_id\": ", eos,
      ",\n  \"eos_token_id\": ", eos,
      ",\n  \"n_inner\": null,\n  \"activation_function\": \"gelu_new\",\n"
      "  \"layer_norm_epsilon\": 1e-05,\n  \"resid_pdrop\": 0.0,\n  \"embd_pdrop\": 0.0,\n"
      "  \"attn_pdrop\": 0.0,\n  \"tie_word_embeddings\": true,\n  \"torch_dtype\": "
      "\"float32\"\n}\n");
}

}  // namespace

ModelSpec GptSpec() {
  ModelSpec s;
  s.kind = "gpt";
  s.data = DataKind::kTokens;
  s.validate = [](const proto::TrainConfig& c) -> absl::Status {
    // Fields GPT-2 has no knob for are refused rather than silently ignored
    // (unset, or set to GPT-2's own choice, is fine).
    const proto::ModelConfig& m = c.model();
    auto unsupported = [](const char* flag, bool differs) {
      return differs ? absl::InvalidArgumentError(absl::StrCat(
                           "--", flag, " is not supported by --model gpt (leave it unset)"))
                     : absl::OkStatus();
    };
    RETURN_IF_ERROR(unsupported("n_kv_head", m.n_kv_head() != 0 && m.n_kv_head() != m.n_head()));
    RETURN_IF_ERROR(
        unsupported("ffn_hidden", m.ffn_hidden() != 0 && m.ffn_hidden() != 4 * m.n_embd()));
    RETURN_IF_ERROR(unsupported("rope_theta", m.has_rope_theta() && m.rope_theta() != 10000.0f));
    RETURN_IF_ERROR(unsupported("norm_eps", m.has_norm_eps() && m.norm_eps() != 1e-5f));
    RETURN_IF_ERROR(unsupported("tie_embeddings", m.has_tie_embeddings() && !m.tie_embeddings()));
    RETURN_IF_ERROR(ValidateGptConfig(ToGptConfig(m)));
    if (c.data().seq_len() <= 0 || c.data().seq_len() > c.model().max_seq_len()) {
      return absl::InvalidArgumentError(absl::StrCat("--seq_len (", c.data().seq_len(),
                                                     ") must be in 1..--max_seq_len (",
                                                     c.model().max_seq_len(), ")"));
    }
    return absl::OkStatus();
  };
  s.describe = [](const proto::ModelConfig& m) {
    return absl::StrFormat("GPT L=%d H=%d C=%d T=%d V=%d", m.n_layer(), m.n_head(), m.n_embd(),
                           m.max_seq_len(), m.vocab_size());
  };
  s.param_count = [](const proto::ModelConfig& m) { return GptParamCount(ToGptConfig(m)); };
  s.activation_bytes = [](const proto::TrainConfig& c) {
    return GptActivationBytesEstimate(ToGptConfig(c.model()), c.data().batch_size(),
                                      c.data().seq_len());
  };
  s.create = [](const proto::ModelConfig& m, const ModelBuildOptions& o,
                kernels::Device* device) -> absl::StatusOr<std::unique_ptr<UnitModel>> {
    GptOptions g;
    g.max_batch = o.max_batch;
    g.max_seq = o.max_seq;
    g.compute_dtype = o.compute_dtype;
    g.recompute = o.recompute;
    ASSIGN_OR_RETURN(std::unique_ptr<Gpt> model, Gpt::Create(ToGptConfig(m), g, device));
    return std::unique_ptr<UnitModel>(std::move(model));
  };
  HfNaming hf;
  hf.name = [](const std::string& n) { return absl::StrCat("transformer.", n); };
  hf.transposed = IsHfConv1DWeight;
  hf.tied_copies = [](const proto::ModelConfig&) {
    return std::vector<std::pair<std::string, std::string>>{{"lm_head.weight", "wte.weight"}};
  };
  hf.config_json = HfConfigJson;
  s.hf = std::move(hf);
  return s;
}

}  // namespace anvil
