// GptConfig: the shape of a GPT-2 style model, and its validation.
#pragma once

#include <cstdint>

#include "absl/status/status.h"

namespace anvil {

struct GptConfig {
  int n_layer = 6;      // L
  int n_head = 6;       // H
  int n_embd = 384;     // C
  int max_seq_len = 256;  // T: number of learned positions
  int vocab_size = 256;   // V
};

// Checks the config alone: positive sizes, C divisible by H. Errors name the
// offending field as the flags spell it (--n_embd, --n_head, ...).
absl::Status ValidateGptConfig(const GptConfig& c);

// Number of parameters (tied embeddings counted once).
int64_t GptNumParams(const GptConfig& c);

// The same count in double precision: exact below 2^53 and finite for any
// int sizes, so inputs can be bounded before anything is allocated.
double GptParamCount(const GptConfig& c);

// Bytes of the forward/backward activation arena for micro-batches of
// `batch` x `seq` tokens (fp32 activations, no recomputation: an upper
// bound within a few percent of what Gpt allocates, which bf16 compute and
// --recompute unit only lower). Double precision for the same reason.
double GptActivationBytesEstimate(const GptConfig& c, int batch, int seq);

}  // namespace anvil
