#include "models/gpt/gpt.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kernels/op_registry.h"
#include "kernels/ops/activation.h"
#include "kernels/ops/attention.h"
#include "kernels/ops/convert.h"
#include "kernels/ops/elementwise.h"
#include "kernels/ops/embedding.h"
#include "kernels/ops/linear.h"
#include "kernels/ops/loss.h"
#include "kernels/ops/norm.h"
#include "models/init_rng.h"

namespace anvil {
namespace {

namespace k = kernels;

enum AttnTensor { kLn1W, kLn1B, kQkvW, kQkvB, kAttProjW, kAttProjB, kNumAttnTensors };
enum MlpTensor { kLn2W, kLn2B, kFcW, kFcB, kFcProjW, kFcProjB, kNumMlpTensors };

}  // namespace

Gpt::Gpt(const GptConfig& config, const GptOptions& options, kernels::Device* device)
    : config_(config), options_(options), device_(device) {}

Gpt::~Gpt() {
  if (arena_ != nullptr) device_->Free(arena_);
}

absl::StatusOr<std::unique_ptr<Gpt>> Gpt::Create(const GptConfig& config,
                                                 const GptOptions& options,
                                                 kernels::Device* device) {
  RETURN_IF_ERROR(ValidateGptConfig(config));
  GptOptions opt = options;
  if (opt.max_seq == 0) opt.max_seq = config.max_seq_len;
  if (opt.max_batch <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("--batch_size must be > 0, got ", opt.max_batch));
  }
  if (opt.max_seq <= 0 || opt.max_seq > config.max_seq_len) {
    return absl::InvalidArgumentError(absl::StrCat("--seq_len (", opt.max_seq,
                                                   ") must be in 1..--max_seq_len (",
                                                   config.max_seq_len, ")"));
  }
  if (opt.compute_dtype != DType::kF32 && opt.compute_dtype != DType::kBF16) {
    return absl::InvalidArgumentError(absl::StrCat("the GPT computes in F32 or BF16, not ",
                                                   std::string(DTypeName(opt.compute_dtype))));
  }
  const DType cd = opt.compute_dtype;
  RETURN_IF_ERROR(k::RequireOps(
      *device, {{"embedding.forward", cd}, {"embedding.backward", DType::kF32},
                {"norm.layernorm_forward", cd}, {"norm.layernorm_backward", cd},
                {"linear.forward", cd}, {"linear.backward", cd}, {"attention.forward", cd},
                {"attention.backward", cd}, {"activation.gelu_forward", cd},
                {"activation.gelu_backward", cd}, {"elementwise.accumulate", DType::kF32},
                {"loss.softmax_xent_forward", DType::kF32},
                {"loss.softmax_xent_backward", cd}, {"convert.convert", cd}}));
  std::unique_ptr<Gpt> m(new Gpt(config, opt, device));
  m->BuildLayout();
  RETURN_IF_ERROR(m->AllocateArena());
  return m;
}

void Gpt::BuildLayout() {
  const int64_t C = config_.n_embd, V = config_.vocab_size, T = config_.max_seq_len;
  layout_.BeginUnit("embed");
  layout_.Add("wte.weight", {V, C}, true);
  layout_.Add("wpe.weight", {T, C}, true);
  for (int l = 0; l < config_.n_layer; ++l) {
    const std::string p = absl::StrCat("h.", l, ".");
    layout_.BeginUnit(absl::StrCat("h.", l, ".attn"));
    const size_t attn = layout_.Add(p + "ln_1.weight", {C}, false);
    layout_.Add(p + "ln_1.bias", {C}, false);
    layout_.Add(p + "attn.c_attn.weight", {3 * C, C}, true);
    layout_.Add(p + "attn.c_attn.bias", {3 * C}, false);
    layout_.Add(p + "attn.c_proj.weight", {C, C}, true);
    layout_.Add(p + "attn.c_proj.bias", {C}, false);
    layout_.BeginUnit(absl::StrCat("h.", l, ".mlp"));
    const size_t mlp = layout_.Add(p + "ln_2.weight", {C}, false);
    layout_.Add(p + "ln_2.bias", {C}, false);
    layout_.Add(p + "mlp.c_fc.weight", {4 * C, C}, true);
    layout_.Add(p + "mlp.c_fc.bias", {4 * C}, false);
    layout_.Add(p + "mlp.c_proj.weight", {C, 4 * C}, true);
    layout_.Add(p + "mlp.c_proj.bias", {C}, false);
    if (l == 0) {
      for (int t = 0; t < kNumAttnTensors; ++t) attn_offsets_.push_back(layout_.OffsetInUnit(attn + t));
      for (int t = 0; t < kNumMlpTensors; ++t) mlp_offsets_.push_back(layout_.OffsetInUnit(mlp + t));
    }
  }
  layout_.BeginUnit("head");
  layout_.Add("ln_f.weight", {C}, false);
  layout_.Add("ln_f.bias", {C}, false);
}

