// Dit: the DiT denoiser (Peebles & Xie, facebookresearch/DiT models.py) as a
// DiffusionModel.
//
// x_t (B,S,S,Cin) NHWC -> p x p patches -> tokens (B,T,C), T = (S/p)^2, plus
// a 2-D sin-cos positional embedding (fixed, or learned when
// config.learned_pos) -> L blocks -> final adaLN layer -> per-token
// p*p*Cin outputs -> unpatchify. Conditioning c (B,C) = t MLP(sinusoidal(t))
// + class_table[label]; every block and the final layer read SiLU(c).
// A block: (shift, scale, gate) x (attention, MLP) = Linear(SiLU(c)) (B,6C);
// x += gate_a * proj(attn(modulate(LN(x), shift_a, scale_a))); x += gate_m *
// fc2(gelu_tanh(fc1(modulate(LN(x), shift_m, scale_m)))), LN without affine
// (eps 1e-6), non-causal multi-head attention on strided views of one packed
// qkv GEMM output. adaLN and the final linear are zero-initialised
// (adaLN-Zero): a fresh DiT predicts 0.
//
// Units: 0 = "embed" (x_embedder.proj, pos_embed when learned, t_embedder,
// y_embedder), 1+l = "blocks.<l>", L+1 = "final" (final_layer). Tensor names
// and shapes are those of models.py (x_embedder.proj.weight is the conv's
// (C,Cin,p,p)). No parameter crosses a unit; the activation SiLU(c) does:
// unit 0 computes it, the others read it and accumulate d SiLU(c), which
// unit 0's backward consumes last.
//
// Patchify and unpatchify are permutations done on the host in
// SetDiffusionBatch: x_t is rearranged into (B*T, Cin*p*p) rows in the
// conv weight's (c, i, j) order, so the patch embedding is one GEMM, and the
// target into the final linear's (i, j, c) token order, so the MSE (a mean
// over all elements, order-free) compares like with like; CopyPrediction
// undoes the latter.
//
// Mixed precision is GPT's policy: bf16 parameters and block activations,
// bf16 GEMMs accumulating in fp32; the residual stream, c, norm
// statistics, the prediction, the loss and parameter gradients are fp32.
// With recompute, backward reruns a block's forward from its saved input.
// One activation arena is allocated at construction for max_batch images.
#pragma once

#include <initializer_list>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/device.h"
#include "kernels/tensor.h"
#include "models/diffusion_model.h"
#include "models/dit/dit_config.h"

namespace anvil {

struct DitOptions {
  int max_batch = 8;                  // B the arena is sized for
  DType compute_dtype = DType::kF32;  // F32 or BF16
  bool recompute = false;             // rerun each block's forward in backward
};

class Dit : public DiffusionModel {
 public:
  static absl::StatusOr<std::unique_ptr<Dit>> Create(const DitConfig& config,
                                                     const DitOptions& options,
                                                     kernels::Device* device);
  ~Dit() override;

  const ParamLayout& layout() const override { return layout_; }
  std::vector<int> UnitDeps(int u) const override;
  void InitParams(float* host_params, uint64_t seed) const override;
  absl::Status SetDiffusionBatch(const DiffusionBatch& b) override;
  DType compute_dtype() const override { return options_.compute_dtype; }
  void Forward(int unit, ParamPtrs params) override;
  void Backward(int unit, ParamPtrs params, GradPtrs grads, float loss_scale) override;
  double Loss() override;
  void CopyPrediction(float* host) const override;
  double FlopsPerImage() const override { return DitFlopsPerImage(config_); }
  int image_height() const override { return config_.image_size; }
  int image_width() const override { return config_.image_size; }
  int image_channels() const override { return config_.image_channels; }
  int num_classes() const override { return config_.num_classes; }

  const DitConfig& config() const { return config_; }
  size_t arena_bytes() const { return arena_bytes_; }

