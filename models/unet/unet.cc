#include "models/unet/unet.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kernels/op_registry.h"
#include "kernels/ops/attention.h"
#include "kernels/ops/concat.h"
#include "kernels/ops/conv.h"
#include "kernels/ops/convert.h"
#include "kernels/ops/diffusion_ops.h"
#include "kernels/ops/elementwise.h"
#include "kernels/ops/embedding.h"
#include "kernels/ops/image.h"
#include "kernels/ops/linear.h"
#include "models/init_rng.h"

namespace anvil {
namespace {

namespace k = kernels;

// A contiguous view with a ParamInfo's shape.
k::TensorView ShapedView(void* p, DType dt, const std::vector<int64_t>& shape) {
  k::TensorView v;
  v.data = p;
  v.dtype = dt;
  v.ndim = static_cast<int>(shape.size());
  int64_t st = 1;
  for (int i = v.ndim - 1; i >= 0; --i) {
    v.shape[i] = shape[i];
    v.stride[i] = st;
    st *= shape[i];
  }
  return v;
}

k::Conv2dParams Same3x3() { return {.stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1,
                                    .accumulate_dx = false}; }
k::Conv2dParams Down3x3() { return {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1,
                                    .accumulate_dx = false}; }
k::Conv2dParams Pointwise() { return {.accumulate_dx = false}; }
// One mask per stage: the stage index salts the images' seeds.
k::DropoutParams DropAt(float p, int stage) {
  return {.p = p, .salt = static_cast<uint32_t>(stage)};
}

}  // namespace

UNet::UNet(const UNetConfig& config, const UNetOptions& options, kernels::Device* device)
    : config_(config), options_(options), device_(device) {}

UNet::~UNet() {
  if (arena_ != nullptr) device_->Free(arena_);
}

absl::StatusOr<std::unique_ptr<UNet>> UNet::Create(const UNetConfig& config,
                                                   const UNetOptions& options,
                                                   kernels::Device* device) {
  RETURN_IF_ERROR(ValidateUNetConfig(config));
  if (options.max_batch <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--batch_size must be > 0, got ", options.max_batch));
  }
  const DType cd = options.compute_dtype;
  if (cd != DType::kF32 && cd != DType::kBF16) {
    return absl::InvalidArgumentError(absl::StrCat("the UNet computes in F32 or BF16, not ",
                                                   std::string(DTypeName(cd))));
  }
  const DType f = DType::kF32;
  RETURN_IF_ERROR(k::RequireOps(
      *device, {{"embedding.timestep_embedding", cd}, {"embedding.forward", f},
                {"embedding.backward", f}, {"linear.forward", cd}, {"linear.backward", cd},
                {"conv.conv2d_forward", cd}, {"conv.conv2d_backward", cd},
                {"image.groupnorm_forward", cd}, {"image.groupnorm_backward", cd},
                {"image.add_channel_bias", cd}, {"image.add_channel_bias_backward", cd},
                {"image.upsample2x_forward", cd}, {"image.upsample2x_backward", cd},
                {"image.concat_channels", cd}, {"image.concat_channels_backward", cd},
                {"activation.silu_forward", cd}, {"activation.silu_backward", cd},
                {"attention.forward", cd}, {"attention.backward", cd},
                {"elementwise.add", cd}, {"elementwise.accumulate", f},
                {"loss.mse_forward", f}, {"loss.mse_backward", f}, {"convert.convert", cd}}));
  if (config.dropout > 0.0f) RETURN_IF_ERROR(k::RequireOps(*device, {{"elementwise.dropout", cd}}));
  std::unique_ptr<UNet> m(new UNet(config, options, device));
  m->plan_ = BuildUNetPlan(config);
  DeclareUNetParams(config, m->plan_, &m->layout_);
  m->IndexStageParams();
  RETURN_IF_ERROR(m->AllocateArena());
  return m;
}

absl::Status UNet::AllocateArena() {
  const int64_t B = options_.max_batch, S2 = int64_t{config_.image_size} * config_.image_size,
                E = UNetEmbedWidth(config_), ch = config_.channels, IC = config_.image_channels,
                G = config_.norm_groups, NH = config_.n_head;
  const size_t es = DTypeSize(options_.compute_dtype);
  std::vector<std::pair<void**, size_t>> pieces;  // (slot, bytes), each 64-byte aligned
  auto piece = [&](void* slot, int64_t elems, size_t elem_size) {
    pieces.push_back({static_cast<void**>(slot),
                      (static_cast<size_t>(elems) * elem_size + 63) / 64 * 64});
  };
  auto f = [&](float** slot, int64_t n) { piece(slot, n, 4); };
  auto c = [&](void** slot, int64_t n) { piece(slot, n, es); };
  const size_t ntensors = plan_.tensors.size();
  acts_.t_act.assign(ntensors, nullptr);
  acts_.t_grad.assign(ntensors, nullptr);
  // The gradients first, back to back: one memset clears them all.
  f(&acts_.g_temb_silu, B * E);
  for (size_t t = 0; t < ntensors; ++t) {
    f(&acts_.t_grad[t], B * plan_.tensors[t].res * plan_.tensors[t].res * plan_.tensors[t].c);
  }
  const size_t grad_pieces = pieces.size();
  f(&acts_.x_t, B * S2 * IC);
  f(&acts_.target, B * S2 * IC);
  piece(&acts_.timesteps, B, 4);
  piece(&acts_.labels, B, 4);
  piece(&acts_.dropout_seeds, B, 4);
  c(&acts_.x_cd, B * S2 * IC);
  c(&acts_.sin, B * ch);
  c(&acts_.te1, B * E);
  c(&acts_.te1s, B * E);
  c(&acts_.temb_silu, B * E);
  f(&acts_.temb, B * E);
  f(&acts_.cemb, B * E);
  for (size_t t = 0; t < ntensors; ++t) {
    c(&acts_.t_act[t], B * plan_.tensors[t].res * plan_.tensors[t].res * plan_.tensors[t].c);
  }
  // Per-stage activations; with recompute one set sized for the largest
  // stage serves every stage (backward reruns the stage's forward first).
  struct Sizes {
    int64_t cat = 0, in = 0, out = 0, tproj = 0, skip = 0, attn = 0, qkv = 0, lse = 0, up = 0;
  };
  auto sizes = [&](const UNetStage& s) {
    const int64_t n = int64_t{s.res} * s.res, ci = s.cin, co = s.cout;
    Sizes z;
    z.cat = s.in_b >= 0 ? B * n * ci : 0;
    z.in = B * n * ci;
    z.out = B * n * co;
    z.tproj = B * co;
    z.skip = ci != co ? B * n * co : 0;
    z.attn = s.attn ? B * n * co : 0;
    z.qkv = s.attn ? B * n * 3 * co : 0;
    z.lse = s.attn ? B * NH * n : 0;
    z.up = s.resample == Resample::kUp ? B * 4 * n * co : 0;
    return z;
  };
  auto add_stage = [&](StageActs& a, const Sizes& z) {
    if (z.cat > 0) c(&a.cat, z.cat);
    c(&a.gn1, z.in);
    c(&a.silu1, z.in);
    for (void** p : {&a.h1, &a.gn2, &a.silu2, &a.h2}) c(p, z.out);
    c(&a.tproj, z.tproj);
    if (z.skip > 0) c(&a.skip, z.skip);
    for (float** p : {&a.mean1, &a.rstd1, &a.mean2, &a.rstd2}) f(p, B * G);
    if (z.attn > 0) {
      for (void** p : {&a.rbout, &a.gna, &a.atty}) c(p, z.attn);
      c(&a.qkv, z.qkv);
      f(&a.meana, B * G);
      f(&a.rstda, B * G);
      f(&a.lse, z.lse);
    }
    if (z.up > 0) c(&a.up, z.up);
  };
  acts_.stages.assign(plan_.stages.size(), StageActs{});
  StageActs shared;
  Sizes most;
  int64_t scratch = std::max({S2 * ch, S2 * IC, E});
  for (size_t i = 0; i < plan_.stages.size(); ++i) {
    const UNetStage& s = plan_.stages[i];
    const Sizes z = sizes(s);
    if (options_.recompute) {
      most.cat = std::max(most.cat, z.cat);
      most.in = std::max(most.in, z.in);
      most.out = std::max(most.out, z.out);
      most.tproj = std::max(most.tproj, z.tproj);
      most.skip = std::max(most.skip, z.skip);
      most.attn = std::max(most.attn, z.attn);
      most.qkv = std::max(most.qkv, z.qkv);
      most.lse = std::max(most.lse, z.lse);
      most.up = std::max(most.up, z.up);
    } else {
      add_stage(acts_.stages[i], z);
    }
    const int64_t n = int64_t{s.res} * s.res;
    scratch = std::max({scratch, n * s.cin, 4 * n * s.cout});
  }
  if (options_.recompute) add_stage(shared, most);
  c(&acts_.gno, B * S2 * ch);
  c(&acts_.so, B * S2 * ch);
  f(&acts_.meano, B * G);
  f(&acts_.rstdo, B * G);
  f(&acts_.pred, B * S2 * IC);
  f(&acts_.loss, 1);
  f(&acts_.f0, B * scratch);
  f(&acts_.f1, B * scratch);
  const int64_t wide = std::max<int64_t>(E, 4 * ch * *std::max_element(config_.channel_mult.begin(),
                                                                       config_.channel_mult.end()));
  f(&acts_.fb, B * wide);
  for (void** p : {&acts_.c0, &acts_.c1, &acts_.c2, &acts_.c3}) c(p, B * scratch);
  c(&acts_.cb, B * wide);
  size_t total = 0;
  for (auto& p : pieces) total += p.second;
  grad_bytes_ = 0;
  for (size_t i = 0; i < grad_pieces; ++i) grad_bytes_ += pieces[i].second;
  arena_bytes_ = total;
  arena_ = device_->Alloc(arena_bytes_);
  device_->Memset(arena_, 0, arena_bytes_);
  char* cursor = static_cast<char*>(arena_);
  for (auto& p : pieces) {
    *p.first = cursor;
    cursor += p.second;
  }
  if (options_.recompute) acts_.stages.assign(plan_.stages.size(), shared);
  if (options_.compute_dtype == DType::kF32) acts_.x_cd = acts_.x_t;  // no copy needed
  return absl::OkStatus();
}

void UNet::InitParams(float* host, uint64_t seed) const {
  // Weights N(0, 1/fan_in) (fan_in = in x kh x kw), the class embedding
  // N(0, 1), biases 0, GroupNorm weights 1; the last conv of every block,
  // the attention projections and the output conv start at zero (DDPM's
  // zero_module), so every block starts as the identity.
  for (size_t i = 0; i < layout_.params().size(); ++i) {
    const ParamInfo& p = layout_.params()[i];
    float* dst = host + p.offset;
    const std::string& n = p.name;
    auto ends = [&](const std::string& s) {
      return n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0;
    };
    if (p.shape.size() == 1) {
      const bool norm_w = ends("norm.weight") || ends("norm1.weight") || ends("norm2.weight");
      std::fill(dst, dst + p.numel, norm_w ? 1.0f : 0.0f);
    } else if (ends("conv2.weight") || ends("attn.proj.weight") || n == "out.conv.weight") {
      std::fill(dst, dst + p.numel, 0.0f);
    } else if (n == "class_embed.weight") {
      NormalInit(dst, p.numel, 1.0f, seed, i);
    } else {
      const double fan_in = static_cast<double>(p.numel) / static_cast<double>(p.shape[0]);
      NormalInit(dst, p.numel, static_cast<float>(1.0 / std::sqrt(fan_in)), seed, i);
    }
  }
}

absl::Status UNet::SetDiffusionBatch(const DiffusionBatch& b) {
  if (b.batch <= 0 || b.batch > options_.max_batch) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch size ", b.batch, " outside 1..", options_.max_batch));
  }
  const int K = config_.num_classes;
  for (int i = 0; i < b.batch; ++i) {
    if (b.timesteps[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("timestep ", b.timesteps[i], " of image ", i, " is negative"));
    }
    if (K > 0 && (b.labels[i] < 0 || b.labels[i] > K)) {  // unconditional: labels unread
      return absl::InvalidArgumentError(absl::StrCat("label ", b.labels[i], " of image ", i,
                                                     " outside 0..", K, " (", K,
                                                     " = the null class)"));
    }
  }
  const size_t img = static_cast<size_t>(b.batch) * config_.image_size * config_.image_size *
                     config_.image_channels * sizeof(float);
  B_ = b.batch;
  has_target_ = b.target != nullptr;
  loss_ready_ = false;
  device_->CopyFromHost(acts_.x_t, b.x_t, img);
  if (has_target_) device_->CopyFromHost(acts_.target, b.target, img);
  device_->CopyFromHost(acts_.timesteps, b.timesteps, sizeof(int32_t) * B_);
  device_->CopyFromHost(acts_.labels, b.labels, sizeof(int32_t) * B_);
  // Dropout only in training (a target) and where the batch keys the masks.
  dropout_ = has_target_ && b.dropout_seeds != nullptr && config_.dropout > 0.0f;
  if (dropout_) device_->CopyFromHost(acts_.dropout_seeds, b.dropout_seeds, sizeof(int32_t) * B_);
  return absl::OkStatus();
}

