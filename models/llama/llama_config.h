// LlamaConfig: the shape of a Llama-style Transformer (RMSNorm, rotary
// positions, grouped-query attention, SwiGLU MLP, no biases), its
// validation, parameter count and activation-memory estimate.
#pragma once

#include <cstdint>

#include "absl/status/status.h"

namespace anvil {

struct LlamaConfig {
  int n_layer = 6;        // L
  int n_head = 6;         // NH query heads
  int n_kv_head = 6;      // NKV key/value heads (grouped-query when < NH)
  int n_embd = 384;       // C = NH * head size
  int ffn_hidden = 1024;  // F, HF intermediate_size
  int vocab_size = 256;   // V
  int max_seq_len = 256;  // longest sequence (HF max_position_embeddings)
  float rope_theta = 10000.0f;
  float norm_eps = 1e-5f;     // RMSNorm epsilon (HF rms_norm_eps)
  bool tie_embeddings = false;  // lm_head reads model.embed_tokens
};

// Checks the config alone: positive sizes, C divisible by NH, NH by NKV, an
// even head size (rotary pairs), theta and eps positive. Errors name the
// offending field as the flags spell it (--n_kv_head, ...).
absl::Status ValidateLlamaConfig(const LlamaConfig& c);

inline int LlamaHeadSize(const LlamaConfig& c) { return c.n_embd / c.n_head; }

// Number of parameters (tied embeddings counted once).
int64_t LlamaNumParams(const LlamaConfig& c);
// The same count in double precision (finite for any int sizes).
double LlamaParamCount(const LlamaConfig& c);

// Bytes of the activation arena for micro-batches of `batch` x `seq`
// tokens with fp32 activations and no recomputation: an upper bound within
// a few percent of what Llama allocates (bf16 and --recompute only lower it).
double LlamaActivationBytesEstimate(const LlamaConfig& c, int batch, int seq);

}  // namespace anvil
