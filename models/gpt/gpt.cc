#include "models/gpt/gpt.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "models/init_rng.h"

namespace anvil {
namespace {

enum AttnTensor { kLn1W, kLn1B, kQkvW, kQkvB, kAttProjW, kAttProjB, kNumAttnTensors };
enum MlpTensor { kLn2W, kLn2B, kFcW, kFcB, kFcProjW, kFcProjB, kNumMlpTensors };

}  // namespace

Gpt::Gpt(const GptConfig& config, const GptOptions& options, kernels::Backend* backend)
    : config_(config), options_(options), backend_(backend) {}

Gpt::~Gpt() {
  if (arena_ != nullptr) backend_->Free(arena_);
}

absl::StatusOr<std::unique_ptr<Gpt>> Gpt::Create(const GptConfig& config,
                                                 const GptOptions& options,
                                                 kernels::Backend* backend) {
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
  std::unique_ptr<Gpt> m(new Gpt(config, opt, backend));
  m->BuildLayout();
  m->AllocateArena();
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

Gpt::AttnParams Gpt::Attn(float* base) const {
  const auto& o = attn_offsets_;
  return AttnParams{base + o[kLn1W], base + o[kLn1B],     base + o[kQkvW],
                    base + o[kQkvB], base + o[kAttProjW], base + o[kAttProjB]};
}

Gpt::MlpParams Gpt::Mlp(float* base) const {
  const auto& o = mlp_offsets_;
  return MlpParams{base + o[kLn2W], base + o[kLn2B],    base + o[kFcW],
                   base + o[kFcB],  base + o[kFcProjW], base + o[kFcProjB]};
}

void Gpt::AllocateArena() {
  const size_t B = options_.max_batch, T = options_.max_seq, C = config_.n_embd,
               V = config_.vocab_size, NH = config_.n_head, L = config_.n_layer;
  const size_t BT = B * T;
  // Every piece is rounded to 16 floats (64 bytes) so each starts aligned.
  auto round = [](size_t n) { return (n + 15) / 16 * 16; };
  std::vector<std::pair<void**, size_t>> pieces;  // (pointer slot, floats)
  auto f = [&](float** slot, size_t n) { pieces.push_back({reinterpret_cast<void**>(slot), round(n)}); };
  auto i32 = [&](int32_t** slot, size_t n) { pieces.push_back({reinterpret_cast<void**>(slot), round(n)}); };
  i32(&acts_.inputs, BT);
  i32(&acts_.targets, BT);
  f(&acts_.encoded, BT * C);
  acts_.layers.resize(L);
  for (Layer& ly : acts_.layers) {
    f(&ly.ln1, BT * C);
    f(&ly.ln1_mean, BT);
    f(&ly.ln1_rstd, BT);
    f(&ly.qkv, BT * 3 * C);
    f(&ly.atty, BT * C);
    f(&ly.att, B * NH * T * T);
    f(&ly.residual2, BT * C);
    f(&ly.ln2, BT * C);
    f(&ly.ln2_mean, BT);
    f(&ly.ln2_rstd, BT);
    f(&ly.fch, BT * 4 * C);
    f(&ly.fch_gelu, BT * 4 * C);
    f(&ly.residual3, BT * C);
  }
  f(&acts_.lnf, BT * C);
  f(&acts_.lnf_mean, BT);
  f(&acts_.lnf_rstd, BT);
  f(&acts_.logits, BT * V);
  f(&acts_.probs, BT * V);
  f(&acts_.losses, BT);
  f(&acts_.dres, BT * C);
  f(&acts_.dbig, BT * 4 * C);
  f(&acts_.dbig2, BT * 4 * C);
  f(&acts_.dmid, BT * C);
  f(&acts_.dmid2, BT * C);
  f(&acts_.dqkv, BT * 3 * C);
  f(&acts_.datt, B * NH * T * T);
  f(&acts_.dlogits, BT * V);
  size_t total = 0;
  for (auto& p : pieces) total += p.second;
  arena_bytes_ = total * sizeof(float);
  arena_ = backend_->Alloc(arena_bytes_);
  backend_->Memset(arena_, 0, arena_bytes_);
  float* cursor = static_cast<float*>(arena_);
  for (auto& p : pieces) {
    *p.first = cursor;
    cursor += p.second;
  }
  host_losses_.resize(BT);
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
  if (B <= 0 || B > options_.max_batch) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch size ", B, " outside 1..", options_.max_batch));
  }
  if (T <= 0 || T > options_.max_seq) {
    return absl::InvalidArgumentError(
        absl::StrCat("sequence length ", T, " outside 1..", options_.max_seq));
  }
  const int V = config_.vocab_size;
  int64_t valid = 0;
  for (int i = 0; i < B * T; ++i) {
    if (inputs[i] < 0 || inputs[i] >= V) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", inputs[i], " at position ", i, " outside vocab 0..", V - 1));
    }
    if (targets != nullptr && targets[i] >= V) {
      return absl::InvalidArgumentError(
          absl::StrCat("target id ", targets[i], " at position ", i, " outside vocab 0..", V - 1));
    }
    if (targets != nullptr && targets[i] >= 0) ++valid;
  }
  B_ = B;
  T_ = T;
  num_targets_ = valid;
  loss_ready_ = false;
  backend_->CopyFromHost(acts_.inputs, inputs, sizeof(int32_t) * B * T);
  if (targets != nullptr) {
    backend_->CopyFromHost(acts_.targets, targets, sizeof(int32_t) * B * T);
  } else {
    backend_->Memset(acts_.targets, 0xff, sizeof(int32_t) * B * T);  // all -1: no loss
  }
  return absl::OkStatus();
}