void UNet::CopyPrediction(float* host) const {
  device_->CopyToHost(host, acts_.pred,
                      sizeof(float) * B_ * config_.image_size * config_.image_size *
                          config_.image_channels);
}

double UNet::Loss() {
  if (!loss_ready_) {
    float l = 0;
    if (has_target_) device_->CopyToHost(&l, acts_.loss, sizeof(float));
    loss_ = l;
    loss_ready_ = true;
  }
  return loss_;
}

k::TensorView UNet::Act(void* p, std::initializer_list<int64_t> shape) const {
  return k::View(p, options_.compute_dtype, shape);
}
k::TensorView UNet::Img(void* p, int res, int c) const {
  return k::View(p, options_.compute_dtype, {B_, res, res, c});
}
k::TensorView UNet::ImgF(float* p, int res, int c) const { return k::View(p, {B_, res, res, c}); }

k::TensorView UNet::GradCompute(float* g, int res, int c, void* scratch) {
  if (options_.compute_dtype == DType::kF32) return ImgF(g, res, c);
  const TV out = Img(scratch, res, c);
  k::Convert(*device_, out, ImgF(g, res, c));
  return out;
}

k::TensorView UNet::ParamView(int unit, void* base, DType dt, const std::string& name) const {
  const int i = layout_.Find(name);
  if (i < 0 || layout_.params()[i].unit != unit) return TV{};
  const ParamInfo& p = layout_.params()[i];
  return ShapedView(static_cast<char*>(base) + layout_.OffsetInUnit(i) * DTypeSize(dt), dt,
                    p.shape);
}

