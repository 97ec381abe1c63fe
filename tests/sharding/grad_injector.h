// GradInjector: a UnitModel that runs another one unchanged, except that on
// request its next backward of one unit adds a value (e.g. inf) to one
// element of that unit's gradient, as an overflowing fp16 backward would.
// Test code only: the engine has no hook for it.
#pragma once

#include <cstdint>
#include <vector>

#include "models/token_model.h"

namespace anvil::testing {

class GradInjector : public TokenModel {
 public:
  GradInjector(TokenModel* inner, kernels::Device* device) : inner_(inner), device_(device) {}

  // The next Backward(unit) adds `value` to element `index` of its gradient.
  void InjectOnce(int unit, size_t index, float value) {
    unit_ = unit;
    index_ = index;
    value_ = value;
  }

  const ParamLayout& layout() const override { return inner_->layout(); }
  std::vector<int> UnitDeps(int u) const override { return inner_->UnitDeps(u); }
  void InitParams(float* host, uint64_t seed) const override { inner_->InitParams(host, seed); }
  using TokenModel::SetBatch;
  absl::Status SetBatch(const int32_t* inputs, const int32_t* targets, int B, int T) override {
    return inner_->SetBatch(inputs, targets, B, T);
  }
  DType compute_dtype() const override { return inner_->compute_dtype(); }
  void Forward(int unit, ParamPtrs params) override { inner_->Forward(unit, params); }
  void Backward(int unit, ParamPtrs params, GradPtrs grads, float loss_scale) override {
    inner_->Backward(unit, params, grads, loss_scale);
    if (unit != unit_) return;
    float x;
    device_->CopyToHost(&x, grads[unit] + index_, sizeof(float));
    x += value_;
    device_->CopyFromHost(grads[unit] + index_, &x, sizeof(float));
    unit_ = -1;
  }
  double Loss() override { return inner_->Loss(); }
  LossTerms loss_terms() override { return inner_->loss_terms(); }
  int64_t NumTargets() const override { return inner_->NumTargets(); }
  double FlopsPerToken(int T) const override { return inner_->FlopsPerToken(T); }

 private:
  TokenModel* inner_;
  kernels::Device* device_;
  int unit_ = -1;
  size_t index_ = 0;
  float value_ = 0;
};

}  // namespace anvil::testing