 private:
  using TV = kernels::TensorView;
  Dit(const DitConfig& config, const DitOptions& options, kernels::Device* device);
  void BuildLayout();
  absl::Status AllocateArena();

  struct EmbedParams {
    TV patch_w, patch_b, pos, t1_w, t1_b, t2_w, t2_b, table;  // pos absent when fixed
  };
  struct BlockParams {
    TV qkv_w, qkv_b, proj_w, proj_b, fc1_w, fc1_b, fc2_w, fc2_b, ada_w, ada_b;
  };
  struct FinalParams {
    TV ada_w, ada_b, lin_w, lin_b;
  };
  EmbedParams Embed(void* base, DType dt) const;
  BlockParams Block(void* base, DType dt) const;
  FinalParams Final(void* base, DType dt) const;
  int FinalUnit() const { return config_.n_layer + 1; }
  TV Act(void* p, std::initializer_list<int64_t> shape) const;  // compute dtype
  // Column block k of a (B, n*C) per-sample tensor: a (B,C) view, stride n*C.
  TV Chunk(void* base, DType dt, int n, int k) const;
  const float* BlockInput(int l) const;
  // src (fp32) as a compute-dtype view, converted into `scratch` under bf16.
  TV ToCompute(const float* src, void* scratch, std::initializer_list<int64_t> shape);

  void EmbedForward(const EmbedParams& w);
  void BlockForward(int l, const BlockParams& w);
  void FinalForward(const FinalParams& w);
  void FinalBackward(const FinalParams& w, const FinalParams& g, float loss_scale);
  void BlockBackward(int l, const BlockParams& w, const BlockParams& g);
  void EmbedBackward(const EmbedParams& w, const EmbedParams& g);
  // The modulation tensor's gradient (B,k*C) F32 fed to its adaLN linear,
  // whose input gradient accumulates into d SiLU(c).
  void AdaLnBackward(const TV& ada_w, const TV& dada_w, const TV& dada_b, int chunks);

  DitConfig config_;
  DitOptions options_;
  kernels::Device* device_;
  ParamLayout layout_;
  std::vector<size_t> embed_offsets_, block_offsets_, final_offsets_;

  int B_ = 0;
  bool has_target_ = false;
  bool loss_ready_ = false;
  double loss_ = 0;

  struct Layer {
    float *residual2, *residual3;     // fp32 (N,C): after attention, after MLP
    void* mod;                        // (B,6C) compute dtype
    void *ln1, *m1, *qkv, *atty, *a;  // compute dtype
    void *ln2, *m2, *h, *hg, *f;
    float *mean1, *rstd1, *mean2, *rstd2, *lse;
  };
  struct Acts {
    float *xp, *target;  // (N,P) fp32 patches in, permuted target
    void* xp_cd;         // (N,P) compute dtype (aliases xp under fp32)
    int32_t *timesteps, *labels;
    float* pos;              // (T,C) fixed sin-cos positions
    float* ones;             // (C) the LayerNorms' unit weight
    float* dnorm_w;          // (C) their discarded weight gradient
    void *tfreq, *h1, *h1s;  // (B,F), (B,C), (B,C) compute dtype
    float* c;                // (B,C) conditioning
    void* silu_c;            // (B,C) compute dtype
    float* tokens;           // (N,C) input of block 0
    std::vector<Layer> layers;
    void* modf;                          // (B,2C) compute dtype
    void *lnf, *mf;                      // (N,C) compute dtype
    float *meanf, *rstdf, *pred, *loss;  // pred (N,P) fp32
    // Backward scratch, shared by all units.
    float *dres, *dmod, *dsilu_c, *dc;
    void *dres_cd, *dmod_cd, *dpred, *dcd_c, *dcd_b;   // compute dtype
    void *dcd_n1, *dcd_n2, *dcd_n3, *dqkv, *dh, *dhg;  // compute dtype
  } acts_{};
  void* arena_ = nullptr;
  size_t arena_bytes_ = 0;
};

}  // namespace anvil
