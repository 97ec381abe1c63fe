#include "models/llama/llama.h"

#include <algorithm>
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

// Tensors of a unit, in declaration order (q|k|v and gate|up are one each:
// their HF tensors are adjacent rows of one matrix).
enum AttnTensor { kAttnNorm, kQkv, kO, kNumAttnTensors };
enum MlpTensor { kMlpNorm, kGateUp, kDown, kNumMlpTensors };

}  // namespace

Llama::Llama(const LlamaConfig& config, const LlamaOptions& options, kernels::Device* device)
    : config_(config), options_(options), device_(device) {}

Llama::~Llama() {
  if (arena_ != nullptr) device_->Free(arena_);
}

absl::StatusOr<std::unique_ptr<Llama>> Llama::Create(const LlamaConfig& config,
                                                     const LlamaOptions& options,
                                                     kernels::Device* device) {
  RETURN_IF_ERROR(ValidateLlamaConfig(config));
  LlamaOptions opt = options;
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
    return absl::InvalidArgumentError(absl::StrCat("the Llama computes in F32 or BF16, not ",
                                                   std::string(DTypeName(opt.compute_dtype))));
  }
  const DType cd = opt.compute_dtype;
  RETURN_IF_ERROR(k::RequireOps(
      *device, {{"embedding.forward", cd}, {"embedding.backward", DType::kF32},
                {"norm.rmsnorm_forward", cd}, {"norm.rmsnorm_backward", cd},
                {"linear.forward", cd}, {"linear.backward", cd},
                {"embedding.rope_forward", cd}, {"embedding.rope_backward", cd},
                {"attention.forward", cd}, {"attention.backward", cd},
                {"activation.swiglu_forward", cd}, {"activation.swiglu_backward", cd},
                {"elementwise.accumulate", DType::kF32},
                {"loss.softmax_xent_forward", DType::kF32},
                {"loss.softmax_xent_backward", cd}, {"convert.convert", cd}}));
  std::unique_ptr<Llama> m(new Llama(config, opt, device));
  m->BuildLayout();
  RETURN_IF_ERROR(m->AllocateArena());
  return m;
}

int64_t Llama::QkvWidth() const {
  return config_.n_embd + 2 * int64_t{config_.n_kv_head} * LlamaHeadSize(config_);
}

void Llama::BuildLayout() {
  const int64_t C = config_.n_embd, V = config_.vocab_size, F = config_.ffn_hidden;
  const int64_t KV = int64_t{config_.n_kv_head} * LlamaHeadSize(config_);
  layout_.BeginUnit("embed");
  layout_.Add("model.embed_tokens.weight", {V, C}, true);
  for (int l = 0; l < config_.n_layer; ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    layout_.BeginUnit(absl::StrCat("layers.", l, ".attn"));
    const size_t norm1 = layout_.Add(p + "input_layernorm.weight", {C}, false);
    const size_t q = layout_.Add(p + "self_attn.q_proj.weight", {C, C}, true);
    layout_.Add(p + "self_attn.k_proj.weight", {KV, C}, true);
    layout_.Add(p + "self_attn.v_proj.weight", {KV, C}, true);
    const size_t o = layout_.Add(p + "self_attn.o_proj.weight", {C, C}, true);
    layout_.BeginUnit(absl::StrCat("layers.", l, ".mlp"));
    const size_t norm2 = layout_.Add(p + "post_attention_layernorm.weight", {C}, false);
    const size_t gate = layout_.Add(p + "mlp.gate_proj.weight", {F, C}, true);
    layout_.Add(p + "mlp.up_proj.weight", {F, C}, true);
    const size_t down = layout_.Add(p + "mlp.down_proj.weight", {C, F}, true);
    if (l == 0) {
      attn_offsets_ = {layout_.OffsetInUnit(norm1), layout_.OffsetInUnit(q),
                       layout_.OffsetInUnit(o)};
      mlp_offsets_ = {layout_.OffsetInUnit(norm2), layout_.OffsetInUnit(gate),
                      layout_.OffsetInUnit(down)};
    }
  }
  layout_.BeginUnit("head");
  layout_.Add("model.norm.weight", {C}, false);
  if (!config_.tie_embeddings) layout_.Add("lm_head.weight", {V, C}, true);
}

