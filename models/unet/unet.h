// UNet: a DDPM-style denoiser (models/unet/unet_config.h has the plan) as a
// DiffusionModel, over NHWC activations.
//
// Residual block: GroupNorm -> SiLU -> 3x3 conv -> + temb projection
// (linear of SiLU(temb), a per-(B,C) bias) -> GroupNorm -> SiLU -> dropout
// (config.dropout; masks keyed by the batch's per-image seeds, so a
// recomputed forward and the backward rebuild them) -> 3x3 conv, plus the input (1x1 conv when the
// width changes). Attention: GroupNorm -> qkv linear -> non-causal flash
// attention over the H*W positions -> proj linear, residual.
//
// Units: 0 "embed" (time MLP, class embedding, stem), one per stage (a block
// with its attention and resampling conv), last "out". SiLU(temb), read by
// every block, is an activation unit 0 computes; blocks accumulate its
// gradient into an fp32 buffer that unit 0's backward (run last) consumes,
// so no unit reads another unit's parameters (UnitDeps is empty).
//
// Mixed precision (GPT's policy): parameters and activations in the compute
// dtype (bf16 x bf16 GEMMs and convolutions with fp32 accumulation), while
// GroupNorm statistics, temb, the prediction, the loss, every stage output's
// gradient and the parameter gradients are fp32. All activations live in one
// arena sized at construction for max_batch images. With recompute, the
// stages' internal activations share one set sized for the largest stage
// and each stage unit's backward reruns its forward from the kept stage
// outputs: bit-identical gradients, less memory.
#pragma once

#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/device.h"
#include "kernels/tensor.h"
#include "models/diffusion_model.h"
#include "models/unet/unet_config.h"

namespace anvil {

struct UNetOptions {
  int max_batch = 8;                  // B the arena is sized for
  DType compute_dtype = DType::kF32;  // F32 or BF16
  bool recompute = false;             // rerun each stage's forward in backward
};

class UNet : public DiffusionModel {
 public:
  static absl::StatusOr<std::unique_ptr<UNet>> Create(const UNetConfig& config,
                                                      const UNetOptions& options,
                                                      kernels::Device* device);
  ~UNet() override;

  const ParamLayout& layout() const override { return layout_; }
  std::vector<int> UnitDeps(int) const override { return {}; }
  void InitParams(float* host_params, uint64_t seed) const override;
  DType compute_dtype() const override { return options_.compute_dtype; }
  void Forward(int unit, ParamPtrs params) override;
  void Backward(int unit, ParamPtrs params, GradPtrs grads, float loss_scale) override;
  double Loss() override;

  // Labels are checked (0..K, K the null class) and read only when
  // conditional (K > 0); an unconditional UNet ignores them. Timesteps must
  // be >= 0; their upper bound T belongs to the diffusion process (the
  // sinusoid takes any t), so it is not checked here.
  absl::Status SetDiffusionBatch(const DiffusionBatch& b) override;
  void CopyPrediction(float* host) const override;
  double FlopsPerImage() const override { return UNetFlopsPerImage(config_); }
  int image_height() const override { return config_.image_size; }
  int image_width() const override { return config_.image_size; }
  int image_channels() const override { return config_.image_channels; }
  int num_classes() const override { return config_.num_classes; }

  const UNetConfig& config() const { return config_; }
  const UNetPlan& plan() const { return plan_; }
  size_t arena_bytes() const { return arena_bytes_; }

 private:
  using TV = kernels::TensorView;
  UNet(const UNetConfig& config, const UNetOptions& options, kernels::Device* device);
  absl::Status AllocateArena();
  void IndexStageParams();  // fills stage_idx_