std::vector<int> Gpt::UnitDeps(int u) const {
  if (u == HeadUnit()) return {0};  // the head reads the tied wte
  return {};
}

Gpt::AttnParams Gpt::Attn(void* base, DType dt) const {
  const auto& o = attn_offsets_;
  const int64_t C = config_.n_embd;
  auto at = [&](int t) { return static_cast<char*>(base) + o[t] * DTypeSize(dt); };
  return AttnParams{k::View(at(kLn1W), dt, {C}),         k::View(at(kLn1B), dt, {C}),
                    k::View(at(kQkvW), dt, {3 * C, C}),  k::View(at(kQkvB), dt, {3 * C}),
                    k::View(at(kAttProjW), dt, {C, C}),  k::View(at(kAttProjB), dt, {C})};
}

Gpt::MlpParams Gpt::Mlp(void* base, DType dt) const {
  const auto& o = mlp_offsets_;
  const int64_t C = config_.n_embd;
  auto at = [&](int t) { return static_cast<char*>(base) + o[t] * DTypeSize(dt); };
  return MlpParams{k::View(at(kLn2W), dt, {C}),          k::View(at(kLn2B), dt, {C}),
                   k::View(at(kFcW), dt, {4 * C, C}),    k::View(at(kFcB), dt, {4 * C}),
                   k::View(at(kFcProjW), dt, {C, 4 * C}), k::View(at(kFcProjB), dt, {C})};
}

k::TensorView Gpt::Act(void* p, std::initializer_list<int64_t> shape) const {
  return k::View(p, options_.compute_dtype, shape);
}

k::TensorView Gpt::F32(float* p, std::initializer_list<int64_t> shape) const {
  return k::View(p, shape);
}

