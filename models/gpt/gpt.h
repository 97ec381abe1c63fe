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
// (max_batch, max_seq); Forward/Backward allocate nothing.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/backend.h"
#include "models/gpt/gpt_config.h"
#include "models/unit_model.h"

namespace anvil {

struct GptOptions {
  int max_batch = 8;  // B the arena is sized for
  int max_seq = 0;    // T the arena is sized for; 0 = config.max_seq_len
};

class Gpt : public UnitModel {
 public:
  static absl::StatusOr<std::unique_ptr<Gpt>> Create(const GptConfig& config,
                                                     const GptOptions& options,
                                                     kernels::Backend* backend);
  ~Gpt() override;

  const ParamLayout& layout() const override { return layout_; }
  std::vector<int> UnitDeps(int u) const override;
  void InitParams(float* host_params, uint64_t seed) const override;
  absl::Status SetBatch(const int32_t* inputs, const int32_t* targets, int B, int T) override;
  void Forward(int unit, UnitPtrs params) override;
  void Backward(int unit, UnitPtrs params, UnitPtrs grads, float loss_scale) override;
  double Loss() override;
  int64_t NumTargets() const override { return num_targets_; }
  double FlopsPerToken(int T) const override;

  const GptConfig& config() const { return config_; }
  // Logits (B,T,V) of the last forward, in backend memory.
  const float* logits() const { return acts_.logits; }
  size_t arena_bytes() const { return arena_bytes_; }

 private:
  Gpt(const GptConfig& config, const GptOptions& options, kernels::Backend* backend);
  void BuildLayout();
  void AllocateArena();

  // Pointers of a half block's tensors within its unit.
  struct AttnParams {
    float *ln1w, *ln1b, *qkvw, *qkvb, *attprojw, *attprojb;
  };
  struct MlpParams {
    float *ln2w, *ln2b, *fcw, *fcb, *fcprojw, *fcprojb;
  };
  AttnParams Attn(float* unit_base) const;
  MlpParams Mlp(float* unit_base) const;
  int HeadUnit() const { return 2 * config_.n_layer + 1; }

  void EmbedForward(UnitPtrs params);
  void AttnForward(int l, const AttnParams& w);
  void MlpForward(int l, const MlpParams& w);
  void HeadForward(UnitPtrs params);
  void HeadBackward(UnitPtrs params, UnitPtrs grads, float loss_scale);
  void MlpBackward(int l, const MlpParams& w, const MlpParams& g);
  void AttnBackward(int l, const AttnParams& w, const AttnParams& g);
  void EmbedBackward(UnitPtrs grads);

  GptConfig config_;
  GptOptions options_;
  kernels::Backend* backend_;
  ParamLayout layout_;
  std::vector<size_t> attn_offsets_;  // per-tensor offsets inside an attention unit
  std::vector<size_t> mlp_offsets_;   // per-tensor offsets inside an MLP unit

  int B_ = 0, T_ = 0;
  int64_t num_targets_ = 0;
  bool loss_ready_ = false;
  double loss_ = 0;

  // Saved activations, per layer where needed. All point into arena_.
  struct Layer {
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *atty, *att, *residual2, *ln2, *ln2_mean, *ln2_rstd,
        *fch, *fch_gelu, *residual3;
  };
  struct Acts {
    int32_t *inputs, *targets;
    float* encoded;  // (B,T,C) input of block 0
    std::vector<Layer> layers;
    float *lnf, *lnf_mean, *lnf_rstd, *logits, *probs, *losses;
    // Backward scratch, shared by all layers.
    float *dres, *dbig, *dbig2, *dmid, *dmid2, *dqkv, *datt, *dlogits;
  } acts_{};
  void* arena_ = nullptr;
  size_t arena_bytes_ = 0;
  std::vector<float> host_losses_;
};

}  // namespace anvil