  // Per-stage activations (compute dtype unless fp32 is said).
  struct StageActs {
    void *cat = nullptr, *gn1 = nullptr, *silu1 = nullptr, *h1 = nullptr, *tproj = nullptr,
         *gn2 = nullptr, *silu2 = nullptr, *h2 = nullptr, *skip = nullptr, *rbout = nullptr,
         *gna = nullptr, *qkv = nullptr, *atty = nullptr, *up = nullptr;
    float *mean1 = nullptr, *rstd1 = nullptr, *mean2 = nullptr, *rstd2 = nullptr,
          *meana = nullptr, *rstda = nullptr, *lse = nullptr;
  };
  // Pointers to one stage's tensors inside its unit buffer.
  struct StageParams {
    TV norm1_w, norm1_b, conv1_w, conv1_b, temb_w, temb_b, norm2_w, norm2_b, conv2_w, conv2_b,
        skip_w, skip_b, attn_norm_w, attn_norm_b, qkv_w, qkv_b, proj_w, proj_b, resample_w,
        resample_b;
  };
  StageParams Params(int stage, void* base, DType dt) const;
  // View of a unit's tensor `name` (full layout name) at `base`.
  TV ParamView(int unit, void* base, DType dt, const std::string& name) const;

  TV Act(void* p, std::initializer_list<int64_t> shape) const;  // compute dtype
  TV Img(void* p, int res, int c) const;                        // (B,res,res,C) compute dtype
  TV ImgF(float* p, int res, int c) const;                      // (B,res,res,C) fp32
  // fp32 gradient `g` as the compute dtype (a copy in scratch, or g itself).
  TV GradCompute(float* g, int res, int c, void* scratch);

  void EmbedForward(ParamPtrs params);
  void EmbedBackward(ParamPtrs params, GradPtrs grads);
  void StageForward(int s, const StageParams& w);
  void StageBackward(int s, const StageParams& w, const StageParams& g);
  void OutForward(ParamPtrs params);
  void OutBackward(ParamPtrs params, GradPtrs grads, float loss_scale);

  UNetConfig config_;
  UNetOptions options_;
  kernels::Device* device_;
  UNetPlan plan_;
  ParamLayout layout_;

  int B_ = 0;
  bool has_target_ = false;
  bool dropout_ = false;  // this batch trains with dropout (config.dropout > 0, seeds given)
  bool loss_ready_ = false;
  double loss_ = 0;

  struct Acts {
    float *x_t = nullptr, *target = nullptr;
    int32_t *timesteps = nullptr, *labels = nullptr, *dropout_seeds = nullptr;
    void* x_cd = nullptr;  // x_t in the compute dtype (the stem's input)
    // Time embedding: sinusoid (B,ch), lin1 out (B,E), its SiLU, temb (B,E)
    // fp32 (+ class row), class row (B,E) fp32, SiLU(temb) (B,E).
    void *sin = nullptr, *te1 = nullptr, *te1s = nullptr, *temb_silu = nullptr;
    float *temb = nullptr, *cemb = nullptr;
    float* g_temb_silu = nullptr;  // (B,E) fp32, accumulated by every block
    std::vector<void*> t_act;      // stage output tensors (compute dtype)
    std::vector<float*> t_grad;    // their gradients (fp32)
    std::vector<StageActs> stages;
    void *gno = nullptr, *so = nullptr;  // out unit: GroupNorm, SiLU
    float *meano = nullptr, *rstdo = nullptr, *pred = nullptr, *loss = nullptr;
    // Backward scratch shared by all units.
    float *f0 = nullptr, *f1 = nullptr, *fb = nullptr;  // fp32: big, big, (B, max(E, C))
    // compute dtype
    void *c0 = nullptr, *c1 = nullptr, *c2 = nullptr, *c3 = nullptr, *cb = nullptr;
  } acts_;
  std::vector<std::vector<int>> stage_idx_;  // [stage][slot] layout index or -1
  void* arena_ = nullptr;
  size_t arena_bytes_ = 0;
  size_t grad_bytes_ = 0;  // the activation gradients at the arena's start
};

}  // namespace anvil