namespace {
// Slots of a stage's tensors, in StageParams order.
constexpr const char* kStageSlots[] = {
    "norm1.weight",    "norm1.bias",     "conv1.weight",    "conv1.bias",    "temb.weight",
    "temb.bias",       "norm2.weight",   "norm2.bias",      "conv2.weight",  "conv2.bias",
    "skip.weight",     "skip.bias",      "attn.norm.weight", "attn.norm.bias", "attn.qkv.weight",
    "attn.qkv.bias",   "attn.proj.weight", "attn.proj.bias", "",              ""};
constexpr int kNumSlots = 20;
}  // namespace

void UNet::IndexStageParams() {
  stage_idx_.assign(plan_.stages.size(), std::vector<int>(kNumSlots, -1));
  for (size_t s = 0; s < plan_.stages.size(); ++s) {
    const UNetStage& st = plan_.stages[s];
    const std::string resample = st.resample == Resample::kDown ? "down" : "up";
    for (int i = 0; i < kNumSlots; ++i) {
      std::string slot = kStageSlots[i];
      if (i >= 18) slot = resample + (i == 18 ? ".weight" : ".bias");
      stage_idx_[s][i] = layout_.Find(st.name + "." + slot);
    }
  }
}

UNet::StageParams UNet::Params(int s, void* base, DType dt) const {
  TV v[kNumSlots];
  for (int i = 0; i < kNumSlots; ++i) {
    const int idx = stage_idx_[s][i];
    if (idx < 0) continue;
    v[i] = ShapedView(static_cast<char*>(base) + layout_.OffsetInUnit(idx) * DTypeSize(dt), dt,
                      layout_.params()[idx].shape);
  }
  return StageParams{v[0],  v[1],  v[2],  v[3],  v[4],  v[5],  v[6],  v[7],  v[8],  v[9],
                     v[10], v[11], v[12], v[13], v[14], v[15], v[16], v[17], v[18], v[19]};
}