void Gpt::Forward(int unit, UnitPtrs params) {
  if (unit == 0) {
    EmbedForward(params);
  } else if (unit == HeadUnit()) {
    HeadForward(params);
  } else if (unit % 2 == 1) {
    AttnForward((unit - 1) / 2, Attn(params[unit]));
  } else {
    MlpForward((unit - 1) / 2, Mlp(params[unit]));
  }
}

void Gpt::Backward(int unit, UnitPtrs params, UnitPtrs grads, float loss_scale) {
  if (unit == HeadUnit()) {
    HeadBackward(params, grads, loss_scale);
  } else if (unit == 0) {
    EmbedBackward(grads);
  } else if (unit % 2 == 1) {
    AttnBackward((unit - 1) / 2, Attn(params[unit]), Attn(grads[unit]));
  } else {
    MlpBackward((unit - 1) / 2, Mlp(params[unit]), Mlp(grads[unit]));
  }
}

void Gpt::EmbedForward(UnitPtrs params) {
  const int C = config_.n_embd;
  const float* wte = params[0];
  const float* wpe = params[0] + static_cast<size_t>(config_.vocab_size) * C;
  backend_->EncoderForward(acts_.encoded, acts_.inputs, wte, wpe, B_, T_, C);
}

void Gpt::AttnForward(int l, const AttnParams& w) {
  const int C = config_.n_embd, NH = config_.n_head, N = B_ * T_;
  Layer& a = acts_.layers[l];
  const float* x = l == 0 ? acts_.encoded : acts_.layers[l - 1].residual3;
  kernels::Backend& k = *backend_;
  k.LayerNormForward(a.ln1, a.ln1_mean, a.ln1_rstd, x, w.ln1w, w.ln1b, N, C);
  k.MatmulForward(a.qkv, a.ln1, w.qkvw, w.qkvb, N, C, 3 * C);
  k.AttentionForward(a.atty, a.att, a.qkv, B_, T_, C, NH);
  // residual2 = x + atty @ Wproj^T + b: the projection lands in residual2,
  // then the residual is added in place.
  k.MatmulForward(a.residual2, a.atty, w.attprojw, w.attprojb, N, C, C);
  k.Accumulate(a.residual2, x, static_cast<size_t>(N) * C);
}

void Gpt::MlpForward(int l, const MlpParams& w) {
  const int C = config_.n_embd, N = B_ * T_;
  Layer& a = acts_.layers[l];
  kernels::Backend& k = *backend_;
  k.LayerNormForward(a.ln2, a.ln2_mean, a.ln2_rstd, a.residual2, w.ln2w, w.ln2b, N, C);
  k.MatmulForward(a.fch, a.ln2, w.fcw, w.fcb, N, C, 4 * C);
  k.GeluForward(a.fch_gelu, a.fch, static_cast<size_t>(N) * 4 * C);
  k.MatmulForward(a.residual3, a.fch_gelu, w.fcprojw, w.fcprojb, N, 4 * C, C);
  k.Accumulate(a.residual3, a.residual2, static_cast<size_t>(N) * C);
}

void Gpt::HeadForward(UnitPtrs params) {
  const int C = config_.n_embd, V = config_.vocab_size, N = B_ * T_;
  const float* lnfw = params[HeadUnit()];
  const float* lnfb = lnfw + C;
  const float* wte = params[0];
  const float* x = config_.n_layer > 0 ? acts_.layers.back().residual3 : acts_.encoded;
  kernels::Backend& k = *backend_;
  k.LayerNormForward(acts_.lnf, acts_.lnf_mean, acts_.lnf_rstd, x, lnfw, lnfb, N, C);
  k.MatmulForward(acts_.logits, acts_.lnf, wte, nullptr, N, C, V);
  k.SoftmaxCrossEntropyForward(acts_.losses, acts_.probs, acts_.logits, acts_.targets, N, V);
  loss_ready_ = false;
}

double Gpt::Loss() {
  if (!loss_ready_) {
    const int N = B_ * T_;
    backend_->CopyToHost(host_losses_.data(), acts_.losses, sizeof(float) * N);
    double sum = 0;
    for (int i = 0; i < N; ++i) sum += host_losses_[i];
    loss_ = num_targets_ > 0 ? sum / static_cast<double>(num_targets_) : 0.0;
    loss_ready_ = true;
  }
  return loss_;
}

