#include "models/dit/dit.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kernels/op_registry.h"
#include "kernels/ops/convert.h"
#include "models/dit/dit_host.h"
#include "models/init_rng.h"

namespace anvil {
namespace {

namespace k = kernels;

// Tensors of each unit, in declaration order.
enum EmbedTensor { kPatchW, kPatchB, kPos, kT1W, kT1B, kT2W, kT2B, kTable };
enum BlockTensor { kQkvW, kQkvB, kProjW, kProjB, kFc1W, kFc1B, kFc2W, kFc2B, kAdaW, kAdaB };
enum FinalTensor { kFAdaW, kFAdaB, kLinW, kLinB };

}  // namespace

Dit::Dit(const DitConfig& config, const DitOptions& options, kernels::Device* device)
    : config_(config), options_(options), device_(device) {}

Dit::~Dit() {
  if (arena_ != nullptr) device_->Free(arena_);
}

absl::StatusOr<std::unique_ptr<Dit>> Dit::Create(const DitConfig& config, const DitOptions& options,
                                                 kernels::Device* device) {
  RETURN_IF_ERROR(ValidateDitConfig(config));
  if (options.max_batch <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--batch_size must be > 0, got ", options.max_batch));
  }
  const DType cd = options.compute_dtype;
  if (cd != DType::kF32 && cd != DType::kBF16) {
    return absl::InvalidArgumentError(
        absl::StrCat("the DiT computes in F32 or BF16, not ", std::string(DTypeName(cd))));
  }
  RETURN_IF_ERROR(k::RequireOps(*device, {{"linear.forward", cd},
                                          {"linear.backward", cd},
                                          {"norm.layernorm_forward", cd},
                                          {"norm.layernorm_backward", cd},
                                          {"attention.forward", cd},
                                          {"attention.backward", cd},
                                          {"activation.gelu_forward", cd},
                                          {"activation.gelu_backward", cd},
                                          {"activation.silu_forward", cd},
                                          {"activation.silu_backward", cd},
                                          {"image.modulate_forward", cd},
                                          {"image.modulate_backward", cd},
                                          {"image.gated_residual_forward", cd},
                                          {"image.gated_residual_backward", cd},
                                          {"image.add_channel_bias", cd},
                                          {"image.add_channel_bias_backward", DType::kF32},
                                          {"embedding.forward", cd},
                                          {"embedding.backward", DType::kF32},
                                          {"embedding.timestep_embedding", cd},
                                          {"loss.mse_forward", DType::kF32},
                                          {"loss.mse_backward", cd},
                                          {"convert.convert", cd}}));
  std::unique_ptr<Dit> m(new Dit(config, options, device));
  m->BuildLayout();
  RETURN_IF_ERROR(m->AllocateArena());
  return m;
}

void Dit::BuildLayout() {
  const int64_t C = config_.n_embd, P = DitPatchDim(config_), T = DitTokens(config_),
                F = config_.freq_dim, K = config_.num_classes, p = config_.patch_size,
                Cin = config_.image_channels;
  auto offsets = [&](std::vector<size_t> idx) {
    std::vector<size_t> o;
    for (size_t i : idx) o.push_back(i == SIZE_MAX ? SIZE_MAX : layout_.OffsetInUnit(i));
    return o;
  };
  layout_.BeginUnit("embed");
  const size_t pw = layout_.Add("x_embedder.proj.weight", {C, Cin, p, p}, true);
  const size_t pb = layout_.Add("x_embedder.proj.bias", {C}, false);
  const size_t pos = config_.learned_pos ? layout_.Add("pos_embed", {1, T, C}, false) : SIZE_MAX;
  const size_t t1w = layout_.Add("t_embedder.mlp.0.weight", {C, F}, true);
  const size_t t1b = layout_.Add("t_embedder.mlp.0.bias", {C}, false);
  const size_t t2w = layout_.Add("t_embedder.mlp.2.weight", {C, C}, true);
  const size_t t2b = layout_.Add("t_embedder.mlp.2.bias", {C}, false);
  const size_t tab = layout_.Add("y_embedder.embedding_table.weight", {K + 1, C}, true);
  embed_offsets_ = offsets({pw, pb, pos, t1w, t1b, t2w, t2b, tab});
  for (int l = 0; l < config_.n_layer; ++l) {
    const std::string b = absl::StrCat("blocks.", l, ".");
    layout_.BeginUnit(absl::StrCat("blocks.", l));
    std::vector<size_t> idx;
    idx.push_back(layout_.Add(b + "attn.qkv.weight", {3 * C, C}, true));
    idx.push_back(layout_.Add(b + "attn.qkv.bias", {3 * C}, false));
    idx.push_back(layout_.Add(b + "attn.proj.weight", {C, C}, true));
    idx.push_back(layout_.Add(b + "attn.proj.bias", {C}, false));
    idx.push_back(layout_.Add(b + "mlp.fc1.weight", {4 * C, C}, true));
    idx.push_back(layout_.Add(b + "mlp.fc1.bias", {4 * C}, false));
    idx.push_back(layout_.Add(b + "mlp.fc2.weight", {C, 4 * C}, true));
    idx.push_back(layout_.Add(b + "mlp.fc2.bias", {C}, false));
    idx.push_back(layout_.Add(b + "adaLN_modulation.1.weight", {6 * C, C}, true));
    idx.push_back(layout_.Add(b + "adaLN_modulation.1.bias", {6 * C}, false));
    if (l == 0) block_offsets_ = offsets(idx);
  }
  layout_.BeginUnit("final");
  std::vector<size_t> idx;
  idx.push_back(layout_.Add("final_layer.adaLN_modulation.1.weight", {2 * C, C}, true));
  idx.push_back(layout_.Add("final_layer.adaLN_modulation.1.bias", {2 * C}, false));
  idx.push_back(layout_.Add("final_layer.linear.weight", {P, C}, true));
  idx.push_back(layout_.Add("final_layer.linear.bias", {P}, false));
  final_offsets_ = offsets(idx);
}

std::vector<int> Dit::UnitDeps(int) const { return {}; }

Dit::EmbedParams Dit::Embed(void* base, DType dt) const {
  const auto& o = embed_offsets_;
  const int64_t C = config_.n_embd, P = DitPatchDim(config_), T = DitTokens(config_),
                F = config_.freq_dim, K = config_.num_classes;
  auto v = [&](int t, std::initializer_list<int64_t> shape) {
    if (o[t] == SIZE_MAX) return TV{};
    return k::View(static_cast<char*>(base) + o[t] * DTypeSize(dt), dt, shape);
  };
  return EmbedParams{v(kPatchW, {C, P}), v(kPatchB, {C}),      v(kPos, {1, T * C}),
                     v(kT1W, {C, F}),    v(kT1B, {C}),         v(kT2W, {C, C}),
                     v(kT2B, {C}),       v(kTable, {K + 1, C})};
}

Dit::BlockParams Dit::Block(void* base, DType dt) const {
  const auto& o = block_offsets_;
  const int64_t C = config_.n_embd;
  auto v = [&](int t, std::initializer_list<int64_t> shape) {
    return k::View(static_cast<char*>(base) + o[t] * DTypeSize(dt), dt, shape);
  };
  return BlockParams{v(kQkvW, {3 * C, C}), v(kQkvB, {3 * C}), v(kProjW, {C, C}),    v(kProjB, {C}),
                     v(kFc1W, {4 * C, C}), v(kFc1B, {4 * C}), v(kFc2W, {C, 4 * C}), v(kFc2B, {C}),
                     v(kAdaW, {6 * C, C}), v(kAdaB, {6 * C})};
}

Dit::FinalParams Dit::Final(void* base, DType dt) const {
  const auto& o = final_offsets_;
  const int64_t C = config_.n_embd, P = DitPatchDim(config_);
  auto v = [&](int t, std::initializer_list<int64_t> shape) {
    return k::View(static_cast<char*>(base) + o[t] * DTypeSize(dt), dt, shape);
  };
  return FinalParams{v(kFAdaW, {2 * C, C}), v(kFAdaB, {2 * C}), v(kLinW, {P, C}), v(kLinB, {P})};
}

k::TensorView Dit::Act(void* p, std::initializer_list<int64_t> shape) const {
  return k::View(p, options_.compute_dtype, shape);
}

k::TensorView Dit::Chunk(void* base, DType dt, int n, int kk) const {
  const int64_t C = config_.n_embd;
  return k::Strided(static_cast<char*>(base) + kk * C * DTypeSize(dt), dt, {B_, C}, {n * C, 1});
}

const float* Dit::BlockInput(int l) const {
  return l == 0 ? acts_.tokens : acts_.layers[l - 1].residual3;
}

k::TensorView Dit::ToCompute(const float* src, void* scratch,
                             std::initializer_list<int64_t> shape) {
  if (options_.compute_dtype == DType::kF32) return k::View(src, shape);
  const TV out = Act(scratch, shape);
  k::Convert(*device_, out, k::View(src, shape));
  return out;
}

absl::Status Dit::AllocateArena() {
  const size_t B = options_.max_batch, T = DitTokens(config_), C = config_.n_embd,
               P = DitPatchDim(config_), F = config_.freq_dim, NH = config_.n_head,
               L = config_.n_layer;
  const size_t N = B * T;
  const size_t es = DTypeSize(options_.compute_dtype);
  const bool bf16 = options_.compute_dtype != DType::kF32;
  std::vector<std::pair<void**, size_t>> pieces;  // (pointer slot, bytes), 64-byte aligned
  auto piece = [&](void* slot, size_t elems, size_t elem_size) {
    pieces.push_back({static_cast<void**>(slot), (elems * elem_size + 63) / 64 * 64});
  };
  auto f = [&](float** slot, size_t n) { piece(slot, n, 4); };
  auto c = [&](void** slot, size_t n) { piece(slot, n, es); };
  f(&acts_.xp, N * P);
  f(&acts_.target, N * P);
  if (bf16) c(&acts_.xp_cd, N * P);
  piece(&acts_.timesteps, B, 4);
  piece(&acts_.labels, B, 4);
  f(&acts_.pos, T * C);
  f(&acts_.ones, C);
  f(&acts_.dnorm_w, C);
  c(&acts_.tfreq, B * F);
  c(&acts_.h1, B * C);
  c(&acts_.h1s, B * C);
  f(&acts_.c, B * C);
  c(&acts_.silu_c, B * C);
  f(&acts_.tokens, N * C);
  acts_.layers.resize(L);
  const size_t kept = options_.recompute ? std::min<size_t>(L, 1) : L;
  for (size_t l = 0; l < L; ++l) {
    Layer& ly = acts_.layers[l];
    f(&ly.residual2, N * C);
    f(&ly.residual3, N * C);
    if (l >= kept) continue;
    c(&ly.mod, B * 6 * C);
    c(&ly.ln1, N * C);
    c(&ly.m1, N * C);
    c(&ly.qkv, N * 3 * C);
    c(&ly.atty, N * C);
    c(&ly.a, N * C);
    c(&ly.ln2, N * C);
    c(&ly.m2, N * C);
    c(&ly.h, N * 4 * C);
    c(&ly.hg, N * 4 * C);
    c(&ly.f, N * C);
    f(&ly.mean1, N);
    f(&ly.rstd1, N);
    f(&ly.mean2, N);
    f(&ly.rstd2, N);
    f(&ly.lse, B * NH * T);
  }
  c(&acts_.modf, B * 2 * C);
  c(&acts_.lnf, N * C);
  c(&acts_.mf, N * C);
  f(&acts_.meanf, N);
  f(&acts_.rstdf, N);
  f(&acts_.pred, N * P);
  f(&acts_.loss, 1);
  f(&acts_.dres, N * C);
  f(&acts_.dmod, B * 6 * C);
  f(&acts_.dsilu_c, B * C);
  f(&acts_.dc, B * C);
  if (bf16) c(&acts_.dres_cd, N * C);
  c(&acts_.dmod_cd, B * 6 * C);
  c(&acts_.dpred, N * P);
  c(&acts_.dcd_c, B * C);
  c(&acts_.dcd_b, B * C);
  c(&acts_.dcd_n1, N * C);
  c(&acts_.dcd_n2, N * C);
  c(&acts_.dcd_n3, N * C);
  c(&acts_.dqkv, N * 3 * C);
  c(&acts_.dh, N * 4 * C);
  c(&acts_.dhg, N * 4 * C);
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
  if (!bf16) acts_.xp_cd = acts_.xp;
  // Constants: the fixed positions and the LayerNorms' unit weight.
  std::vector<float> pos(T * C);
  DitSinCosPositions(config_, pos.data());
  device_->CopyFromHost(acts_.pos, pos.data(), sizeof(float) * T * C);
  const std::vector<float> ones(C, 1.0f);
  device_->CopyFromHost(acts_.ones, ones.data(), sizeof(float) * C);
  return absl::OkStatus();
}

void Dit::InitParams(float* host, uint64_t seed) const {
  // models.py initialize_weights: Xavier-uniform Linear weights (the patch
  // conv's as a (C, Cin*p*p) matrix), zero biases, N(0, 0.02^2) class table
  // and timestep MLP weights, zero adaLN and final linear (adaLN-Zero);
  // learned positions start at the fixed sin-cos ones.
  std::fill(host, host + layout_.total_numel(), 0.0f);
  for (size_t i = 0; i < layout_.params().size(); ++i) {
    const ParamInfo& p = layout_.params()[i];
    float* dst = host + p.offset;
    const std::string& n = p.name;
    if (n == "pos_embed") {
      DitSinCosPositions(config_, dst);
    } else if (n.find("adaLN_modulation") != std::string::npos ||
               n.rfind("final_layer.linear", 0) == 0 || p.shape.size() == 1) {
      // zero
    } else if (n.rfind("t_embedder", 0) == 0 || n.rfind("y_embedder", 0) == 0) {
      NormalInit(dst, p.numel, 0.02f, seed, i);
    } else {
      const int64_t out = p.shape[0], in = static_cast<int64_t>(p.numel) / out;
      const float a = std::sqrt(6.0f / static_cast<float>(in + out));
      UniformInit(dst, p.numel, a, seed, i);
    }
  }
}

absl::Status Dit::SetDiffusionBatch(const DiffusionBatch& b) {
  if (b.batch <= 0 || b.batch > options_.max_batch) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch size ", b.batch, " outside 1..", options_.max_batch));
  }
  const int K = config_.num_classes;
  for (int i = 0; i < b.batch; ++i) {
    if (b.labels[i] < 0 || b.labels[i] > K) {
      return absl::InvalidArgumentError(absl::StrCat("label ", b.labels[i], " of image ", i,
                                                     " outside 0..", K, " (", K,
                                                     " = the null class)"));
    }
    if (b.timesteps[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("timestep ", b.timesteps[i], " of image ", i, " is negative"));
    }
  }
  B_ = b.batch;
  has_target_ = b.target != nullptr;
  loss_ready_ = false;
  const int64_t N = int64_t{B_} * DitTokens(config_), P = DitPatchDim(config_);
  std::vector<float> host(N * P);
  DitPatchify(config_, B_, b.x_t, host.data());
  device_->CopyFromHost(acts_.xp, host.data(), sizeof(float) * N * P);
  if (has_target_) {
    DitToTokenOrder(config_, B_, b.target, host.data());
    device_->CopyFromHost(acts_.target, host.data(), sizeof(float) * N * P);
  }
  device_->CopyFromHost(acts_.timesteps, b.timesteps, sizeof(int32_t) * B_);
  device_->CopyFromHost(acts_.labels, b.labels, sizeof(int32_t) * B_);
  return absl::OkStatus();
}