void UNet::Forward(int unit, ParamPtrs params) {
  const int last = num_units() - 1;
  if (unit == 0) {
    EmbedForward(params);
  } else if (unit == last) {
    OutForward(params);
  } else {
    StageForward(unit - 1, Params(unit - 1, params[unit], options_.compute_dtype));
  }
}

void UNet::Backward(int unit, ParamPtrs params, GradPtrs grads, float loss_scale) {
  const int last = num_units() - 1;
  if (unit == last) {
    OutBackward(params, grads, loss_scale);
  } else if (unit == 0) {
    EmbedBackward(params, grads);
  } else {
    const int s = unit - 1;
    if (options_.recompute) StageForward(s, Params(s, params[unit], options_.compute_dtype));
    StageBackward(s, Params(s, params[unit], options_.compute_dtype),
                  Params(s, grads[unit], DType::kF32));
  }
}

void UNet::EmbedForward(ParamPtrs params) {
  const DType dt = options_.compute_dtype;
  const int64_t E = UNetEmbedWidth(config_), ch = config_.channels;
  const int S = config_.image_size, IC = config_.image_channels;
  k::Device& d = *device_;
  auto w = [&](const std::string& n) { return ParamView(0, params[0], dt, n); };
  k::TimestepEmbedding(d, Act(acts_.sin, {B_, ch}), k::View(acts_.timesteps, {B_}));
  k::LinearForward(d, Act(acts_.te1, {B_, E}), Act(acts_.sin, {B_, ch}), w("time_embed.0.weight"),
                   w("time_embed.0.bias"));
  k::SiluForward(d, Act(acts_.te1s, {B_, E}), Act(acts_.te1, {B_, E}));
  k::LinearForward(d, k::View(acts_.temb, {B_, E}), Act(acts_.te1s, {B_, E}),
                   w("time_embed.2.weight"), w("time_embed.2.bias"));
  if (config_.num_classes > 0) {
    k::EmbeddingForward(d, k::View(acts_.cemb, {B_, 1, E}), k::View(acts_.labels, {B_, 1}),
                        w("class_embed.weight"), {});
    k::Accumulate(d, k::View(acts_.temb, {B_ * E}), k::View(acts_.cemb, {B_ * E}));
  }
  k::SiluForward(d, Act(acts_.temb_silu, {B_, E}), k::View(acts_.temb, {B_, E}));
  if (acts_.x_cd != acts_.x_t) k::Convert(d, Img(acts_.x_cd, S, IC), ImgF(acts_.x_t, S, IC));
  k::Conv2dForward(d, Img(acts_.t_act[0], S, static_cast<int>(ch)), Img(acts_.x_cd, S, IC),
                   w("stem.weight"), w("stem.bias"), Same3x3());
}