void Gpt::HeadBackward(UnitPtrs params, UnitPtrs grads, float loss_scale) {
  const int C = config_.n_embd, V = config_.vocab_size, N = B_ * T_;
  const size_t NC = static_cast<size_t>(N) * C;
  kernels::Backend& k = *backend_;
  const float* lnfw = params[HeadUnit()];
  float* dlnfw = grads[HeadUnit()];
  float* dlnfb = dlnfw + C;
  const float* wte = params[0];
  float* dwte = grads[0];
  const float* x = config_.n_layer > 0 ? acts_.layers.back().residual3 : acts_.encoded;
  const float dloss = num_targets_ > 0 ? loss_scale / static_cast<float>(num_targets_) : 0.0f;
  k.Memset(acts_.dlogits, 0, sizeof(float) * static_cast<size_t>(N) * V);
  k.SoftmaxCrossEntropyBackward(acts_.dlogits, acts_.probs, acts_.targets, dloss, N, V);
  k.Memset(acts_.dmid, 0, sizeof(float) * NC);
  k.MatmulBackward(acts_.dmid, dwte, nullptr, acts_.dlogits, acts_.lnf, wte, N, C, V);
  k.Memset(acts_.dres, 0, sizeof(float) * NC);
  k.LayerNormBackward(acts_.dres, dlnfw, dlnfb, acts_.dmid, x, lnfw, acts_.lnf_mean,
                      acts_.lnf_rstd, N, C);
}

// On entry acts_.dres holds d(loss)/d(residual3 of layer l); MlpBackward
// turns it into d(loss)/d(residual2), AttnBackward into d(loss)/d(input of
// layer l). The residual adds need no kernel: LayerNorm backward accumulates
// its input gradient straight into dres.
void Gpt::MlpBackward(int l, const MlpParams& w, const MlpParams& g) {
  const int C = config_.n_embd, N = B_ * T_;
  const size_t NC = static_cast<size_t>(N) * C;
  const Layer& a = acts_.layers[l];
  kernels::Backend& k = *backend_;
  float* dres = acts_.dres;
  // residual3 = residual2 + fcproj(gelu(fc(ln2(residual2))))
  k.Memset(acts_.dbig, 0, sizeof(float) * NC * 4);
  k.MatmulBackward(acts_.dbig, g.fcprojw, g.fcprojb, dres, a.fch_gelu, w.fcprojw, N, 4 * C, C);
  k.Memset(acts_.dbig2, 0, sizeof(float) * NC * 4);
  k.GeluBackward(acts_.dbig2, a.fch, acts_.dbig, NC * 4);
  k.Memset(acts_.dmid, 0, sizeof(float) * NC);
  k.MatmulBackward(acts_.dmid, g.fcw, g.fcb, acts_.dbig2, a.ln2, w.fcw, N, C, 4 * C);
  k.LayerNormBackward(dres, g.ln2w, g.ln2b, acts_.dmid, a.residual2, w.ln2w, a.ln2_mean,
                      a.ln2_rstd, N, C);
}

void Gpt::AttnBackward(int l, const AttnParams& w, const AttnParams& g) {
  const int C = config_.n_embd, NH = config_.n_head, N = B_ * T_;
  const size_t NC = static_cast<size_t>(N) * C;
  const Layer& a = acts_.layers[l];
  const float* x = l == 0 ? acts_.encoded : acts_.layers[l - 1].residual3;
  kernels::Backend& k = *backend_;
  float* dres = acts_.dres;
  // residual2 = x + attproj(attn(qkv(ln1(x))))
  k.Memset(acts_.dmid2, 0, sizeof(float) * NC);
  k.MatmulBackward(acts_.dmid2, g.attprojw, g.attprojb, dres, a.atty, w.attprojw, N, C, C);
  k.Memset(acts_.dqkv, 0, sizeof(float) * NC * 3);
  k.AttentionBackward(acts_.dqkv, acts_.datt, acts_.dmid2, a.qkv, a.att, B_, T_, C, NH);
  k.Memset(acts_.dmid, 0, sizeof(float) * NC);
  k.MatmulBackward(acts_.dmid, g.qkvw, g.qkvb, acts_.dqkv, a.ln1, w.qkvw, N, C, 3 * C);
  k.LayerNormBackward(dres, g.ln1w, g.ln1b, acts_.dmid, x, w.ln1w, a.ln1_mean, a.ln1_rstd, N, C);
}

void Gpt::EmbedBackward(UnitPtrs grads) {
  const int C = config_.n_embd;
  float* dwte = grads[0];
  float* dwpe = grads[0] + static_cast<size_t>(config_.vocab_size) * C;
  backend_->EncoderBackward(dwte, dwpe, acts_.dres, acts_.inputs, B_, T_, C);
}

double Gpt::FlopsPerToken(int T) const {
  // 6N for the matmuls (forward 2N, backward 4N) plus 6·L·C·T for attention,
  // N = all parameters (the convention llm.c uses for MFU).
  return 6.0 * static_cast<double>(GptNumParams(config_)) +
         6.0 * config_.n_layer * config_.n_embd * static_cast<double>(T);
}

}  // namespace anvil