std::vector<int> Llama::UnitDeps(int u) const {
  if (u == HeadUnit() && config_.tie_embeddings) return {0};  // lm_head is embed_tokens
  return {};
}

Llama::AttnParams Llama::Attn(void* base, DType dt) const {
  const auto& o = attn_offsets_;
  const int64_t C = config_.n_embd;
  auto at = [&](int t) { return static_cast<char*>(base) + o[t] * DTypeSize(dt); };
  return AttnParams{k::View(at(kAttnNorm), dt, {C}), k::View(at(kQkv), dt, {QkvWidth(), C}),
                    k::View(at(kO), dt, {C, C})};
}

Llama::MlpParams Llama::Mlp(void* base, DType dt) const {
  const auto& o = mlp_offsets_;
  const int64_t C = config_.n_embd, F = config_.ffn_hidden;
  auto at = [&](int t) { return static_cast<char*>(base) + o[t] * DTypeSize(dt); };
  return MlpParams{k::View(at(kMlpNorm), dt, {C}), k::View(at(kGateUp), dt, {2 * F, C}),
                   k::View(at(kDown), dt, {C, F})};
}

k::TensorView Llama::Act(void* p, std::initializer_list<int64_t> shape) const {
  return k::View(p, options_.compute_dtype, shape);
}

Llama::Qkv Llama::PackedViews(void* qkv) const {
  const int64_t W = QkvWidth(), hd = LlamaHeadSize(config_), NH = config_.n_head,
                NKV = config_.n_kv_head;
  const DType dt = options_.compute_dtype;
  const k::TensorView q = k::Strided(qkv, dt, {B_, T_, NH, hd}, {T_ * W, W, hd, 1});
  const k::TensorView kv = k::Strided(qkv, dt, {B_, T_, NKV, hd}, {T_ * W, W, hd, 1});
  return Qkv{q, k::Offset(kv, NH * hd), k::Offset(kv, (NH + NKV) * hd)};
}

const float* Llama::BlockInput(int l) const {
  return l == 0 ? acts_.encoded : acts_.layers[l - 1].residual3;
}
const float* Llama::HeadInput() const { return BlockInput(config_.n_layer); }

absl::Status Llama::AllocateArena() {
  const size_t B = options_.max_batch, T = options_.max_seq, C = config_.n_embd,
               V = config_.vocab_size, NH = config_.n_head, L = config_.n_layer,
               F = config_.ffn_hidden, W = static_cast<size_t>(QkvWidth());
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
    f(&ly.rstd1, BT);
    c(&ly.qkv, BT * W);
    c(&ly.atty, BT * C);
    f(&ly.lse, B * NH * T);
    c(&ly.ln2, BT * C);
    f(&ly.rstd2, BT);
    c(&ly.gu, BT * 2 * F);
    c(&ly.h, BT * F);
  }
  c(&acts_.lnf, BT * C);
  f(&acts_.rstdf, BT);
  f(&acts_.logits, BT * V);
  f(&acts_.probs, BT * V);
  f(&acts_.losses, BT);
  f(&acts_.dres, BT * C);
  if (options_.compute_dtype != DType::kF32) c(&acts_.dres_cd, BT * C);
  c(&acts_.dgu, BT * 2 * F);
  c(&acts_.dh, BT * F);
  c(&acts_.dmid, BT * C);
  c(&acts_.dmid2, BT * C);
  c(&acts_.dqkv, BT * W);
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
    float* r2 = ly.residual2;
    float* r3 = ly.residual3;
    ly = acts_.layers[0];
    ly.residual2 = r2;
    ly.residual3 = r3;
  }
  if (acts_.dres_cd == nullptr) acts_.dres_cd = acts_.dres;
  host_losses_.resize(BT);
  return absl::OkStatus();
}

