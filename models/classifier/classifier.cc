#include "models/classifier/classifier.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kernels/op_registry.h"
#include "kernels/ops/conv.h"
#include "kernels/ops/convert.h"
#include "kernels/ops/diffusion_ops.h"
#include "kernels/ops/elementwise.h"
#include "kernels/ops/image.h"
#include "kernels/ops/linear.h"
#include "kernels/ops/loss.h"
#include "models/init_rng.h"

namespace anvil {
namespace {

namespace k = kernels;

constexpr k::Conv2dParams ConvParams(int stride, bool accumulate_dx = true) {
  return k::Conv2dParams{.stride_h = stride,
                         .stride_w = stride,
                         .pad_h = 1,
                         .pad_w = 1,
                         .accumulate_dx = accumulate_dx};
}

}  // namespace

Classifier::Classifier(const ClassifierConfig& config, const ClassifierOptions& options,
                       kernels::Device* device)
    : config_(config), options_(options), device_(device), stages_(ClassifierStages(config)) {}

Classifier::~Classifier() {
  if (arena_ != nullptr) device_->Free(arena_);
}

absl::StatusOr<std::unique_ptr<Classifier>> Classifier::Create(const ClassifierConfig& config,
                                                               const ClassifierOptions& options,
                                                               kernels::Device* device) {
  RETURN_IF_ERROR(ValidateClassifierConfig(config));
  if (options.max_batch <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--batch_size must be > 0, got ", options.max_batch));
  }
  const DType cd = options.compute_dtype;
  if (cd != DType::kF32 && cd != DType::kBF16) {
    return absl::InvalidArgumentError(
        absl::StrCat("the classifier computes in F32 or BF16, not ", std::string(DTypeName(cd))));
  }
  RETURN_IF_ERROR(k::RequireOps(*device, {{"conv.conv2d_forward", cd},
                                          {"conv.conv2d_backward", cd},
                                          {"activation.silu_forward", cd},
                                          {"activation.silu_backward", cd},
                                          {"image.add_channel_bias", cd},
                                          {"image.add_channel_bias_backward", cd},
                                          {"elementwise.scale", DType::kF32},
                                          {"elementwise.scale", cd},
                                          {"linear.forward", cd},
                                          {"linear.backward", cd},
                                          {"loss.softmax_xent_forward", DType::kF32},
                                          {"loss.softmax_xent_backward", cd},
                                          {"convert.convert", cd}}));
  std::unique_ptr<Classifier> m(new Classifier(config, options, device));
  m->BuildLayout();
  m->AllocateArena();
  return m;
}

void Classifier::BuildLayout() {
  for (int u = 0; u < kClassifierConvs; ++u) {
    const ConvStage& s = stages_[u];
    layout_.BeginUnit(absl::StrCat("convs.", u));
    layout_.Add(absl::StrCat("convs.", u, ".weight"), {s.out, s.in, 3, 3}, true);
    layout_.Add(absl::StrCat("convs.", u, ".bias"), {s.out}, false);
  }
  layout_.BeginUnit("head");
  layout_.Add("fc.weight", {config_.num_classes, config_.width}, true);
  layout_.Add("fc.bias", {config_.num_classes}, false);
}

void Classifier::AllocateArena() {
  const size_t B = options_.max_batch, es = DTypeSize(options_.compute_dtype);
  const size_t S = config_.image_size, D = config_.width, K = config_.num_classes;
  const bool bf16 = options_.compute_dtype != DType::kF32;
  std::vector<std::pair<void**, size_t>> pieces;  // (pointer slot, bytes), 64-byte rounded
  auto piece = [&](void* slot, size_t bytes) {
    pieces.push_back({static_cast<void**>(slot), (bytes + 63) / 64 * 64});
  };
  const size_t image = B * S * S * config_.image_channels;
  piece(&acts_.images, image * 4);
  if (bf16) piece(&acts_.images_cd, image * es);
  piece(&acts_.labels, B * 4);
  size_t largest = image;
  for (int u = 0; u < kClassifierConvs; ++u) {
    const size_t n = B * stages_[u].out_size * stages_[u].out_size * stages_[u].out;
    piece(&acts_.pre[u], n * es);
    piece(&acts_.act[u], n * es);
    largest = std::max(largest, n);
  }
  piece(&acts_.pooled, B * D * 4);
  if (bf16) piece(&acts_.pooled_cd, B * D * es);
  piece(&acts_.logits, B * K * 4);
  piece(&acts_.probs, B * K * 4);
  piece(&acts_.losses, B * 4);
  piece(&acts_.dact, largest * es);
  piece(&acts_.dpre, largest * es);
  piece(&acts_.dpooled, B * D * es);
  piece(&acts_.dlogits, B * K * es);
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
  if (!bf16) {
    acts_.images_cd = acts_.images;
    acts_.pooled_cd = acts_.pooled;
  }
  host_losses_.resize(B);
}

void Classifier::InitParams(float* host, uint64_t seed) const {
  // He-normal conv weights for the SiLU stack (std sqrt(2 / fan_in)), a
  // LeCun-normal head (std 1 / sqrt(D)), zero biases.
  for (size_t i = 0; i < layout_.params().size(); ++i) {
    const ParamInfo& p = layout_.params()[i];
    float* dst = host + p.offset;
    if (p.shape.size() == 1) {
      std::fill(dst, dst + p.numel, 0.0f);
      continue;
    }
    const double fan_in = static_cast<double>(p.numel) / static_cast<double>(p.shape[0]);
    const double gain = p.shape.size() == 4 ? 2.0 : 1.0;
    NormalInit(dst, p.numel, static_cast<float>(std::sqrt(gain / fan_in)), seed, i);
  }
}

absl::Status Classifier::SetImages(const float* images, const int32_t* labels, int batch) {
  if (batch <= 0 || batch > options_.max_batch) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch size ", batch, " outside 1..", options_.max_batch));
  }
  int64_t labelled = 0;
  if (labels != nullptr) {
    for (int i = 0; i < batch; ++i) {
      if (labels[i] >= config_.num_classes) {
        return absl::InvalidArgumentError(absl::StrCat("label ", labels[i], " of sample ", i,
                                                       " outside 0..", config_.num_classes - 1,
                                                       " (check --image_classes)"));
      }
      if (labels[i] >= 0) ++labelled;
    }
  }
  B_ = batch;
  num_labelled_ = labelled;
  loss_ready_ = false;
  const int64_t S = config_.image_size, C = config_.image_channels;
  const size_t n = static_cast<size_t>(batch) * S * S * C;
  device_->CopyFromHost(acts_.images, images, n * sizeof(float));
  if (acts_.images_cd != acts_.images) {
    k::Convert(*device_, k::Flat(acts_.images_cd, options_.compute_dtype, n),
               k::Flat(acts_.images, n));
  }
  if (labels != nullptr) {
    device_->CopyFromHost(acts_.labels, labels, sizeof(int32_t) * batch);
  } else {
    device_->Memset(acts_.labels, 0xff,
                    sizeof(int32_t) * batch);  // all -1: no loss
  }
  return absl::OkStatus();
}