void UNet::EmbedBackward(ParamPtrs params, GradPtrs grads) {
  const DType dt = options_.compute_dtype;
  const int64_t E = UNetEmbedWidth(config_), ch = config_.channels;
  const int S = config_.image_size, IC = config_.image_channels;
  k::Device& d = *device_;
  auto w = [&](const std::string& n) { return ParamView(0, params[0], dt, n); };
  auto g = [&](const std::string& n) { return ParamView(0, grads[0], DType::kF32, n); };
  const TV gs = GradCompute(acts_.t_grad[0], S, static_cast<int>(ch), acts_.c0);
  k::Conv2dBackward(d, {}, g("stem.weight"), g("stem.bias"), gs, Img(acts_.x_cd, S, IC),
                    w("stem.weight"), Same3x3());
  // temb = lin2(SiLU(lin1(sin))) (+ class row); SiLU(temb) fed every block.
  const TV dtemb = k::View(acts_.fb, {B_, E});
  d.Memset(acts_.fb, 0, dtemb.bytes());
  k::SiluBackward(d, dtemb, k::View(acts_.temb, {B_, E}), k::View(acts_.g_temb_silu, {B_, E}));
  if (config_.num_classes > 0) {
    k::EmbeddingBackward(d, g("class_embed.weight"), {}, k::View(acts_.fb, {B_, 1, E}),
                         k::View(acts_.labels, {B_, 1}));
  }
  TV dtemb_cd = dtemb;
  if (dt != DType::kF32) {
    dtemb_cd = Act(acts_.cb, {B_, E});
    k::Convert(d, dtemb_cd, dtemb);
  }
  k::LinearBackward(d, Act(acts_.c1, {B_, E}), g("time_embed.2.weight"), g("time_embed.2.bias"),
                    dtemb_cd, Act(acts_.te1s, {B_, E}), w("time_embed.2.weight"),
                    {.accumulate_dx = false});
  const TV dte1 = Act(acts_.c2, {B_, E});
  d.Memset(acts_.c2, 0, dte1.bytes());
  k::SiluBackward(d, dte1, Act(acts_.te1, {B_, E}), Act(acts_.c1, {B_, E}));
  k::LinearBackward(d, {}, g("time_embed.0.weight"), g("time_embed.0.bias"), dte1,
                    Act(acts_.sin, {B_, ch}), w("time_embed.0.weight"));
}

