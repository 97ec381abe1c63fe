#include "models/gpt/gpt_config.h"

#include "absl/strings/str_cat.h"

namespace anvil {

absl::Status ValidateGptConfig(const GptConfig& c) {
  auto positive = [](const char* name, int v) -> absl::Status {
    if (v <= 0) return absl::InvalidArgumentError(absl::StrCat("--", name, " must be > 0, got ", v));
    return absl::OkStatus();
  };
  for (auto [name, v] : {std::pair{"n_layer", c.n_layer}, {"n_head", c.n_head}, {"n_embd", c.n_embd},
                         {"max_seq_len", c.max_seq_len}, {"vocab_size", c.vocab_size}}) {
    if (absl::Status s = positive(name, v); !s.ok()) return s;
  }
  if (c.n_embd % c.n_head != 0) {
    return absl::InvalidArgumentError(absl::StrCat("--n_embd (", c.n_embd,
                                                   ") must be divisible by --n_head (", c.n_head, ")"));
  }
  return absl::OkStatus();
}

int64_t GptNumParams(const GptConfig& c) { return static_cast<int64_t>(GptParamCount(c)); }

double GptParamCount(const GptConfig& c) {
  const double C = c.n_embd, V = c.vocab_size, T = c.max_seq_len, L = c.n_layer;
  const double block = 2 * C + 3 * C * C + 3 * C + C * C + C + 2 * C + 4 * C * C + 4 * C + 4 * C * C + C;
  return V * C + T * C + L * block + 2 * C;
}

double GptActivationBytesEstimate(const GptConfig& c, int batch, int seq) {
  const double B = batch, T = seq, C = c.n_embd, V = c.vocab_size, H = c.n_head, L = c.n_layer;
  const double BT = B * T;
  // Per block: ln1, qkv (3C), attention output, two residuals, ln2, fc and
  // gelu (4C each), the attention row statistics (H per token; flash
  // attention keeps nothing of size T x T) and the norm statistics.
  const double block = BT * C * 16 + BT * H + BT * 4;
  // Outside the blocks: the embedding, the final norm, logits, probabilities
  // and their gradient (3V), and the backward scratch (dres .. dqkv, 16C).
  const double rest = BT * C * 18 + BT * V * 3 + BT * 6;
  return (L * block + rest) * 4;
}

}  // namespace anvil