k::TensorView Classifier::Act(void* p, int size, int channels) const {
  return k::View(p, options_.compute_dtype, {B_, size, size, channels});
}

k::TensorView Classifier::ConvInput(int u) const {
  const ConvStage& s = stages_[u];
  return Act(u == 0 ? acts_.images_cd : acts_.act[u - 1], s.in_size, s.in);
}

void Classifier::Forward(int unit, ParamPtrs params) {
  if (unit == HeadUnit()) {
    HeadForward(params[unit]);
  } else {
    ConvForward(unit, params[unit]);
  }
}

void Classifier::Backward(int unit, ParamPtrs params, GradPtrs grads, float loss_scale) {
  if (unit == HeadUnit()) {
    HeadBackward(params[unit], grads[unit], loss_scale);
  } else {
    ConvBackward(unit, params[unit], grads[unit]);
  }
}

void Classifier::ConvForward(int u, void* params) {
  const ConvStage& s = stages_[u];
  const DType dt = options_.compute_dtype;
  const k::TensorView w = k::View(params, dt, {s.out, s.in, 3, 3});
  const k::TensorView b = k::Offset(k::View(params, dt, {s.out}), int64_t{s.out} * s.in * 9);
  const k::TensorView pre = Act(acts_.pre[u], s.out_size, s.out);
  k::Conv2dForward(*device_, pre, ConvInput(u), w, b, ConvParams(s.stride));
  k::SiluForward(*device_, Act(acts_.act[u], s.out_size, s.out), pre);
}