void Llama::InitParams(float* host, uint64_t seed) const {
  // Hugging Face's LlamaForCausalLM init: every matrix N(0, 0.02^2)
  // (initializer_range), norm weights 1.
  for (size_t i = 0; i < layout_.params().size(); ++i) {
    const ParamInfo& p = layout_.params()[i];
    float* dst = host + p.offset;
    if (p.shape.size() == 1) {
      std::fill(dst, dst + p.numel, 1.0f);
    } else {
      NormalInit(dst, p.numel, 0.02f, seed, i);
    }
  }
}

absl::Status Llama::SetBatch(const int32_t* inputs, const int32_t* targets, int B, int T) {
  ASSIGN_OR_RETURN(num_targets_, CopyTokens(*device_, inputs, targets, B, T, options_.max_batch,
                                            options_.max_seq, config_.vocab_size, acts_.inputs,
                                            acts_.targets));
  B_ = B;
  T_ = T;
  loss_ready_ = false;
  return absl::OkStatus();
}

void Llama::Forward(int unit, ParamPtrs params) {
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

void Llama::Backward(int unit, ParamPtrs params, GradPtrs grads, float loss_scale) {
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

void Llama::EmbedForward(ParamPtrs params) {
  const int64_t C = config_.n_embd, V = config_.vocab_size;
  const k::TensorView table = k::View(params[0], options_.compute_dtype, {V, C});
  k::EmbeddingForward(*device_, k::View(acts_.encoded, {B_, T_, C}),
                      k::View(acts_.inputs, {B_, T_}), table, {});
}

void Llama::AttnForward(int l, const AttnParams& w) {
  const int64_t C = config_.n_embd, NH = config_.n_head, N = int64_t{B_} * T_;
  const Layer& a = acts_.layers[l];
  const float* x = BlockInput(l);
  k::Device& d = *device_;
  k::RmsNormForward(d, Act(a.ln1, {N, C}), k::View(a.rstd1, {N}), k::View(x, {N, C}), w.norm,
                    {.eps = config_.norm_eps});
  // One GEMM for q|k|v, then rotary positions in place on the q and k views.
  k::LinearForward(d, Act(a.qkv, {N, QkvWidth()}), Act(a.ln1, {N, C}), w.qkv, {});
  const Qkv qkv = PackedViews(a.qkv);
  k::RopeForward(d, qkv.q, {.theta = config_.rope_theta});
  k::RopeForward(d, qkv.k, {.theta = config_.rope_theta});
  k::AttentionForward(d, Act(a.atty, {B_, T_, NH, C / NH}), k::View(a.lse, {B_, NH, T_}), qkv.q,
                      qkv.k, qkv.v, {.causal = true});
  // residual2 = x + atty @ Wo^T (fp32)
  k::LinearForward(d, k::View(a.residual2, {N, C}), Act(a.atty, {N, C}), w.o, {});
  k::Accumulate(d, k::View(a.residual2, {N * C}), k::View(x, {N * C}));
}

void Llama::MlpForward(int l, const MlpParams& w) {
  const int64_t C = config_.n_embd, F = config_.ffn_hidden, N = int64_t{B_} * T_;
  const Layer& a = acts_.layers[l];
  k::Device& d = *device_;
  k::RmsNormForward(d, Act(a.ln2, {N, C}), k::View(a.rstd2, {N}), k::View(a.residual2, {N, C}),
                    w.norm, {.eps = config_.norm_eps});
  // One GEMM for gate|up; SwiGLU reads its two halves.
  k::LinearForward(d, Act(a.gu, {N, 2 * F}), Act(a.ln2, {N, C}), w.gu, {});
  const k::TensorView gate = k::Strided(a.gu, options_.compute_dtype, {N, F}, {2 * F, 1});
  k::SwiGluForward(d, Act(a.h, {N, F}), gate, k::Offset(gate, F));
  k::LinearForward(d, k::View(a.residual3, {N, C}), Act(a.h, {N, F}), w.down, {});
  k::Accumulate(d, k::View(a.residual3, {N * C}), k::View(a.residual2, {N * C}));
}

void Llama::HeadForward(ParamPtrs params) {
  const int64_t C = config_.n_embd, V = config_.vocab_size, N = int64_t{B_} * T_;
  const DType dt = options_.compute_dtype;
  const k::TensorView norm = k::View(params[HeadUnit()], dt, {C});
  const k::TensorView head = config_.tie_embeddings
                                 ? k::View(params[0], dt, {V, C})
                                 : k::Offset(k::View(params[HeadUnit()], dt, {V, C}), C);
  k::Device& d = *device_;
  k::RmsNormForward(d, Act(acts_.lnf, {N, C}), k::View(acts_.rstdf, {N}),
                    k::View(HeadInput(), {N, C}), norm, {.eps = config_.norm_eps});
  k::LinearForward(d, k::View(acts_.logits, {N, V}), Act(acts_.lnf, {N, C}), head, {});
  k::SoftmaxCrossEntropyForward(d, k::View(acts_.losses, {N}), k::View(acts_.probs, {N, V}),
                                k::View(acts_.logits, {N, V}), k::View(acts_.targets, {N}));
  loss_ready_ = false;
}

UnitModel::LossTerms Llama::loss_terms() {
  const int64_t N = int64_t{B_} * T_;
  return {k::View(acts_.losses, {N}),
          num_targets_ > 0 ? 1.0 / static_cast<double>(num_targets_) : 0.0};
}

double Llama::Loss() {
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

const k::TensorView& Llama::DresCompute() {
  const int64_t N = int64_t{B_} * T_, C = config_.n_embd;
  dres_cd_view_ = Act(acts_.dres_cd, {N, C});
  if (acts_.dres_cd != acts_.dres) k::Convert(*device_, dres_cd_view_, k::View(acts_.dres, {N, C}));
  return dres_cd_view_;
}

void Llama::HeadBackward(ParamPtrs params, GradPtrs grads, float loss_scale) {
  const int64_t C = config_.n_embd, V = config_.vocab_size, N = int64_t{B_} * T_;
  const DType dt = options_.compute_dtype;
  k::Device& d = *device_;
  const k::TensorView norm = k::View(params[HeadUnit()], dt, {C});
  const bool tied = config_.tie_embeddings;
  const k::TensorView head = tied ? k::View(params[0], dt, {V, C})
                                  : k::Offset(k::View(params[HeadUnit()], dt, {V, C}), C);
  float* dnorm = grads[HeadUnit()];
  float* dhead = tied ? grads[0] : grads[HeadUnit()] + C;
  const float dloss = num_targets_ > 0 ? loss_scale / static_cast<float>(num_targets_) : 0.0f;
  const k::TensorView dlogits = Act(acts_.dlogits, {N, V});
  d.Memset(acts_.dlogits, 0, dlogits.bytes());
  k::SoftmaxCrossEntropyBackward(d, dlogits, k::View(acts_.probs, {N, V}),
                                 k::View(acts_.targets, {N}), dloss);
  k::LinearBackward(d, Act(acts_.dmid, {N, C}), k::View(dhead, {V, C}), {}, dlogits,
                    Act(acts_.lnf, {N, C}), head, {.accumulate_dx = false});
  d.Memset(acts_.dres, 0, sizeof(float) * N * C);
  k::RmsNormBackward(d, k::View(acts_.dres, {N, C}), k::View(dnorm, {C}), Act(acts_.dmid, {N, C}),
                     k::View(HeadInput(), {N, C}), norm, k::View(acts_.rstdf, {N}));
}

// On entry acts_.dres holds d(loss)/d(residual3 of layer l); MlpBackward
// turns it into d(loss)/d(residual2), AttnBackward into d(loss)/d(input of
// layer l): RMSNorm backward accumulates its input gradient into dres,
// which already carries the residual path.
void Llama::MlpBackward(int l, const MlpParams& w, const MlpParams& g) {
  const int64_t C = config_.n_embd, F = config_.ffn_hidden, N = int64_t{B_} * T_;
  const Layer& a = acts_.layers[l];
  const DType dt = options_.compute_dtype;
  k::Device& d = *device_;
  const k::TensorView dres = DresCompute();
  k::LinearBackward(d, Act(acts_.dh, {N, F}), g.down, {}, dres, Act(a.h, {N, F}), w.down,
                    {.accumulate_dx = false});
  d.Memset(acts_.dgu, 0, Act(acts_.dgu, {N, 2 * F}).bytes());
  const k::TensorView gate = k::Strided(a.gu, dt, {N, F}, {2 * F, 1});
  const k::TensorView dgate = k::Strided(acts_.dgu, dt, {N, F}, {2 * F, 1});
  k::SwiGluBackward(d, dgate, k::Offset(dgate, F), gate, k::Offset(gate, F), Act(acts_.dh, {N, F}));
  k::LinearBackward(d, Act(acts_.dmid, {N, C}), g.gu, {}, Act(acts_.dgu, {N, 2 * F}),
                    Act(a.ln2, {N, C}), w.gu, {.accumulate_dx = false});
  k::RmsNormBackward(d, k::View(acts_.dres, {N, C}), g.norm, Act(acts_.dmid, {N, C}),
                     k::View(a.residual2, {N, C}), w.norm, k::View(a.rstd2, {N}));
}

void Llama::AttnBackward(int l, const AttnParams& w, const AttnParams& g) {
  const int64_t C = config_.n_embd, NH = config_.n_head, N = int64_t{B_} * T_;
  const Layer& a = acts_.layers[l];
  k::Device& d = *device_;
  const k::TensorView dres = DresCompute();
  k::LinearBackward(d, Act(acts_.dmid2, {N, C}), g.o, {}, dres, Act(a.atty, {N, C}), w.o,
                    {.accumulate_dx = false});
  const k::TensorView dqkv_flat = Act(acts_.dqkv, {N, QkvWidth()});
  d.Memset(acts_.dqkv, 0, dqkv_flat.bytes());
  const Qkv qkv = PackedViews(a.qkv);  // q, k as rotated in forward
  const Qkv dqkv = PackedViews(acts_.dqkv);
  k::AttentionBackward(d, dqkv.q, dqkv.k, dqkv.v, Act(acts_.dmid2, {B_, T_, NH, C / NH}), qkv.q,
                       qkv.k, qkv.v, Act(a.atty, {B_, T_, NH, C / NH}),
                       k::View(a.lse, {B_, NH, T_}), {.causal = true});
  // d/d(rotated q, k) -> d/d(q, k): the inverse rotation, in place.
  k::RopeBackward(d, dqkv.q, {.theta = config_.rope_theta});
  k::RopeBackward(d, dqkv.k, {.theta = config_.rope_theta});
  k::LinearBackward(d, Act(acts_.dmid, {N, C}), g.qkv, {}, dqkv_flat, Act(a.ln1, {N, C}), w.qkv,
                    {.accumulate_dx = false});
  k::RmsNormBackward(d, k::View(acts_.dres, {N, C}), g.norm, Act(acts_.dmid, {N, C}),
                     k::View(BlockInput(l), {N, C}), w.norm, k::View(a.rstd1, {N}));
}

void Llama::EmbedBackward(GradPtrs grads) {
  const int64_t C = config_.n_embd, V = config_.vocab_size;
  k::EmbeddingBackward(*device_, k::View(grads[0], {V, C}), {}, k::View(acts_.dres, {B_, T_, C}),
                       k::View(acts_.inputs, {B_, T_}));
}

double Llama::FlopsPerToken(int T) const {
  // 6N for the matmuls (forward 2N, backward 4N) plus 6·L·C·T for attention
  // (q·k and p·v over NH·hd = C per query, whatever NKV), N = all
  // parameters: GPT's convention (llm.c's MFU).
  return 6.0 * static_cast<double>(LlamaNumParams(config_)) +
         6.0 * config_.n_layer * config_.n_embd * static_cast<double>(T);
}

}  // namespace anvil