absl::Status Gpt::AllocateArena() {
  const size_t B = options_.max_batch, T = options_.max_seq, C = config_.n_embd,
               V = config_.vocab_size, NH = config_.n_head, L = config_.n_layer;
  const size_t BT = B * T;
  const size_t es = DTypeSize(options_.compute_dtype);
  // Every piece is rounded to 64 bytes so each starts aligned.
  std::vector<std::pair<void**, size_t>> pieces;  // (pointer slot, bytes)
  auto piece = [&](void* slot, size_t elems, size_t elem_size) {
    pieces.push_back({static_cast<void**>(slot), (elems * elem_size + 63) / 64 * 64});
  };
  auto f = [&](float** slot, size_t n) { piece(slot, n, 4); };
  auto c = [&](void** slot, size_t n) { piece(slot, n, es); };
  piece(&acts_.inputs, BT, 4);
  piece(&acts_.targets, BT, 4);
  f(&acts_.encoded, BT * C);
  acts_.layers.resize(L);
  // With recompute, one set of block tensors serves every layer.
  const size_t kept = options_.recompute ? std::min<size_t>(L, 1) : L;
  for (size_t l = 0; l < L; ++l) {
    Layer& ly = acts_.layers[l];
    f(&ly.residual2, BT * C);
    f(&ly.residual3, BT * C);
    if (l >= kept) continue;
    c(&ly.ln1, BT * C);
    f(&ly.ln1_mean, BT);
    f(&ly.ln1_rstd, BT);
    c(&ly.qkv, BT * 3 * C);
    c(&ly.atty, BT * C);
    f(&ly.lse, B * NH * T);
    c(&ly.ln2, BT * C);
    f(&ly.ln2_mean, BT);
    f(&ly.ln2_rstd, BT);
    c(&ly.fch, BT * 4 * C);
    c(&ly.fch_gelu, BT * 4 * C);
  }
  c(&acts_.lnf, BT * C);
  f(&acts_.lnf_mean, BT);
  f(&acts_.lnf_rstd, BT);
  f(&acts_.logits, BT * V);
  f(&acts_.probs, BT * V);
  f(&acts_.losses, BT);
  f(&acts_.dres, BT * C);
  if (options_.compute_dtype != DType::kF32) c(&acts_.dres_cd, BT * C);
  c(&acts_.dbig, BT * 4 * C);
  c(&acts_.dbig2, BT * 4 * C);
  c(&acts_.dmid, BT * C);
  c(&acts_.dmid2, BT * C);
  c(&acts_.dqkv, BT * 3 * C);
  c(&acts_.dlogits, BT * V);
  size_t total = 0;
  for (auto& p : pieces) total += p.second;
  arena_bytes_ = total;
  arena_ = device_->Alloc(arena_bytes_);
  device_->Memset(arena_, 0, arena_bytes_);
  char* cursor = static_cast<char*>(arena_);
  for (auto& p : pieces) {
    *p.first = cursor;
    cursor += p.second;
  }
  for (size_t l = kept; l < L; ++l) {
    Layer& ly = acts_.layers[l];
    const Layer& shared = acts_.layers[0];
    float* r2 = ly.residual2;
    float* r3 = ly.residual3;
    ly = shared;
    ly.residual2 = r2;
    ly.residual3 = r3;
  }
  if (acts_.dres_cd == nullptr) acts_.dres_cd = acts_.dres;
  host_losses_.resize(BT);
  return absl::OkStatus();
}

void Gpt::InitParams(float* host, uint64_t seed) const {
  const float std = 0.02f;
  const float proj_std = 0.02f / std::sqrt(2.0f * static_cast<float>(config_.n_layer));
  for (size_t i = 0; i < layout_.params().size(); ++i) {
    const ParamInfo& p = layout_.params()[i];
    float* dst = host + p.offset;
    const bool is_norm_weight = p.name.find("ln_") != std::string::npos &&
                                p.name.ends_with(".weight");
    if (is_norm_weight) {
      for (size_t k = 0; k < p.numel; ++k) dst[k] = 1.0f;
    } else if (p.shape.size() == 1) {
      std::memset(dst, 0, p.numel * sizeof(float));
    } else {
      const bool residual_proj = p.name.ends_with("c_proj.weight");
      NormalInit(dst, p.numel, residual_proj ? proj_std : std, seed, i);
    }
  }
}

absl::Status Gpt::SetBatch(const int32_t* inputs, const int32_t* targets, int B, int T) {
  ASSIGN_OR_RETURN(num_targets_, CopyTokens(*device_, inputs, targets, B, T, options_.max_batch,
                                            options_.max_seq, config_.vocab_size, acts_.inputs,
                                            acts_.targets));
  B_ = B;
  T_ = T;
  loss_ready_ = false;
  return absl::OkStatus();
}

void Gpt::Forward(int unit, ParamPtrs params) {
  const DType dt = options_.compute_dtype;
  if (unit == 0) {
    EmbedForward(params);
  } else if (unit == HeadUnit()) {
    HeadForward(params);
  } else if (unit % 2 == 1) {
    AttnForward((unit - 1) / 2, Attn(params[unit], dt));
  } else {
    MlpForward((unit - 1) / 2, Mlp(params[unit], dt));
  }
}

