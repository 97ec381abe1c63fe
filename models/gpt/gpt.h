// Gpt: GPT-2 (pre-LayerNorm blocks, learned positions, tied input/output
// embeddings, GELU-tanh MLP of width 4C) as a UnitModel.
//
// Units: 0 = "embed" (wte (V,C), wpe (T,C)); then two per block l:
// 1+2l = "h.<l>.attn" (ln_1, attn.c_attn, attn.c_proj) and 2+2l = "h.<l>.mlp"
// (ln_2, mlp.c_fc, mlp.c_proj); 2L+1 = "head" (ln_f), which reads wte from
// unit 0 (tied weights). Half-block units give the sharded runtime twice as
// many points at which gradients become final: the last block's reduction,
// which nothing can hide, is then about a third of a block.
// Linear weights are (out, in) like torch.nn.Linear; tensor names follow
// Hugging Face GPT-2 ("h.0.attn.c_attn.weight"), whose Conv1D stores the
// transpose — exporters transpose those.
// All activations live in one arena allocated at construction for
// (max_batch, max_seq); Forward/Backward allocate nothing but op scratch
// from the device's caching allocator.
//
// Mixed precision (compute_dtype BF16, the policy of torch autocast + FSDP
// MixedPrecisionPolicy): parameters arrive in bf16; LayerNorm outputs, the
// qkv/attention/MLP activations and the gradients flowing between them are
// bf16; matmuls run bf16 x bf16 with fp32 accumulation; the residual stream,
// norm statistics, logits, softmax and loss are fp32, and so are parameter
// gradients. With recompute, a block's activations are not kept per layer:
// backward reruns the unit's forward from its saved input (the residual
// stream), which gives bit-identical gradients for less memory.
#pragma once

#include <initializer_list>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/device.h"
#include "kernels/tensor.h"
#include "models/gpt/gpt_config.h"
#include "models/token_model.h"

namespace anvil {

struct GptOptions {
  int max_batch = 8;  // B the arena is sized for
  int max_seq = 0;    // T the arena is sized for; 0 = config.max_seq_len
  DType compute_dtype = DType::kF32;  // F32 or BF16
  bool recompute = false;             // rerun each block unit's forward in backward
};

class Gpt : public TokenModel {
 public:
  static absl::StatusOr<std::unique_ptr<Gpt>> Create(const GptConfig& config,
                                                     const GptOptions& options,
                                                     kernels::Device* device);
  ~Gpt() override;

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

  const GptConfig& config() const { return config_; }
  // Logits (B,T,V) fp32 of the last forward, in device memory.
  const float* logits() const { return acts_.logits; }
  size_t arena_bytes() const { return arena_bytes_; }

 private:
  using TV = kernels::TensorView;
  Gpt(const GptConfig& config, const GptOptions& options, kernels::Device* device);
  void BuildLayout();
  absl::Status AllocateArena();

  // Views of a half block's tensors within its unit (params in the compute
  // dtype, grads in fp32).
  struct AttnParams {
    TV ln1w, ln1b, qkvw, qkvb, attprojw, attprojb;
  };
  struct MlpParams {
    TV ln2w, ln2b, fcw, fcb, fcprojw, fcprojb;
  };
  AttnParams Attn(void* unit_base, DType dtype) const;
  MlpParams Mlp(void* unit_base, DType dtype) const;
  int HeadUnit() const { return 2 * config_.n_layer + 1; }
  TV Act(void* p, std::initializer_list<int64_t> shape) const;  // compute dtype
  TV F32(float* p, std::initializer_list<int64_t> shape) const;

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

  GptConfig config_;
  GptOptions options_;
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
    void *ln1, *qkv, *atty, *ln2, *fch, *fch_gelu;  // compute dtype
    float *ln1_mean, *ln1_rstd, *lse, *ln2_mean, *ln2_rstd;
    float *residual2, *residual3;
  };
  struct Acts {
    int32_t *inputs, *targets;
    float* encoded;  // (B,T,C) input of block 0
    std::vector<Layer> layers;
    void* lnf;  // compute dtype
    float *lnf_mean, *lnf_rstd, *logits, *probs, *losses;
    // Backward scratch, shared by all layers.
    float* dres;
    void *dres_cd, *dbig, *dbig2, *dmid, *dmid2, *dqkv, *dlogits;  // compute dtype
  } acts_{};
  TV dres_cd_view_;
  void* arena_ = nullptr;
  size_t arena_bytes_ = 0;
  std::vector<float> host_losses_;
};

}  // namespace anvil