void UNet::StageForward(int si, const StageParams& w) {
  const UNetStage& s = plan_.stages[si];
  const StageActs& a = acts_.stages[si];
  k::Device& d = *device_;
  const int r = s.res, ci = s.cin, co = s.cout, NH = config_.n_head;
  const int64_t G = config_.norm_groups, n = int64_t{r} * r, E = UNetEmbedWidth(config_);
  const k::GroupNormParams gp{.groups = config_.norm_groups, .eps = config_.norm_eps};
  const TV in = s.in_b >= 0 ? Img(a.cat, r, ci) : Img(acts_.t_act[s.in_a], r, ci);
  if (s.in_b >= 0) {
    const int ca = plan_.tensors[s.in_a].c;
    k::ConcatChannels(d, in, Img(acts_.t_act[s.in_a], r, ca), Img(acts_.t_act[s.in_b], r, ci - ca));
  }
  k::GroupNormForward(d, Img(a.gn1, r, ci), k::View(a.mean1, {B_, G}), k::View(a.rstd1, {B_, G}),
                      in, w.norm1_w, w.norm1_b, gp);
  k::SiluForward(d, Img(a.silu1, r, ci), Img(a.gn1, r, ci));
  k::Conv2dForward(d, Img(a.h1, r, co), Img(a.silu1, r, ci), w.conv1_w, w.conv1_b, Same3x3());
  k::LinearForward(d, Act(a.tproj, {B_, co}), Act(acts_.temb_silu, {B_, E}), w.temb_w, w.temb_b);
  k::AddChannelBias(d, Img(a.h1, r, co), Act(a.tproj, {B_, co}));
  k::GroupNormForward(d, Img(a.gn2, r, co), k::View(a.mean2, {B_, G}), k::View(a.rstd2, {B_, G}),
                      Img(a.h1, r, co), w.norm2_w, w.norm2_b, gp);
  k::SiluForward(d, Img(a.silu2, r, co), Img(a.gn2, r, co));
  if (dropout_) k::Dropout(d, Img(a.silu2, r, co), k::View(acts_.dropout_seeds, {B_}), DropAt(config_.dropout, si));
  k::Conv2dForward(d, Img(a.h2, r, co), Img(a.silu2, r, co), w.conv2_w, w.conv2_b, Same3x3());
  void* y = s.attn ? a.rbout : acts_.t_act[s.out];
  if (ci != co) {
    k::Conv2dForward(d, Img(a.skip, r, co), in, w.skip_w, w.skip_b, Pointwise());
    k::Add(d, Img(y, r, co), Img(a.h2, r, co), Img(a.skip, r, co));
  } else {
    k::Add(d, Img(y, r, co), Img(a.h2, r, co), in);
  }
  if (s.attn) {
    k::GroupNormForward(d, Img(a.gna, r, co), k::View(a.meana, {B_, G}),
                        k::View(a.rstda, {B_, G}), Img(a.rbout, r, co), w.attn_norm_w,
                        w.attn_norm_b, gp);
    k::LinearForward(d, Act(a.qkv, {B_ * n, 3 * co}), Act(a.gna, {B_ * n, co}), w.qkv_w, w.qkv_b);
    const k::QkvViews q = k::PackedQkv(a.qkv, options_.compute_dtype, B_, n, co, NH);
    k::AttentionForward(d, Act(a.atty, {B_, n, NH, co / NH}), k::View(a.lse, {B_, NH, n}), q.q,
                        q.k, q.v, {.causal = false});
    void* out = acts_.t_act[s.out];
    k::LinearForward(d, Act(out, {B_ * n, co}), Act(a.atty, {B_ * n, co}), w.proj_w, w.proj_b);
    k::Accumulate(d, Act(out, {B_ * n * co}), Act(a.rbout, {B_ * n * co}));
  }
  if (s.resample == Resample::kDown) {
    k::Conv2dForward(d, Img(acts_.t_act[s.out2], r / 2, co), Img(acts_.t_act[s.out], r, co),
                     w.resample_w, w.resample_b, Down3x3());
  } else if (s.resample == Resample::kUp) {
    k::Upsample2xForward(d, Img(a.up, 2 * r, co), Img(acts_.t_act[s.out], r, co));
    k::Conv2dForward(d, Img(acts_.t_act[s.out2], 2 * r, co), Img(a.up, 2 * r, co), w.resample_w,
                     w.resample_b, Same3x3());
  }
}

