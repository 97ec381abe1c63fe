#include "models/llama/llama_config.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace anvil {

absl::Status ValidateLlamaConfig(const LlamaConfig& c) {
  for (auto [name, v] : {std::pair{"n_layer", c.n_layer}, {"n_head", c.n_head},
                         {"n_kv_head", c.n_kv_head}, {"n_embd", c.n_embd},
                         {"ffn_hidden", c.ffn_hidden}, {"max_seq_len", c.max_seq_len},
                         {"vocab_size", c.vocab_size}}) {
    if (v <= 0) return absl::InvalidArgumentError(absl::StrCat("--", name, " must be > 0, got ", v));
  }
  if (c.n_embd % c.n_head != 0) {
    return absl::InvalidArgumentError(absl::StrCat("--n_embd (", c.n_embd,
                                                   ") must be divisible by --n_head (", c.n_head, ")"));
  }
  if (c.n_head % c.n_kv_head != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--n_head (", c.n_head, ") must be a multiple of --n_kv_head (", c.n_kv_head, ")"));
  }
  if ((c.n_embd / c.n_head) % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("--n_embd / --n_head (head size ",
                                                   c.n_embd / c.n_head,
                                                   ") must be even for rotary embeddings"));
  }
  if (!(c.rope_theta > 0.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("--rope_theta must be > 0, got ", c.rope_theta));
  }
  if (!(c.norm_eps > 0.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("--norm_eps must be > 0, got ", c.norm_eps));
  }
  return absl::OkStatus();
}

int64_t LlamaNumParams(const LlamaConfig& c) { return static_cast<int64_t>(LlamaParamCount(c)); }

double LlamaParamCount(const LlamaConfig& c) {
  const double C = c.n_embd, V = c.vocab_size, F = c.ffn_hidden, L = c.n_layer;
  const double kv = static_cast<double>(c.n_kv_head) * (c.n_embd / c.n_head);  // NKV * hd
  const double attn = C + (C + 2 * kv) * C + C * C;  // norm, q k v, o
  const double mlp = C + 2 * F * C + C * F;           // norm, gate up, down
  return V * C + L * (attn + mlp) + C + (c.tie_embeddings ? 0.0 : V * C);
}

double LlamaActivationBytesEstimate(const LlamaConfig& c, int batch, int seq) {
  const double BT = static_cast<double>(batch) * seq, C = c.n_embd, V = c.vocab_size,
               F = c.ffn_hidden, NH = c.n_head, L = c.n_layer;
  const double W = C + 2.0 * c.n_kv_head * (c.n_embd / c.n_head);  // packed q k v width
  // Per block: two norm outputs, qkv, the attention output, two residuals,
  // gate|up and the SwiGLU output, the attention row statistics (NH per
  // token; flash attention keeps nothing T x T) and two norm statistics.
  const double block = BT * (6 * C + W + 3 * F) + BT * NH + BT * 2;
  // Outside the blocks: ids and targets, the embedding, the final norm and
  // its statistics, logits, probabilities, their gradient, the losses, and
  // the backward scratch (dres, dmid, dmid2, dqkv, dgate|up, dh).
  const double rest = BT * (5 * C + W + 3 * F + 3 * V) + BT * 4;
  return (L * block + rest) * 4;
}

}  // namespace anvil
