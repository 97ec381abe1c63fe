#include "tests/sharding/mlp_model.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "models/init_rng.h"

namespace anvil::testing {

MlpModel::MlpModel(const MlpConfig& c, kernels::Backend* backend) : c_(c), backend_(backend) {
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
    void* p = backend_->Alloc(floats * sizeof(float));
    backend_->Memset(p, 0, floats * sizeof(float));
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
  zpos_ = alloc(N * C);
  dpos_ = alloc(N * C);
}

MlpModel::~MlpModel() {
  for (void* p : allocs_) backend_->Free(p);
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
  backend_->CopyFromHost(inputs_, inputs, sizeof(int32_t) * n_);
  backend_->CopyFromHost(targets_, targets, sizeof(int32_t) * n_);
  return absl::OkStatus();
}

void MlpModel::Forward(int unit, UnitPtrs p) {
  const int C = c_.width, V = c_.vocab;
  kernels::Backend& k = *backend_;
  if (unit == 0) {
    // Embedding lookup via the encoder kernel with a zero position table.
    k.EncoderForward(x_[0], inputs_, p[0], zpos_, 1, n_, C);
  } else if (unit <= c_.blocks) {
    const int b = unit - 1;
    float* w = p[unit];
    const float *lnw = w, *lnb = w + C, *w1 = lnb + C, *b1 = w1 + 2 * C * C, *w2 = b1 + 2 * C,
                *b2 = w2 + 2 * C * C;
    k.LayerNormForward(ln_[b], mean_[b], rstd_[b], x_[b], lnw, lnb, n_, C);
    k.MatmulForward(h_[b], ln_[b], w1, b1, n_, C, 2 * C);
    k.GeluForward(g_[b], h_[b], static_cast<size_t>(n_) * 2 * C);
    k.MatmulForward(x_[b + 1], g_[b], w2, b2, n_, 2 * C, C);
    k.Accumulate(x_[b + 1], x_[b], static_cast<size_t>(n_) * C);
  } else {
    float* w = p[unit];
    k.MatmulForward(logits_, x_[c_.blocks], w, w + V * C, n_, C, V);
    k.SoftmaxCrossEntropyForward(losses_, probs_, logits_, targets_, n_, V);
  }
}

void MlpModel::Backward(int unit, UnitPtrs p, UnitPtrs g, float loss_scale) {
  const int C = c_.width, V = c_.vocab;
  const size_t NC = static_cast<size_t>(n_) * C;
  kernels::Backend& k = *backend_;
  if (unit == c_.blocks + 1) {
    k.Memset(dlogits_, 0, sizeof(float) * n_ * V);
    k.SoftmaxCrossEntropyBackward(dlogits_, probs_, targets_, loss_scale / n_, n_, V);
    k.Memset(dx_, 0, sizeof(float) * NC);
    k.MatmulBackward(dx_, g[unit], g[unit] + V * C, dlogits_, x_[c_.blocks], p[unit], n_, C, V);
  } else if (unit >= 1) {
    const int b = unit - 1;
    const float *w = p[unit], *lnw = w, *w1 = w + 2 * C, *w2 = w1 + 2 * C * C + 2 * C;
    float *gw = g[unit], *glnw = gw, *glnb = gw + C, *gw1 = glnb + C, *gb1 = gw1 + 2 * C * C,
          *gw2 = gb1 + 2 * C, *gb2 = gw2 + 2 * C * C;
    k.Memset(dg_, 0, sizeof(float) * NC * 2);
    k.MatmulBackward(dg_, gw2, gb2, dx_, g_[b], w2, n_, 2 * C, C);
    k.Memset(dh_, 0, sizeof(float) * NC * 2);
    k.GeluBackward(dh_, h_[b], dg_, NC * 2);
    k.Memset(dln_, 0, sizeof(float) * NC);
    k.MatmulBackward(dln_, gw1, gb1, dh_, ln_[b], w1, n_, C, 2 * C);
    k.LayerNormBackward(dx_, glnw, glnb, dln_, x_[b], lnw, mean_[b], rstd_[b], n_, C);
  } else {
    k.EncoderBackward(g[0], dpos_, dx_, inputs_, 1, n_, C);  // dpos_ is discarded
  }
}

double MlpModel::Loss() {
  std::vector<float> l(n_);
  backend_->CopyToHost(l.data(), losses_, sizeof(float) * n_);
  double s = 0;
  for (float x : l) s += x;
  return s / n_;
}

}  // namespace anvil::testing