void Dit::CopyPrediction(float* host) const {
  const int64_t N = int64_t{B_} * DitTokens(config_), P = DitPatchDim(config_);
  std::vector<float> tokens(N * P);
  device_->CopyToHost(tokens.data(), acts_.pred, sizeof(float) * N * P);
  DitFromTokenOrder(config_, B_, tokens.data(), host);
}

double Dit::Loss() {
  if (!loss_ready_) {
    float l = 0.0f;
    if (has_target_) device_->CopyToHost(&l, acts_.loss, sizeof(float));
    loss_ = l;
    loss_ready_ = true;
  }
  return loss_;
}

void Dit::Forward(int unit, ParamPtrs params) {
  const DType dt = options_.compute_dtype;
  if (unit == 0) {
    EmbedForward(Embed(params[0], dt));
  } else if (unit == FinalUnit()) {
    FinalForward(Final(params[unit], dt));
  } else {
    BlockForward(unit - 1, Block(params[unit], dt));
  }
}

void Dit::Backward(int unit, ParamPtrs params, GradPtrs grads, float loss_scale) {
  const DType dt = options_.compute_dtype;
  if (unit == 0) {
    EmbedBackward(Embed(params[0], dt), Embed(grads[0], DType::kF32));
  } else if (unit == FinalUnit()) {
    FinalBackward(Final(params[unit], dt), Final(grads[unit], DType::kF32), loss_scale);
  } else {
    const BlockParams w = Block(params[unit], dt);
    if (options_.recompute) BlockForward(unit - 1, w);
    BlockBackward(unit - 1, w, Block(grads[unit], DType::kF32));
  }
}

}  // namespace anvil