// On entry t_grad[out] (and t_grad[out2]) hold the complete gradients of the
// stage's outputs (every consumer ran its backward before); on return the
// stage has accumulated into its inputs' gradients and g_temb_silu.
void UNet::StageBackward(int si, const StageParams& w, const StageParams& g) {
  const UNetStage& s = plan_.stages[si];
  const StageActs& a = acts_.stages[si];
  k::Device& d = *device_;
  const int r = s.res, ci = s.cin, co = s.cout, NH = config_.n_head;
  const int64_t G = config_.norm_groups, n = int64_t{r} * r, E = UNetEmbedWidth(config_);
  const DType dt = options_.compute_dtype;
  const k::GroupNormParams gp{.groups = config_.norm_groups, .eps = config_.norm_eps};
  float* g_out = acts_.t_grad[s.out];
  if (s.resample == Resample::kDown) {
    const TV gd = GradCompute(acts_.t_grad[s.out2], r / 2, co, acts_.c0);
    k::Conv2dBackward(d, Img(acts_.c1, r, co), g.resample_w, g.resample_b, gd,
                      Img(acts_.t_act[s.out], r, co), w.resample_w, Down3x3());
    k::Accumulate(d, ImgF(g_out, r, co), Img(acts_.c1, r, co));
  } else if (s.resample == Resample::kUp) {
    const TV gd = GradCompute(acts_.t_grad[s.out2], 2 * r, co, acts_.c0);
    k::Conv2dBackward(d, Img(acts_.c1, 2 * r, co), g.resample_w, g.resample_b, gd,
                      Img(a.up, 2 * r, co), w.resample_w, Same3x3());
    k::Upsample2xBackward(d, ImgF(g_out, r, co), Img(acts_.c1, 2 * r, co));
  }
  float* g_rb = g_out;  // d(loss)/d(block output before attention)
  if (s.attn) {
    const TV gd = GradCompute(g_out, r, co, acts_.c0);
    const TV gflat = k::View(gd.data, dt, {B_ * n, co});
    k::LinearBackward(d, Act(acts_.c1, {B_ * n, co}), g.proj_w, g.proj_b, gflat,
                      Act(a.atty, {B_ * n, co}), w.proj_w, {.accumulate_dx = false});
    d.Memset(acts_.c2, 0, Act(acts_.c2, {B_ * n * 3 * co}).bytes());
    const k::QkvViews q = k::PackedQkv(a.qkv, dt, B_, n, co, NH);
    const k::QkvViews dq = k::PackedQkv(acts_.c2, dt, B_, n, co, NH);
    k::AttentionBackward(d, dq.q, dq.k, dq.v, Act(acts_.c1, {B_, n, NH, co / NH}), q.q, q.k, q.v,
                         Act(a.atty, {B_, n, NH, co / NH}), k::View(a.lse, {B_, NH, n}),
                         {.causal = false});
    k::LinearBackward(d, Act(acts_.c1, {B_ * n, co}), g.qkv_w, g.qkv_b,
                      Act(acts_.c2, {B_ * n, 3 * co}), Act(a.gna, {B_ * n, co}), w.qkv_w,
                      {.accumulate_dx = false});
    g_rb = acts_.f0;
    d.Copy(g_rb, g_out, sizeof(float) * B_ * n * co);  // the residual path
    k::GroupNormBackward(d, ImgF(g_rb, r, co), g.attn_norm_w, g.attn_norm_b, Img(acts_.c1, r, co),
                         Img(a.rbout, r, co), w.attn_norm_w, k::View(a.meana, {B_, G}),
                         k::View(a.rstda, {B_, G}), gp);
  }
  // The residual block: y = conv2(SiLU(GN2(h1))) + skip(in), h1 =
  // conv1(SiLU(GN1(in))) + temb projection.
  const TV gy = GradCompute(g_rb, r, co, acts_.c0);
  const bool cat = s.in_b >= 0;
  float* g_in = cat ? acts_.f1 : acts_.t_grad[s.in_a];
  if (cat) d.Memset(g_in, 0, sizeof(float) * B_ * n * ci);
  const TV in = cat ? Img(a.cat, r, ci) : Img(acts_.t_act[s.in_a], r, ci);
  if (ci != co) {
    k::Conv2dBackward(d, Img(acts_.c1, r, ci), g.skip_w, g.skip_b, gy, in, w.skip_w, Pointwise());
    k::Accumulate(d, ImgF(g_in, r, ci), Img(acts_.c1, r, ci));
  } else {
    k::Accumulate(d, ImgF(g_in, r, ci), ImgF(g_rb, r, co));
  }
  k::Conv2dBackward(d, Img(acts_.c1, r, co), g.conv2_w, g.conv2_b, gy, Img(a.silu2, r, co),
                    w.conv2_w, Same3x3());
  if (dropout_) k::Dropout(d, Img(acts_.c1, r, co), k::View(acts_.dropout_seeds, {B_}), DropAt(config_.dropout, si));
  d.Memset(acts_.c2, 0, Img(acts_.c2, r, co).bytes());
  k::SiluBackward(d, Img(acts_.c2, r, co), Img(a.gn2, r, co), Img(acts_.c1, r, co));
  d.Memset(acts_.c3, 0, Img(acts_.c3, r, co).bytes());
  k::GroupNormBackward(d, Img(acts_.c3, r, co), g.norm2_w, g.norm2_b, Img(acts_.c2, r, co),
                       Img(a.h1, r, co), w.norm2_w, k::View(a.mean2, {B_, G}),
                       k::View(a.rstd2, {B_, G}), gp);
  // The temb projection's gradient: dtproj[b] = sum over positions of dh1.
  const TV dtp = k::View(acts_.fb, {B_, co});
  d.Memset(acts_.fb, 0, dtp.bytes());
  k::AddChannelBiasBackward(d, dtp, Img(acts_.c3, r, co));
  TV dtp_cd = dtp;
  if (dt != DType::kF32) {
    dtp_cd = Act(acts_.cb, {B_, co});
    k::Convert(d, dtp_cd, dtp);
  }
  k::LinearBackward(d, k::View(acts_.g_temb_silu, {B_, E}), g.temb_w, g.temb_b, dtp_cd,
                    Act(acts_.temb_silu, {B_, E}), w.temb_w, {.accumulate_dx = true});
  k::Conv2dBackward(d, Img(acts_.c1, r, ci), g.conv1_w, g.conv1_b, Img(acts_.c3, r, co),
                    Img(a.silu1, r, ci), w.conv1_w, Same3x3());
  d.Memset(acts_.c2, 0, Img(acts_.c2, r, ci).bytes());
  k::SiluBackward(d, Img(acts_.c2, r, ci), Img(a.gn1, r, ci), Img(acts_.c1, r, ci));
  k::GroupNormBackward(d, ImgF(g_in, r, ci), g.norm1_w, g.norm1_b, Img(acts_.c2, r, ci), in,
                       w.norm1_w, k::View(a.mean1, {B_, G}), k::View(a.rstd1, {B_, G}), gp);
  if (cat) {
    const int ca = plan_.tensors[s.in_a].c;
    k::ConcatChannelsBackward(d, ImgF(acts_.t_grad[s.in_a], r, ca),
                              ImgF(acts_.t_grad[s.in_b], r, ci - ca), ImgF(g_in, r, ci));
  }
}