void Gpt::Backward(int unit, ParamPtrs params, GradPtrs grads, float loss_scale) {
  const DType dt = options_.compute_dtype;
  if (unit == HeadUnit()) {
    HeadBackward(params, grads, loss_scale);
  } else if (unit == 0) {
    EmbedBackward(grads);
  } else if (unit % 2 == 1) {
    const int l = (unit - 1) / 2;
    const AttnParams w = Attn(params[unit], dt);
    if (options_.recompute) AttnForward(l, w);
    AttnBackward(l, w, Attn(grads[unit], DType::kF32));
  } else {
    const int l = (unit - 1) / 2;
    const MlpParams w = Mlp(params[unit], dt);
    if (options_.recompute) MlpForward(l, w);
    MlpBackward(l, w, Mlp(grads[unit], DType::kF32));
  }
}

void Gpt::EmbedForward(ParamPtrs params) {
  const int64_t C = config_.n_embd, V = config_.vocab_size;
  const DType dt = options_.compute_dtype;
  char* base = static_cast<char*>(params[0]);
  const k::TensorView wte = k::View(base, dt, {V, C});
  const k::TensorView wpe = k::View(base + V * C * DTypeSize(dt), dt, {config_.max_seq_len, C});
  k::EmbeddingForward(*device_, F32(acts_.encoded, {B_, T_, C}), k::View(acts_.inputs, {B_, T_}),
                      wte, wpe);
}

void Gpt::AttnForward(int l, const AttnParams& w) {
  const int64_t C = config_.n_embd, NH = config_.n_head, N = int64_t{B_} * T_;
  Layer& a = acts_.layers[l];
  const float* x = l == 0 ? acts_.encoded : acts_.layers[l - 1].residual3;
  k::Device& d = *device_;
  const k::TensorView xv = k::View(x, {N, C});
  k::LayerNormForward(d, Act(a.ln1, {N, C}), F32(a.ln1_mean, {N}), F32(a.ln1_rstd, {N}), xv,
                      w.ln1w, w.ln1b);
  k::LinearForward(d, Act(a.qkv, {N, 3 * C}), Act(a.ln1, {N, C}), w.qkvw, w.qkvb);
  const k::QkvViews qkv = k::PackedQkv(a.qkv, options_.compute_dtype, B_, T_, C, NH);
  const k::TensorView atty = Act(a.atty, {B_, T_, NH, C / NH});
  k::AttentionForward(d, atty, F32(a.lse, {B_, NH, T_}), qkv.q, qkv.k, qkv.v, {.causal = true});
  // residual2 = x + atty @ Wproj^T + b: the projection lands in residual2,
  // then the residual is added in place (fp32).
  k::LinearForward(d, F32(a.residual2, {N, C}), Act(a.atty, {N, C}), w.attprojw, w.attprojb);
  k::Accumulate(d, F32(a.residual2, {N * C}), k::View(x, {N * C}));
}

void Gpt::MlpForward(int l, const MlpParams& w) {
  const int64_t C = config_.n_embd, N = int64_t{B_} * T_;
  Layer& a = acts_.layers[l];
  k::Device& d = *device_;
  k::LayerNormForward(d, Act(a.ln2, {N, C}), F32(a.ln2_mean, {N}), F32(a.ln2_rstd, {N}),
                      F32(a.residual2, {N, C}), w.ln2w, w.ln2b);
  k::LinearForward(d, Act(a.fch, {N, 4 * C}), Act(a.ln2, {N, C}), w.fcw, w.fcb);
  k::GeluForward(d, Act(a.fch_gelu, {N * 4 * C}), Act(a.fch, {N * 4 * C}));
  k::LinearForward(d, F32(a.residual3, {N, C}), Act(a.fch_gelu, {N, 4 * C}), w.fcprojw, w.fcprojb);
  k::Accumulate(d, F32(a.residual3, {N * C}), F32(a.residual2, {N * C}));
}

