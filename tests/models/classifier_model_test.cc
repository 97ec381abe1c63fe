// Classifier model: layout (torch names, units), the spec's errors naming
// the flag, a finite-difference check of every tensor's gradient, features
// equal to the mean of the last activation (the pool) and logits equal to
// fc(features), batches read through the Batch interface, bf16 compute
// against fp32, and the activation-memory estimate.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/convert.h"
#include "kernels/device.h"
#include "models/classifier/classifier.h"
#include "models/classifier/classifier_spec.h"
#include "tests/models/finite_difference.h"
#include "tests/models/grad_compare.h"

namespace anvil {
namespace {

ClassifierConfig Tiny() {
  return ClassifierConfig{.image_size = 8, .image_channels = 1, .num_classes = 5, .width = 8};
}

struct Images {
  std::vector<float> x;
  std::vector<int32_t> y;
};
Images RandomImages(const ClassifierConfig& c, int B, uint32_t seed) {
  std::mt19937 rng(seed);
  Images im;
  im.x.resize(static_cast<size_t>(B) * c.image_size * c.image_size * c.image_channels);
  for (float& v : im.x) v = std::uniform_real_distribution<float>(-1.f, 1.f)(rng);
  for (int i = 0; i < B; ++i) im.y.push_back(static_cast<int32_t>(rng() % c.num_classes));
  return im;
}

TEST(ClassifierLayout, TorchNamesUnitsAndShapes) {
  auto device = kernels::MakeCpuDevice(1);
  const ClassifierConfig c{.image_size = 28, .image_channels = 1, .num_classes = 10, .width = 64};
  auto m = Classifier::Create(c, ClassifierOptions{2}, device.get());
  ASSERT_TRUE(m.ok()) << m.status();
  const ParamLayout& layout = (*m)->layout();
  ASSERT_EQ(layout.num_units(), 5);
  EXPECT_EQ(layout.units()[0].name, "convs.0");
  EXPECT_EQ(layout.units()[4].name, "head");
  EXPECT_EQ(layout.total_numel(), static_cast<size_t>(ClassifierParamCount(c)));
  auto shape = [&](const std::string& n) { return layout.params()[layout.Find(n)].shape; };
  EXPECT_EQ(shape("convs.0.weight"), (std::vector<int64_t>{16, 1, 3, 3}));
  EXPECT_EQ(shape("convs.1.weight"), (std::vector<int64_t>{32, 16, 3, 3}));
  EXPECT_EQ(shape("convs.2.weight"), (std::vector<int64_t>{32, 32, 3, 3}));
  EXPECT_EQ(shape("convs.3.weight"), (std::vector<int64_t>{64, 32, 3, 3}));
  EXPECT_EQ(shape("fc.weight"), (std::vector<int64_t>{10, 64}));
  EXPECT_FALSE(layout.params()[layout.Find("convs.3.bias")].weight_decay);
  const auto st = ClassifierStages(c);
  EXPECT_EQ(st[1].out_size, 14);
  EXPECT_EQ(st[3].out_size, 7);
  // 28x28x1: 28^2*16*9 + 14^2*32*16*9 + 14^2*32*32*9 + 7^2*64*32*9 + 64*10
  // MACs.
  const double macs =
      784.0 * 16 * 9 + 196.0 * 32 * 16 * 9 + 196.0 * 32 * 32 * 9 + 49.0 * 64 * 32 * 9 + 640;
  EXPECT_DOUBLE_EQ((*m)->FlopsPerImage(), 6 * macs);
  EXPECT_STREQ((*m)->work_per_sample().unit, "images");
}

TEST(ClassifierConfigErrors, NameTheFlag) {
  auto device = kernels::MakeCpuDevice(1);
  auto expect_error = [&](ClassifierConfig c, const std::string& flag) {
    auto m = Classifier::Create(c, ClassifierOptions{1}, device.get());
    ASSERT_FALSE(m.ok()) << flag;
    EXPECT_NE(m.status().message().find(flag), std::string::npos) << m.status();
  };
  ClassifierConfig c = Tiny();
  c.width = 10;
  expect_error(c, "--n_embd");
  c = Tiny();
  c.image_channels = 2;
  expect_error(c, "--image_channels");
  c = Tiny();
  c.num_classes = 1;
  expect_error(c, "--image_classes");
  c = Tiny();
  c.image_size = 0;
  expect_error(c, "--image_size");

  auto m = Classifier::Create(Tiny(), ClassifierOptions{2}, device.get());
  ASSERT_TRUE(m.ok());
  Images im = RandomImages(Tiny(), 2, 1);
  im.y[1] = 5;
  EXPECT_NE((*m)->SetImages(im.x.data(), im.y.data(), 2).message().find("label 5"),
            std::string::npos);
  EXPECT_NE((*m)->SetImages(im.x.data(), nullptr, 3).message().find("batch size 3"),
            std::string::npos);
  // Through a Batch: the wrong image shape names the tensor and the flags.
  Batch b;
  b.Set("images", BatchTensor{DType::kF32, {1, 7, 8, 1}, im.x.data()});
  b.Set("labels", BatchTensor{DType::kI32, {1}, im.y.data()});
  const absl::Status s = (*m)->SetBatch(b);
  EXPECT_NE(s.message().find("'images'"), std::string::npos) << s;
  EXPECT_NE(s.message().find("--image_size"), std::string::npos) << s;
  Batch tokens;
  tokens.Set("tokens", BatchTensor{DType::kI32, {1, 4}, im.y.data()});
  EXPECT_FALSE((*m)->SetBatch(tokens).ok());

  proto::TrainConfig tc;
  tc.mutable_model()->set_n_embd(64);
  tc.mutable_model()->set_image_size(28);
  tc.mutable_model()->set_image_channels(1);
  tc.mutable_model()->set_image_classes(10);
  tc.mutable_data()->set_image_pad(32);
  const absl::Status v = ClassifierSpec().validate(tc);
  EXPECT_NE(v.message().find("--image_pad"), std::string::npos) << v;
  tc.mutable_model()->set_image_size(32);
  EXPECT_TRUE(ClassifierSpec().validate(tc).ok());
}

// Central differences on the whole model against its analytic gradient, for
// a sample of elements of every tensor; one sample unlabelled (ignored).
TEST(ClassifierGradient, MatchesFiniteDifferences) {
  auto device = kernels::MakeCpuDevice(1);
  const ClassifierConfig c = Tiny();
  const int B = 3;
  auto m = Classifier::Create(c, ClassifierOptions{B}, device.get());
  ASSERT_TRUE(m.ok());
  Classifier& model = **m;
  std::vector<float> p(model.layout().total_numel()), g(p.size(), 0.f);
  model.InitParams(p.data(), 3);
  std::mt19937 rng(5);
  for (float& x : p) x += std::normal_distribution<float>(0.f, 0.1f)(rng);
  Images im = RandomImages(c, B, 9);
  im.y[2] = -1;
  ASSERT_TRUE(model.SetImages(im.x.data(), im.y.data(), B).ok());
  EXPECT_EQ(model.num_labelled(), 2);
  model.ForwardAll(p.data());
  model.BackwardAll(p.data(), g.data(), 1.0f);
  testing::FiniteDifferenceOptions o;
  o.per_tensor = 4;
  o.abs_tol = 1e-3;
  testing::ExpectGradientsMatchFiniteDifferences(model, p, g, rng, o);
}

// Features are the mean over positions of the last SiLU activation, logits
// fc(features); recomputed here in double from the model's own parameters.
TEST(ClassifierFeatures, PoolAndHeadByHand) {
  auto device = kernels::MakeCpuDevice(1);
  const ClassifierConfig c = Tiny();
  const int B = 2, D = c.width, K = c.num_classes;
  auto m = Classifier::Create(c, ClassifierOptions{B}, device.get());
  ASSERT_TRUE(m.ok());
  Classifier& model = **m;
  std::vector<float> p(model.layout().total_numel());
  model.InitParams(p.data(), 4);
  const Images im = RandomImages(c, B, 2);
  ASSERT_TRUE(model.SetImages(im.x.data(), nullptr, B).ok());
  model.ForwardAll(p.data());
  EXPECT_EQ(model.Loss(), 0.0);  // no labels: no loss
  std::vector<float> f(B * D), logits(B * K);
  model.CopyFeatures(f.data());
  model.CopyLogits(logits.data());
  // A direct convolution stack in double.
  std::vector<double> x(im.x.begin(), im.x.end());
  const auto stages = ClassifierStages(c);
  for (int u = 0; u < kClassifierConvs; ++u) {
    const ConvStage& s = stages[u];
    const ParamInfo& wi =
        model.layout().params()[model.layout().Find("convs." + std::to_string(u) + ".weight")];
    const float* w = p.data() + wi.offset;
    const float* bias = w + wi.numel;
    std::vector<double> y(static_cast<size_t>(B) * s.out_size * s.out_size * s.out);
    for (int b = 0; b < B; ++b)
      for (int oy = 0; oy < s.out_size; ++oy)
        for (int ox = 0; ox < s.out_size; ++ox)
          for (int oc = 0; oc < s.out; ++oc) {
            double acc = bias[oc];
            for (int ky = 0; ky < 3; ++ky)
              for (int kx = 0; kx < 3; ++kx) {
                const int iy = oy * s.stride - 1 + ky, ix = ox * s.stride - 1 + kx;
                if (iy < 0 || ix < 0 || iy >= s.in_size || ix >= s.in_size) continue;
                for (int ic = 0; ic < s.in; ++ic) {
                  acc +=
                      w[((oc * s.in + ic) * 3 + ky) * 3 + kx] *
                      x[((static_cast<size_t>(b) * s.in_size + iy) * s.in_size + ix) * s.in + ic];
                }
              }
            y[((static_cast<size_t>(b) * s.out_size + oy) * s.out_size + ox) * s.out + oc] =
                acc / (1.0 + std::exp(-acc));
          }
    x = std::move(y);
  }
  const int N = stages[3].out_size * stages[3].out_size;
  const ParamInfo& fw = model.layout().params()[model.layout().Find("fc.weight")];
  for (int b = 0; b < B; ++b) {
    std::vector<double> feat(D, 0.0);
    for (int n = 0; n < N; ++n)
      for (int d = 0; d < D; ++d) feat[d] += x[(static_cast<size_t>(b) * N + n) * D + d] / N;
    for (int d = 0; d < D; ++d) EXPECT_NEAR(f[b * D + d], feat[d], 1e-4) << b << "," << d;
    for (int k = 0; k < K; ++k) {
      double z = p[fw.offset + fw.numel + k];
      for (int d = 0; d < D; ++d) z += p[fw.offset + k * D + d] * feat[d];
      EXPECT_NEAR(logits[b * K + k], z, 1e-4) << b << "," << k;
    }
  }
}

struct Result {
  double loss;
  std::vector<float> grads;
  size_t arena;
};
Result RunOnce(const ClassifierConfig& c, ClassifierOptions o, const std::vector<float>& p,
               const Images& im, int B, int threads = 2) {
  auto device = kernels::MakeCpuDevice(threads);
  auto m = Classifier::Create(c, o, device.get());
  EXPECT_TRUE(m.ok()) << m.status();
  Classifier& model = **m;
  std::vector<float> g(p.size(), 0.f);
  Batch b;
  b.Set("images",
        BatchTensor{DType::kF32, {B, c.image_size, c.image_size, c.image_channels}, im.x.data()});
  b.Set("labels", BatchTensor{DType::kI32, {B}, im.y.data()});
  EXPECT_TRUE(model.SetBatch(b).ok());
  if (o.compute_dtype == DType::kBF16) {
    std::vector<uint16_t> pb(p.size());
    kernels::ConvertF32ToBF16(pb.data(), p.data(), p.size());
    model.ForwardAll(pb.data());
    model.BackwardAll(pb.data(), g.data(), 1.0f);
  } else {
    std::vector<float> pc = p;
    model.ForwardAll(pc.data());
    model.BackwardAll(pc.data(), g.data(), 1.0f);
  }
  return {model.Loss(), g, model.arena_bytes()};
}

TEST(ClassifierBf16, TracksFp32LossAndGradients) {
  const ClassifierConfig c{.image_size = 28, .image_channels = 1, .num_classes = 10, .width = 64};
  const int B = 8;
  auto dev = kernels::MakeCpuDevice(1);
  auto m = Classifier::Create(c, ClassifierOptions{B}, dev.get());
  std::vector<float> p((*m)->layout().total_numel());
  (*m)->InitParams(p.data(), 11);
  const Images im = RandomImages(c, B, 5);
  const Result f32 = RunOnce(c, ClassifierOptions{B}, p, im, B);
  const Result bf16 = RunOnce(c, ClassifierOptions{B, DType::kBF16}, p, im, B);
  EXPECT_NEAR(bf16.loss, f32.loss, 0.01 * f32.loss);
  const testing::GradAgreement a = testing::CompareGrads(f32.grads, bf16.grads);
  std::printf("classifier bf16 vs fp32: loss %.6f vs %.6f, gradient cosine %.6f, norm ratio %.4f\n",
              bf16.loss, f32.loss, a.cosine, a.norm_ratio);
  EXPECT_GT(a.cosine, 0.99);
  EXPECT_NEAR(a.norm_ratio, 1.0, 0.05);
  EXPECT_LT(bf16.arena, f32.arena * 4 / 5);
  const Result f32_1t = RunOnce(c, ClassifierOptions{B}, p, im, B, 1);
  EXPECT_EQ(f32_1t.loss, f32.loss);
}

TEST(ClassifierArena, EstimateBoundsTheArenaClosely) {
  auto dev = kernels::MakeCpuDevice(1);
  for (const ClassifierConfig& c :
       {Tiny(),
        ClassifierConfig{.image_size = 32, .image_channels = 3, .num_classes = 10, .width = 128}}) {
    auto m = Classifier::Create(c, ClassifierOptions{16}, dev.get());
    ASSERT_TRUE(m.ok());
    const double est = ClassifierActivationBytesEstimate(c, 16);
    const double got = static_cast<double>((*m)->arena_bytes());
    EXPECT_GE(est * 1.05, got) << c.width;
    EXPECT_LE(est, got * 1.10) << c.width;
  }
}

}  // namespace
}  // namespace anvil