void UNet::OutForward(ParamPtrs params) {
  const int u = num_units() - 1;
  const DType dt = options_.compute_dtype;
  const int S = config_.image_size, IC = config_.image_channels, ch = config_.channels;
  const int64_t G = config_.norm_groups;
  k::Device& d = *device_;
  auto w = [&](const std::string& n) { return ParamView(u, params[u], dt, n); };
  k::GroupNormForward(d, Img(acts_.gno, S, ch), k::View(acts_.meano, {B_, G}),
                      k::View(acts_.rstdo, {B_, G}), Img(acts_.t_act[plan_.final_tensor], S, ch),
                      w("out.norm.weight"), w("out.norm.bias"),
                      {.groups = config_.norm_groups, .eps = config_.norm_eps});
  k::SiluForward(d, Img(acts_.so, S, ch), Img(acts_.gno, S, ch));
  k::Conv2dForward(d, ImgF(acts_.pred, S, IC), Img(acts_.so, S, ch), w("out.conv.weight"),
                   w("out.conv.bias"), Same3x3());
  if (has_target_) {
    k::MseLossForward(d, k::View(acts_.loss, {1}), ImgF(acts_.pred, S, IC),
                      ImgF(acts_.target, S, IC));
  }
  loss_ready_ = false;
}

void UNet::OutBackward(ParamPtrs params, GradPtrs grads, float loss_scale) {
  const int u = num_units() - 1;
  const DType dt = options_.compute_dtype;
  const int S = config_.image_size, IC = config_.image_channels, ch = config_.channels;
  const int64_t G = config_.norm_groups;
  k::Device& d = *device_;
  auto w = [&](const std::string& n) { return ParamView(u, params[u], dt, n); };
  auto g = [&](const std::string& n) { return ParamView(u, grads[u], DType::kF32, n); };
  // The first backward unit: clear every activation gradient.
  d.Memset(acts_.g_temb_silu, 0, grad_bytes_);
  const TV dpred = ImgF(acts_.f0, S, IC);
  d.Memset(acts_.f0, 0, dpred.bytes());
  k::MseLossBackward(d, dpred, ImgF(acts_.pred, S, IC), ImgF(acts_.target, S, IC), loss_scale);
  const TV dp = GradCompute(acts_.f0, S, IC, acts_.c0);
  k::Conv2dBackward(d, Img(acts_.c1, S, ch), g("out.conv.weight"), g("out.conv.bias"), dp,
                    Img(acts_.so, S, ch), w("out.conv.weight"), Same3x3());
  d.Memset(acts_.c2, 0, Img(acts_.c2, S, ch).bytes());
  k::SiluBackward(d, Img(acts_.c2, S, ch), Img(acts_.gno, S, ch), Img(acts_.c1, S, ch));
  k::GroupNormBackward(d, ImgF(acts_.t_grad[plan_.final_tensor], S, ch), g("out.norm.weight"),
                       g("out.norm.bias"), Img(acts_.c2, S, ch),
                       Img(acts_.t_act[plan_.final_tensor], S, ch), w("out.norm.weight"),
                       k::View(acts_.meano, {B_, G}), k::View(acts_.rstdo, {B_, G}),
                       {.groups = config_.norm_groups, .eps = config_.norm_eps});
}

}  // namespace anvil
