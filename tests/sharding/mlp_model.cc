#include "tests/sharding/mlp_model.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "kernels/ops/activation.h"
#include "kernels/ops/elementwise.h"
#include "kernels/ops/embedding.h"
#include "kernels/ops/linear.h"
#include "kernels/ops/loss.h"
#include "kernels/ops/norm.h"
#include "models/init_rng.h"

namespace anvil::testing {

MlpModel::MlpModel(const MlpConfig& c, kernels::Device* device) : c_(c), device_(device) {
  const int64_t V = c.vocab, C = c.width;
  layout_.BeginUnit("embed");
  layout_.Add("embed.weight", {V, C}, true);
  for (int b = 0; b < c.blocks; ++b) {
    layout_.BeginUnit(absl::StrCat("block.", b));
    const std::string p = absl::StrCat("block.", b, ".");
    layout_.Add(p + "ln.weight", {C}, false);
    layout_.Add(p + "ln.bias", {C}, false);
    layout_.Add(p + "fc1.weight", {2 * C, C}, true);
    layout_.Add(p + "fc1.bias", {2 * C}, false);
    layout_.Add(p + "fc2.weight", {C, 2 * C}, true);
    layout_.Add(p + "fc2.bias", {C}, false);
  }
  layout_.BeginUnit("head");
  layout_.Add("head.weight", {V, C}, true);
  layout_.Add("head.bias", {V}, false);
  const size_t N = c.max_tokens;
  auto alloc = [&](size_t floats) {
    void* p = device_->Alloc(floats * sizeof(float));
    device_->Memset(p, 0, floats * sizeof(float));
    allocs_.push_back(p);
    return static_cast<float*>(p);
  };
  inputs_ = reinterpret_cast<int32_t*>(alloc(N));
  targets_ = reinterpret_cast<int32_t*>(alloc(N));
  for (int b = 0; b <= c.blocks; ++b) x_.push_back(alloc(N * C));
  for (int b = 0; b < c.blocks; ++b) {
    ln_.push_back(alloc(N * C));
    mean_.push_back(alloc(N));
    rstd_.push_back(alloc(N));
    h_.push_back(alloc(N * 2 * C));
    g_.push_back(alloc(N * 2 * C));
  }
  logits_ = alloc(N * V);
  probs_ = alloc(N * V);
  losses_ = alloc(N);
  dx_ = alloc(N * C);
  dh_ = alloc(N * 2 * C);
  dg_ = alloc(N * 2 * C);
  dln_ = alloc(N * C);
  dlogits_ = alloc(N * V);
}

MlpModel::~MlpModel() {
  for (void* p : allocs_) device_->Free(p);
}

void MlpModel::InitParams(float* host, uint64_t seed) const {
  for (size_t i = 0; i < layout_.params().size(); ++i) {
    const ParamInfo& p = layout_.params()[i];
    NormalInit(host + p.offset, p.numel, p.shape.size() == 2 ? 0.3f : 0.05f, seed, i);
    if (p.name.ends_with("ln.weight")) {
      for (size_t k = 0; k < p.numel; ++k) host[p.offset + k] += 1.0f;
    }
  }
}

absl::Status MlpModel::SetBatch(const int32_t* inputs, const int32_t* targets, int B, int T) {
  n_ = B * T;
  if (n_ > c_.max_tokens) return absl::InvalidArgumentError("batch too large");
  device_->CopyFromHost(inputs_, inputs, sizeof(int32_t) * n_);
  device_->CopyFromHost(targets_, targets, sizeof(int32_t) * n_);
  return absl::OkStatus();
}

void MlpModel::Forward(int unit, ParamPtrs pp) {
  namespace k = kernels;
  const int64_t C = c_.width, V = c_.vocab, N = n_;
  k::Device& d = *device_;
  auto F = [](const float* p, std::initializer_list<int64_t> shape) { return k::View(p, shape); };
  if (unit == 0) {
    k::EmbeddingForward(d, F(x_[0], {N, C}), k::View(inputs_, {N}),
                        F(static_cast<float*>(pp[0]), {V, C}), {});
  } else if (unit <= c_.blocks) {
    const int b = unit - 1;
    const float* w = static_cast<float*>(pp[unit]);
    const float *lnw = w, *lnb = w + C, *w1 = lnb + C, *b1 = w1 + 2 * C * C, *w2 = b1 + 2 * C,
                *b2 = w2 + 2 * C * C;
    k::LayerNormForward(d, F(ln_[b], {N, C}), F(mean_[b], {N}), F(rstd_[b], {N}), F(x_[b], {N, C}),
                        F(lnw, {C}), F(lnb, {C}));
    k::LinearForward(d, F(h_[b], {N, 2 * C}), F(ln_[b], {N, C}), F(w1, {2 * C, C}), F(b1, {2 * C}));
    k::GeluForward(d, F(g_[b], {N * 2 * C}), F(h_[b], {N * 2 * C}));
    k::LinearForward(d, F(x_[b + 1], {N, C}), F(g_[b], {N, 2 * C}), F(w2, {C, 2 * C}), F(b2, {C}));
    k::Accumulate(d, F(x_[b + 1], {N * C}), F(x_[b], {N * C}));
  } else {
    const float* w = static_cast<float*>(pp[unit]);
    k::LinearForward(d, F(logits_, {N, V}), F(x_[c_.blocks], {N, C}), F(w, {V, C}),
                     F(w + V * C, {V}));
    k::SoftmaxCrossEntropyForward(d, F(losses_, {N}), F(probs_, {N, V}), F(logits_, {N, V}),
                                  k::View(targets_, {N}));
  }
}

void MlpModel::Backward(int unit, ParamPtrs pp, GradPtrs g, float loss_scale) {
  namespace k = kernels;
  const int64_t C = c_.width, V = c_.vocab, N = n_;
  k::Device& d = *device_;
  auto F = [](const float* p, std::initializer_list<int64_t> shape) { return k::View(p, shape); };
  if (unit == c_.blocks + 1) {
    const float* w = static_cast<float*>(pp[unit]);
    d.Memset(dlogits_, 0, sizeof(float) * N * V);
    k::SoftmaxCrossEntropyBackward(d, F(dlogits_, {N, V}), F(probs_, {N, V}), k::View(targets_, {N}),
                                   loss_scale / static_cast<float>(n_));
    k::LinearBackward(d, F(dx_, {N, C}), F(g[unit], {V, C}), F(g[unit] + V * C, {V}),
                      F(dlogits_, {N, V}), F(x_[c_.blocks], {N, C}), F(w, {V, C}),
                      {.accumulate_dx = false});
  } else if (unit >= 1) {
    const int b = unit - 1;
    const float* w = static_cast<float*>(pp[unit]);
    const float *lnw = w, *w1 = w + 2 * C, *w2 = w1 + 2 * C * C + 2 * C;
    float *gw = g[unit], *glnw = gw, *glnb = gw + C, *gw1 = glnb + C, *gb1 = gw1 + 2 * C * C,
          *gw2 = gb1 + 2 * C, *gb2 = gw2 + 2 * C * C;
    k::LinearBackward(d, F(dg_, {N, 2 * C}), F(gw2, {C, 2 * C}), F(gb2, {C}), F(dx_, {N, C}),
                      F(g_[b], {N, 2 * C}), F(w2, {C, 2 * C}), {.accumulate_dx = false});
    d.Memset(dh_, 0, sizeof(float) * N * C * 2);
    k::GeluBackward(d, F(dh_, {N * 2 * C}), F(h_[b], {N * 2 * C}), F(dg_, {N * 2 * C}));
    k::LinearBackward(d, F(dln_, {N, C}), F(gw1, {2 * C, C}), F(gb1, {2 * C}), F(dh_, {N, 2 * C}),
                      F(ln_[b], {N, C}), F(w1, {2 * C, C}), {.accumulate_dx = false});
    k::LayerNormBackward(d, F(dx_, {N, C}), F(glnw, {C}), F(glnb, {C}), F(dln_, {N, C}),
                         F(x_[b], {N, C}), F(lnw, {C}), F(mean_[b], {N}), F(rstd_[b], {N}));
  } else {
    k::EmbeddingBackward(d, F(g[0], {V, C}), {}, F(dx_, {N, C}), k::View(inputs_, {N}));
  }
}

double MlpModel::Loss() {
  std::vector<float> l(n_);
  device_->CopyToHost(l.data(), losses_, sizeof(float) * n_);
  double s = 0;
  for (float x : l) s += x;
  return s / n_;
}

}  // namespace anvil::testing
