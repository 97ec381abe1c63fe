// Parity with PyTorch: the tiny Llama in llama_reference.bin (written by
// make_llama_reference.py in float64; GQA, untied head) must be reproduced
// by the C++ model in fp32: logits, loss, every gradient (max abs error
// <= 1e-4 x max |ref|), the losses of 10 AdamW steps with clipping (<= 1e-4
// relative) and the parameters after them.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/device.h"
#include "kernels/ops/optim.h"
#include "models/llama/llama.h"
#include "runtime/optim/adamw.h"
#include "tests/models/reference_file.h"

namespace anvil {
namespace {

using testing::RefTensor;

class LlamaParityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ref = testing::ReadReferenceFile(ANVIL_TEST_DATA_DIR "/llama_reference.bin");
    ASSERT_TRUE(ref.ok()) << ref.status();
    ref_ = std::move(*ref);
    const auto& c = ref_.at("config").i;
    const auto& cf = ref_.at("config_f").f;
    config_ = LlamaConfig{.n_layer = c[0], .n_head = c[1], .n_kv_head = c[2], .n_embd = c[3],
                          .ffn_hidden = c[4], .vocab_size = c[5], .max_seq_len = c[6],
                          .rope_theta = cf[0], .norm_eps = cf[1], .tie_embeddings = c[7] != 0};
    B_ = c[8];
    T_ = c[9];
    device_ = kernels::MakeCpuDevice(2);
    auto m = Llama::Create(config_, LlamaOptions{B_, T_}, device_.get());
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = std::move(*m);
    const ParamLayout& layout = model_->layout();
    initial_.assign(layout.total_numel(), 0.f);
    for (const ParamInfo& p : layout.params()) {
      const RefTensor& t = ref_.at("param/" + p.name);
      ASSERT_EQ(t.f.size(), p.numel) << p.name;
      ASSERT_EQ(t.shape, p.shape) << p.name;
      std::copy(t.f.begin(), t.f.end(), initial_.begin() + p.offset);
    }
    ASSERT_TRUE(model_->SetBatch(ref_.at("tokens").i.data(), ref_.at("targets").i.data(), B_, T_).ok());
  }

  // max |a - ref| <= tol * max |ref|; returns the ratio max err / max |ref|.
  static double ExpectClose(const float* a, const std::vector<float>& ref, double tol,
                            const std::string& what) {
    double max_ref = 0, max_err = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      max_ref = std::max(max_ref, std::fabs(static_cast<double>(ref[i])));
      max_err = std::max(max_err, std::fabs(static_cast<double>(a[i]) - ref[i]));
    }
    EXPECT_LE(max_err, tol * max_ref) << what << ": max abs error " << max_err
                                      << " vs max |ref| " << max_ref;
    return max_err / max_ref;
  }

  std::map<std::string, RefTensor> ref_;
  LlamaConfig config_;
  int B_ = 0, T_ = 0;
  std::unique_ptr<kernels::Device> device_;
  std::unique_ptr<Llama> model_;
  std::vector<float> initial_;
};

TEST_F(LlamaParityTest, LogitsLossAndEveryGradient) {
  std::vector<float> params = initial_;
  std::vector<float> grads(params.size(), 0.f);
  model_->ForwardAll(params.data());
  const double logits_err = ExpectClose(model_->logits(), ref_.at("logits").f, 1e-4, "logits");
  const double ref_loss = ref_.at("loss").f[0];
  EXPECT_NEAR(model_->Loss(), ref_loss, 1e-4 * ref_loss);
  EXPECT_EQ(model_->NumTargets(), B_ * T_ - 1);  // one target is ignored
  model_->BackwardAll(params.data(), grads.data(), 1.0f);
  double worst_grad = 0;
  for (const ParamInfo& p : model_->layout().params()) {
    worst_grad = std::max(worst_grad, ExpectClose(grads.data() + p.offset,
                                                  ref_.at("grad/" + p.name).f, 1e-4,
                                                  "grad " + p.name));
  }
  std::printf("llama parity: logits max err / max|ref| %.3g, loss rel err %.3g, "
              "worst gradient max err / max|ref| %.3g\n",
              logits_err, std::fabs(model_->Loss() - ref_loss) / ref_loss, worst_grad);
}

TEST_F(LlamaParityTest, TenAdamWStepsWithClipping) {
  const auto& h = ref_.at("adamw/hparams").f;
  const float lr = h[0], clip = h[5];
  AdamWConfig ac{h[1], h[2], h[3], h[4]};
  const size_t n = initial_.size();
  std::vector<float> params = initial_, grads(n), m(n, 0.f), v(n, 0.f);
  AdamW opt(device_.get(), model_->layout(), 0, n, ac);
  const auto& ref_losses = ref_.at("adamw/losses").f;
  double worst_loss = 0;
  for (size_t step = 0; step < ref_losses.size(); ++step) {
    std::fill(grads.begin(), grads.end(), 0.f);
    model_->ForwardAll(params.data());
    const double loss = model_->Loss();
    EXPECT_NEAR(loss, ref_losses[step], 1e-4 * std::fabs(ref_losses[step])) << "step " << step;
    worst_loss = std::max(worst_loss, std::fabs(loss - ref_losses[step]) / std::fabs(ref_losses[step]));
    model_->BackwardAll(params.data(), grads.data(), 1.0f);
    const double norm = std::sqrt(kernels::SquaredNorm(*device_, kernels::Flat(grads.data(), n)));
    const float scale = norm > clip ? static_cast<float>(clip / (norm + 1e-6)) : 1.0f;
    opt.Step(params.data(), grads.data(), m.data(), v.data(), lr, scale);
  }
  // The final parameters get a looser bound than the losses, as in the GPT
  // parity test: AdamW divides each element's gradient by its own running
  // RMS, so elements whose gradient is ~0 turn fp32 rounding into O(lr) steps.
  double worst_param = 0;
  for (const ParamInfo& p : model_->layout().params()) {
    worst_param = std::max(worst_param, ExpectClose(params.data() + p.offset,
                                                    ref_.at("adamw/final/" + p.name).f, 2e-3,
                                                    "final " + p.name));
  }
  std::printf("llama parity: 10 AdamW steps, worst loss rel err %.3g, worst final param "
              "max err / max|ref| %.3g\n", worst_loss, worst_param);
}

}  // namespace
}  // namespace anvil