void Gpt::HeadForward(ParamPtrs params) {
  const int64_t C = config_.n_embd, V = config_.vocab_size, N = int64_t{B_} * T_;
  const DType dt = options_.compute_dtype;
  const k::TensorView lnfw = k::View(params[HeadUnit()], dt, {C});
  const k::TensorView lnfb = k::Offset(lnfw, C);
  const k::TensorView wte = k::View(params[0], dt, {V, C});
  float* x = config_.n_layer > 0 ? acts_.layers.back().residual3 : acts_.encoded;
  k::Device& d = *device_;
  k::LayerNormForward(d, Act(acts_.lnf, {N, C}), F32(acts_.lnf_mean, {N}), F32(acts_.lnf_rstd, {N}),
                      F32(x, {N, C}), lnfw, lnfb);
  k::LinearForward(d, F32(acts_.logits, {N, V}), Act(acts_.lnf, {N, C}), wte, {});
  k::SoftmaxCrossEntropyForward(d, F32(acts_.losses, {N}), F32(acts_.probs, {N, V}),
                                F32(acts_.logits, {N, V}), k::View(acts_.targets, {N}));
  loss_ready_ = false;
}

UnitModel::LossTerms Gpt::loss_terms() {
  const int64_t N = int64_t{B_} * T_;
  return {k::View(acts_.losses, {N}),
          num_targets_ > 0 ? 1.0 / static_cast<double>(num_targets_) : 0.0};
}

double Gpt::Loss() {
  if (!loss_ready_) {
    const int N = B_ * T_;
    device_->CopyToHost(host_losses_.data(), acts_.losses, sizeof(float) * N);
    double sum = 0;
    for (int i = 0; i < N; ++i) sum += host_losses_[i];
    loss_ = num_targets_ > 0 ? sum / static_cast<double>(num_targets_) : 0.0;
    loss_ready_ = true;
  }
  return loss_;
}

const k::TensorView& Gpt::DresCompute() {
  const int64_t N = int64_t{B_} * T_, C = config_.n_embd;
  dres_cd_view_ = Act(acts_.dres_cd, {N, C});
  if (acts_.dres_cd != acts_.dres) k::Convert(*device_, dres_cd_view_, F32(acts_.dres, {N, C}));
  return dres_cd_view_;
}

void Gpt::HeadBackward(ParamPtrs params, GradPtrs grads, float loss_scale) {
  const int64_t C = config_.n_embd, V = config_.vocab_size, N = int64_t{B_} * T_;
  const DType dt = options_.compute_dtype;
  k::Device& d = *device_;
  const k::TensorView lnfw = k::View(params[HeadUnit()], dt, {C});
  const k::TensorView wte = k::View(params[0], dt, {V, C});
  float* dlnfw = grads[HeadUnit()];
  float* x = config_.n_layer > 0 ? acts_.layers.back().residual3 : acts_.encoded;
  const float dloss = num_targets_ > 0 ? loss_scale / static_cast<float>(num_targets_) : 0.0f;
  const k::TensorView dlogits = Act(acts_.dlogits, {N, V});
  d.Memset(acts_.dlogits, 0, dlogits.bytes());
  k::SoftmaxCrossEntropyBackward(d, dlogits, F32(acts_.probs, {N, V}), k::View(acts_.targets, {N}),
                                 dloss);
  k::LinearBackward(d, Act(acts_.dmid, {N, C}), F32(grads[0], {V, C}), {}, dlogits,
                    Act(acts_.lnf, {N, C}), wte, {.accumulate_dx = false});
  d.Memset(acts_.dres, 0, sizeof(float) * N * C);
  k::LayerNormBackward(d, F32(acts_.dres, {N, C}), F32(dlnfw, {C}), F32(dlnfw + C, {C}),
                       Act(acts_.dmid, {N, C}), F32(x, {N, C}), lnfw, F32(acts_.lnf_mean, {N}),
                       F32(acts_.lnf_rstd, {N}));
}

