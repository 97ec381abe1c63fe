// Llama: a Llama-style decoder (pre-RMSNorm blocks, rotary positions,
// grouped-query causal attention, SwiGLU MLP, no biases, untied or tied
// head) as a UnitModel.
//
// Units: 0 = "embed" (model.embed_tokens (V,C)); then two per layer l:
// 1+2l = "layers.<l>.attn" (input_layernorm, self_attn.{q,k,v,o}_proj) and
// 2+2l = "layers.<l>.mlp" (post_attention_layernorm, mlp.{gate,up,down}_proj);
// 2L+1 = "head" (model.norm, plus lm_head when untied; tied, it reads
// embed_tokens from unit 0).
// Tensor names and shapes ARE Hugging Face LlamaForCausalLM's (nn.Linear
// (out, in) weights, HF's rotate_half RoPE convention), so HF import and
// export are a name identity with no transposes. q, k, v are declared
// adjacent, as are gate and up: each group is one row-stacked matrix, so
// one GEMM computes q|k|v (N, C + 2 NKV hd) and one computes gate|up
// (N, 2F); RoPE, attention and SwiGLU then read strided views of those.
// All activations live in one arena allocated at construction for
// (max_batch, max_seq).
//
// Mixed precision is GPT's policy (models/gpt/gpt.h): bf16 parameters and
// block activations, bf16 x bf16 GEMMs with fp32 accumulation, while the
// residual stream, norm statistics, logits, softmax, loss and parameter
// gradients are fp32. With recompute, backward reruns each block unit's
// forward from its saved input: bit-identical gradients, less memory.
#pragma once

#include <initializer_list>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/device.h"
#include "kernels/tensor.h"
#include "models/llama/llama_config.h"
#include "models/token_model.h"

namespace anvil {

struct LlamaOptions {
  int max_batch = 8;  // B the arena is sized for
  int max_seq = 0;    // T the arena is sized for; 0 = config.max_seq_len
  DType compute_dtype = DType::kF32;  // F32 or BF16
  bool recompute = false;             // rerun each block unit's forward in backward
};

class Llama : public TokenModel {
 public:
  static absl::StatusOr<std::unique_ptr<Llama>> Create(const LlamaConfig& config,
                                                       const LlamaOptions& options,
                                                       kernels::Device* device);
  ~Llama() override;

  const ParamLayout& layout() const override { return layout_; }
  std::vector<int> UnitDeps(int u) const override;
  void InitParams(float* host_params, uint64_t seed) const override;
  using TokenModel::SetBatch;
  absl::Status SetBatch(const int32_t* inputs, const int32_t* targets, int B, int T) override;
  DType compute_dtype() const override { return options_.compute_dtype; }
  void Forward(int unit, ParamPtrs params) override;
  void Backward(int unit, ParamPtrs params, GradPtrs grads, float loss_scale) override;
  double Loss() override;
  LossTerms loss_terms() override;
  int64_t NumTargets() const override { return num_targets_; }
  double FlopsPerToken(int T) const override;

  const LlamaConfig& config() const { return config_; }
  // Logits (B,T,V) fp32 of the last forward, in device memory.
  const float* logits() const { return acts_.logits; }
  size_t arena_bytes() const { return arena_bytes_; }

 private:
  using TV = kernels::TensorView;
  Llama(const LlamaConfig& config, const LlamaOptions& options, kernels::Device* device);
  void BuildLayout();
  absl::Status AllocateArena();

  // Views of a half block's tensors within its unit: qkv is q|k|v stacked
  // (W, C), gu is gate|up stacked (2F, C).
  struct AttnParams {
    TV norm, qkv, o;
  };
  struct MlpParams {
    TV norm, gu, down;
  };
  AttnParams Attn(void* unit_base, DType dtype) const;
  MlpParams Mlp(void* unit_base, DType dtype) const;
  int HeadUnit() const { return 2 * config_.n_layer + 1; }
  int64_t QkvWidth() const;  // C + 2 * NKV * hd
  TV Act(void* p, std::initializer_list<int64_t> shape) const;  // compute dtype
  // Strided (B,T,heads,hd) views of q, k, v inside a packed (B,T,W) buffer.
  struct Qkv {
    TV q, k, v;
  };
  Qkv PackedViews(void* qkv) const;
  const float* BlockInput(int l) const;
  const float* HeadInput() const;

  void EmbedForward(ParamPtrs params);
  void AttnForward(int l, const AttnParams& w);
  void MlpForward(int l, const MlpParams& w);
  void HeadForward(ParamPtrs params);
  void HeadBackward(ParamPtrs params, GradPtrs grads, float loss_scale);
  void MlpBackward(int l, const MlpParams& w, const MlpParams& g);
  void AttnBackward(int l, const AttnParams& w, const AttnParams& g);
  void EmbedBackward(GradPtrs grads);
  // dres rounded to the compute dtype (dres itself in fp32).
  const TV& DresCompute();

  LlamaConfig config_;
  LlamaOptions options_;
  kernels::Device* device_;
  ParamLayout layout_;
  std::vector<size_t> attn_offsets_;  // per-tensor offsets inside an attention unit
  std::vector<size_t> mlp_offsets_;   // per-tensor offsets inside an MLP unit

  int B_ = 0, T_ = 0;
  int64_t num_targets_ = 0;
  bool loss_ready_ = false;
  double loss_ = 0;

  // Raw activation pointers (arena_), viewed with the batch's (B,T) per use.
  // Block tensors other than the residual stream alias one shared set when
  // recomputing.
  struct Layer {
    void *ln1, *qkv, *atty, *ln2, *gu, *h;  // compute dtype; qkv holds rotated q, k
    float *rstd1, *rstd2, *lse;
    float *residual2, *residual3;
  };
  struct Acts {
    int32_t *inputs, *targets;
    float* encoded;  // (B,T,C) input of layer 0
    std::vector<Layer> layers;
    void* lnf;  // compute dtype
    float *rstdf, *logits, *probs, *losses;
    // Backward scratch, shared by all layers.
    float* dres;
    void *dres_cd, *dgu, *dh, *dmid, *dmid2, *dqkv, *dlogits;  // compute dtype
  } acts_{};
  TV dres_cd_view_;
  void* arena_ = nullptr;
  size_t arena_bytes_ = 0;
  std::vector<float> host_losses_;
};

}  // namespace anvil
