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

int64_t GptNumParams(const GptConfig& c) {
  const int64_t C = c.n_embd, V = c.vocab_size, T = c.max_seq_len, L = c.n_layer;
  const int64_t block = 2 * C + 3 * C * C + 3 * C + C * C + C + 2 * C + 4 * C * C + 4 * C + 4 * C * C + C;
  return V * C + T * C + L * block + 2 * C;
}

}  // namespace anvil
