// MlpModel: a second UnitModel, deliberately unlike the GPT, to prove the
// sharded runtime knows no model. Next-token prediction with
//   unit 0      embedding table (V, C)
//   unit 1..K   residual MLP blocks: x += W2 gelu(W1 ln(x) + b1) + b2
//   unit K+1    untied head: logits = x Wh^T + bh
// No positions, no attention, no unit dependencies; odd sizes (C = 13) make
// every unit's length indivisible by the world size.
#pragma once

#include <memory>
#include <vector>

#include "kernels/device.h"
#include "models/token_model.h"

namespace anvil::testing {

struct MlpConfig {
  int vocab = 29;
  int width = 13;
  int blocks = 3;
  int max_tokens = 64;  // B*T the arena holds
};

class MlpModel : public TokenModel {
 public:
  MlpModel(const MlpConfig& c, kernels::Device* device);
  ~MlpModel() override;
  const ParamLayout& layout() const override { return layout_; }
  std::vector<int> UnitDeps(int) const override { return {}; }
  void InitParams(float* host, uint64_t seed) const override;
  using TokenModel::SetBatch;
  absl::Status SetBatch(const int32_t* inputs, const int32_t* targets, int B, int T) override;
  DType compute_dtype() const override { return DType::kF32; }
  void Forward(int unit, ParamPtrs params) override;
  void Backward(int unit, ParamPtrs params, GradPtrs grads, float loss_scale) override;
  double Loss() override;
  LossTerms loss_terms() override {
    return {kernels::Flat(losses_, static_cast<size_t>(n_)), n_ > 0 ? 1.0 / n_ : 0.0};
  }
  int64_t NumTargets() const override { return n_; }
  double FlopsPerToken(int) const override { return 6.0 * static_cast<double>(layout_.total_numel()); }

 private:
  MlpConfig c_;
  kernels::Device* device_;
  ParamLayout layout_;
  int n_ = 0;  // tokens in the batch
  int32_t *inputs_, *targets_;
  std::vector<float*> x_;  // residual stream entering each block, and the final one
  std::vector<float*> ln_, mean_, rstd_, h_, g_;
  float *logits_, *probs_, *losses_, *dx_, *dh_, *dg_, *dln_, *dlogits_;
  std::vector<void*> allocs_;
};

}  // namespace anvil::testing