// On entry acts_.dres holds d(loss)/d(residual3 of layer l); MlpBackward
// turns it into d(loss)/d(residual2), AttnBackward into d(loss)/d(input of
// layer l). The residual adds need no kernel: LayerNorm backward accumulates
// its input gradient straight into dres.
void Gpt::MlpBackward(int l, const MlpParams& w, const MlpParams& g) {
  const int64_t C = config_.n_embd, N = int64_t{B_} * T_;
  const Layer& a = acts_.layers[l];
  k::Device& d = *device_;
  // residual3 = residual2 + fcproj(gelu(fc(ln2(residual2))))
  const k::TensorView dres = DresCompute();
  const k::TensorView dbig = Act(acts_.dbig, {N, 4 * C}), dbig2 = Act(acts_.dbig2, {N, 4 * C});
  k::LinearBackward(d, dbig, g.fcprojw, g.fcprojb, dres, Act(a.fch_gelu, {N, 4 * C}), w.fcprojw,
                    {.accumulate_dx = false});
  d.Memset(acts_.dbig2, 0, dbig2.bytes());
  k::GeluBackward(d, dbig2, Act(a.fch, {N, 4 * C}), dbig);
  k::LinearBackward(d, Act(acts_.dmid, {N, C}), g.fcw, g.fcb, dbig2, Act(a.ln2, {N, C}), w.fcw,
                    {.accumulate_dx = false});
  k::LayerNormBackward(d, F32(acts_.dres, {N, C}), g.ln2w, g.ln2b, Act(acts_.dmid, {N, C}),
                       F32(a.residual2, {N, C}), w.ln2w, F32(a.ln2_mean, {N}),
                       F32(a.ln2_rstd, {N}));
}

void Gpt::AttnBackward(int l, const AttnParams& w, const AttnParams& g) {
  const int64_t C = config_.n_embd, NH = config_.n_head, N = int64_t{B_} * T_;
  const Layer& a = acts_.layers[l];
  float* x = l == 0 ? acts_.encoded : acts_.layers[l - 1].residual3;
  k::Device& d = *device_;
  const DType dt = options_.compute_dtype;
  // residual2 = x + attproj(attn(qkv(ln1(x))))
  const k::TensorView dres = DresCompute();
  k::LinearBackward(d, Act(acts_.dmid2, {N, C}), g.attprojw, g.attprojb, dres, Act(a.atty, {N, C}),
                    w.attprojw, {.accumulate_dx = false});
  const k::TensorView dqkv_flat = Act(acts_.dqkv, {N, 3 * C});
  d.Memset(acts_.dqkv, 0, dqkv_flat.bytes());
  const k::QkvViews qkv = k::PackedQkv(a.qkv, dt, B_, T_, C, NH);
  const k::QkvViews dqkv = k::PackedQkv(acts_.dqkv, dt, B_, T_, C, NH);
  k::AttentionBackward(d, dqkv.q, dqkv.k, dqkv.v, Act(acts_.dmid2, {B_, T_, NH, C / NH}), qkv.q,
                       qkv.k, qkv.v, Act(a.atty, {B_, T_, NH, C / NH}), F32(a.lse, {B_, NH, T_}),
                       {.causal = true});
  k::LinearBackward(d, Act(acts_.dmid, {N, C}), g.qkvw, g.qkvb, dqkv_flat, Act(a.ln1, {N, C}),
                    w.qkvw, {.accumulate_dx = false});
  k::LayerNormBackward(d, F32(acts_.dres, {N, C}), g.ln1w, g.ln1b, Act(acts_.dmid, {N, C}),
                       F32(x, {N, C}), w.ln1w, F32(a.ln1_mean, {N}), F32(a.ln1_rstd, {N}));
}

void Gpt::EmbedBackward(GradPtrs grads) {
  const int64_t C = config_.n_embd, V = config_.vocab_size;
  float* dwte = grads[0];
  float* dwpe = grads[0] + V * C;
  k::EmbeddingBackward(*device_, F32(dwte, {V, C}), F32(dwpe, {config_.max_seq_len, C}),
                       F32(acts_.dres, {B_, T_, C}), k::View(acts_.inputs, {B_, T_}));
}

double Gpt::FlopsPerToken(int T) const {
  // 6N for the matmuls (forward 2N, backward 4N) plus 6·L·C·T for attention,
  // N = all parameters (the convention llm.c uses for MFU).
  return 6.0 * static_cast<double>(GptNumParams(config_)) +
         6.0 * config_.n_layer * config_.n_embd * static_cast<double>(T);
}

}  // namespace anvil
