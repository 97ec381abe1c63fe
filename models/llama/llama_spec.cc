#include "models/llama/llama_spec.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "models/llama/llama.h"
#include "models/llama/llama_hf.h"

namespace anvil {

LlamaConfig ToLlamaConfig(const proto::ModelConfig& m) {
  LlamaConfig c;
  c.n_layer = m.n_layer();
  c.n_head = m.n_head();
  c.n_kv_head = m.n_kv_head() > 0 ? m.n_kv_head() : m.n_head();
  c.n_embd = m.n_embd();
  // 8C/3 in int64: --n_embd may be anything before validation.
  const int64_t f = (8 * static_cast<int64_t>(m.n_embd()) / 3 + 63) / 64 * 64;
  c.ffn_hidden = m.ffn_hidden() > 0 ? m.ffn_hidden() : static_cast<int>(std::min<int64_t>(f, 1 << 30));
  c.vocab_size = m.vocab_size();
  c.max_seq_len = m.max_seq_len();
  c.rope_theta = m.has_rope_theta() ? m.rope_theta() : 10000.0f;
  c.norm_eps = m.has_norm_eps() ? m.norm_eps() : 1e-5f;
  c.tie_embeddings = m.tie_embeddings();
  return c;
}

ModelSpec LlamaSpec() {
  ModelSpec s;
  s.kind = "llama";
  s.data = DataKind::kTokens;
  s.validate = [](const proto::TrainConfig& c) -> absl::Status {
    RETURN_IF_ERROR(ValidateLlamaConfig(ToLlamaConfig(c.model())));
    if (c.data().seq_len() <= 0 || c.data().seq_len() > c.model().max_seq_len()) {
      return absl::InvalidArgumentError(absl::StrCat("--seq_len (", c.data().seq_len(),
                                                     ") must be in 1..--max_seq_len (",
                                                     c.model().max_seq_len(), ")"));
    }
    return absl::OkStatus();
  };
  s.describe = [](const proto::ModelConfig& m) {
    const LlamaConfig c = ToLlamaConfig(m);
    return absl::StrFormat("Llama L=%d H=%d KV=%d C=%d F=%d T=%d V=%d theta=%g%s", c.n_layer,
                           c.n_head, c.n_kv_head, c.n_embd, c.ffn_hidden, c.max_seq_len,
                           c.vocab_size, c.rope_theta, c.tie_embeddings ? " tied" : "");
  };
  s.param_count = [](const proto::ModelConfig& m) { return LlamaParamCount(ToLlamaConfig(m)); };
  s.activation_bytes = [](const proto::TrainConfig& c) {
    return LlamaActivationBytesEstimate(ToLlamaConfig(c.model()), c.data().batch_size(),
                                        c.data().seq_len());
  };
  s.create = [](const proto::ModelConfig& m, const ModelBuildOptions& o,
                kernels::Device* device) -> absl::StatusOr<std::unique_ptr<UnitModel>> {
    LlamaOptions l;
    l.max_batch = o.max_batch;
    l.max_seq = o.max_seq;
    l.compute_dtype = o.compute_dtype;
    l.recompute = o.recompute;
    ASSIGN_OR_RETURN(std::unique_ptr<Llama> model, Llama::Create(ToLlamaConfig(m), l, device));
    return std::unique_ptr<UnitModel>(std::move(model));
  };
  HfNaming hf;
  hf.name = [](const std::string& n) { return n; };
  hf.transposed = [](const std::string&) { return false; };
  hf.tied_copies = [](const proto::ModelConfig&) {
    return std::vector<std::pair<std::string, std::string>>{};
  };
  hf.config_json = [](const proto::ModelConfig& m) { return LlamaHfConfigJson(ToLlamaConfig(m)); };
  s.hf = std::move(hf);
  return s;
}

}  // namespace anvil