void Classifier::ConvBackward(int u, void* params, float* grads) {
  // On entry acts_.dact holds d(loss)/d(act[u]) (written by the unit above).
  const ConvStage& s = stages_[u];
  const DType dt = options_.compute_dtype;
  k::Device& d = *device_;
  const int64_t wn = int64_t{s.out} * s.in * 9;
  const k::TensorView w = k::View(params, dt, {s.out, s.in, 3, 3});
  const k::TensorView dpre = Act(acts_.dpre, s.out_size, s.out);
  d.Memset(acts_.dpre, 0, dpre.bytes());
  k::SiluBackward(d, dpre, Act(acts_.pre[u], s.out_size, s.out),
                  Act(acts_.dact, s.out_size, s.out));
  // dx overwrites dact with d(loss)/d(act[u-1]); conv 0 has no input gradient.
  const k::TensorView dx = u == 0 ? k::TensorView{} : Act(acts_.dact, s.in_size, s.in);
  k::Conv2dBackward(d, dx, k::View(grads, {s.out, s.in, 3, 3}), k::View(grads + wn, {s.out}), dpre,
                    ConvInput(u), w, ConvParams(s.stride, /*accumulate_dx=*/false));
}

void Classifier::HeadForward(void* params) {
  const ConvStage& last = stages_[kClassifierConvs - 1];
  const int64_t D = config_.width, K = config_.num_classes,
                N = int64_t{last.out_size} * last.out_size;
  const DType dt = options_.compute_dtype;
  k::Device& d = *device_;
  // Global average pool: the per-(B,C) sum over positions, then 1/N.
  const k::TensorView pooled = k::View(acts_.pooled, {B_, D});
  d.Memset(acts_.pooled, 0, pooled.bytes());
  k::AddChannelBiasBackward(d, pooled, k::View(acts_.act[kClassifierConvs - 1], dt, {B_, N, D}));
  k::Scale(d, pooled, 1.0f / static_cast<float>(N));
  const k::TensorView pooled_cd = k::View(acts_.pooled_cd, dt, {B_, D});
  if (acts_.pooled_cd != acts_.pooled) k::Convert(d, pooled_cd, pooled);
  const k::TensorView w = k::View(params, dt, {K, D});
  const k::TensorView b = k::Offset(k::View(params, dt, {K}), K * D);
  k::LinearForward(d, k::View(acts_.logits, {B_, K}), pooled_cd, w, b, {});
  k::SoftmaxCrossEntropyForward(d, k::View(acts_.losses, {B_}), k::View(acts_.probs, {B_, K}),
                                k::View(acts_.logits, {B_, K}), k::View(acts_.labels, {B_}));
  loss_ready_ = false;
}

void Classifier::HeadBackward(void* params, float* grads, float loss_scale) {
  const ConvStage& last = stages_[kClassifierConvs - 1];
  const int64_t D = config_.width, K = config_.num_classes,
                N = int64_t{last.out_size} * last.out_size;
  const DType dt = options_.compute_dtype;
  k::Device& d = *device_;
  const float dloss = num_labelled_ > 0 ? loss_scale / static_cast<float>(num_labelled_) : 0.0f;
  const k::TensorView dlogits = k::View(acts_.dlogits, dt, {B_, K});
  d.Memset(acts_.dlogits, 0, dlogits.bytes());
  k::SoftmaxCrossEntropyBackward(d, dlogits, k::View(acts_.probs, {B_, K}),
                                 k::View(acts_.labels, {B_}), dloss);
  const k::TensorView w = k::View(params, dt, {K, D});
  const k::TensorView dpooled = k::View(acts_.dpooled, dt, {B_, D});
  k::LinearBackward(d, dpooled, k::View(grads, {K, D}), k::View(grads + K * D, {K}), dlogits,
                    k::View(acts_.pooled_cd, dt, {B_, D}), w, {.accumulate_dx = false});
  // The pool's backward: every position receives dpooled / N.
  k::Scale(d, dpooled, 1.0f / static_cast<float>(N));
  const k::TensorView dact = k::View(acts_.dact, dt, {B_, N, D});
  d.Memset(acts_.dact, 0, dact.bytes());
  k::AddChannelBias(d, dact, dpooled);
}

double Classifier::Loss() {
  if (!loss_ready_) {
    device_->CopyToHost(host_losses_.data(), acts_.losses, sizeof(float) * B_);
    double sum = 0;
    for (int i = 0; i < B_; ++i) sum += host_losses_[i];
    loss_ = num_labelled_ > 0 ? sum / static_cast<double>(num_labelled_) : 0.0;
    loss_ready_ = true;
  }
  return loss_;
}

void Classifier::CopyFeatures(float* host) const {
  device_->CopyToHost(host, acts_.pooled, sizeof(float) * B_ * config_.width);
}

void Classifier::CopyLogits(float* host) const {
  device_->CopyToHost(host, acts_.logits, sizeof(float) * B_ * config_.num_classes);
}

double Classifier::FlopsPerImage() const {
  // Forward 2 FLOPs per multiply-add, backward twice the forward.
  return 6.0 * ClassifierForwardMacs(config_);
}

}  // namespace anvil
