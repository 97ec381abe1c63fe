// DiT model: layout (models.py names, units, no cross-unit parameters),
// adaLN-Zero initialisation (a fresh DiT predicts 0), the host patch
// permutations, config and batch errors, a finite-difference check of
// whole-model gradients (adaLN made non-zero, fixed and learned positions),
// recomputation (bit-identical, less memory), bf16 against fp32, and the
// activation-memory estimate.
#include <cmath>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/convert.h"
#include "kernels/device.h"
#include "models/dit/dit.h"
#include "models/dit/dit_host.h"
#include "models/dit/dit_spec.h"
#include "models/model_registry.h"
#include "runtime/config/schema.h"
#include "tests/models/finite_difference.h"
#include "tests/models/grad_compare.h"

namespace anvil {
namespace {

DitConfig Tiny(bool learned_pos = false) {
  return DitConfig{.n_layer = 2,
                   .n_head = 2,
                   .n_embd = 16,
                   .patch_size = 2,
                   .image_size = 8,
                   .image_channels = 2,
                   .num_classes = 3,
                   .learned_pos = learned_pos,
                   .freq_dim = 16};
}

struct Data {
  std::vector<float> x, target;
  std::vector<int32_t> t, y;
};
Data RandomData(const DitConfig& c, int B, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.f, 1.f);
  const size_t px = static_cast<size_t>(B) * c.image_size * c.image_size * c.image_channels;
  Data d{std::vector<float>(px), std::vector<float>(px), std::vector<int32_t>(B),
         std::vector<int32_t>(B)};
  for (float& v : d.x) v = n(rng);
  for (float& v : d.target) v = n(rng);
  for (int i = 0; i < B; ++i) {
    d.t[i] = static_cast<int32_t>(rng() % 1000);
    d.y[i] = static_cast<int32_t>(rng() % (c.num_classes + 1));  // the null class too
  }
  return d;
}
DiffusionBatch AsBatch(const Data& d, int B) {
  return DiffusionBatch{d.x.data(), d.t.data(), d.y.data(), d.target.data(), B};
}

TEST(DitLayout, ModelsPyNamesAndUnits) {
  auto device = kernels::MakeCpuDevice(1);
  for (bool learned : {false, true}) {
    const DitConfig c = Tiny(learned);
    auto m = Dit::Create(c, DitOptions{2}, device.get());
    ASSERT_TRUE(m.ok()) << m.status();
    const ParamLayout& layout = (*m)->layout();
    ASSERT_EQ(layout.num_units(), c.n_layer + 2);
    EXPECT_EQ(layout.total_numel(), static_cast<size_t>(DitNumParams(c)));
    EXPECT_EQ(layout.units()[0].name, "embed");
    EXPECT_EQ(layout.units()[1].name, "blocks.0");
    EXPECT_EQ(layout.units().back().name, "final");
    for (int u = 0; u < layout.num_units(); ++u) EXPECT_TRUE((*m)->UnitDeps(u).empty());
    auto shape = [&](const std::string& n) {
      const int i = layout.Find(n);
      EXPECT_GE(i, 0) << n;
      return i >= 0 ? layout.params()[i].shape : std::vector<int64_t>{};
    };
    EXPECT_EQ(shape("x_embedder.proj.weight"), (std::vector<int64_t>{16, 2, 2, 2}));
    EXPECT_EQ(shape("y_embedder.embedding_table.weight"), (std::vector<int64_t>{4, 16}));
    EXPECT_EQ(shape("blocks.1.adaLN_modulation.1.weight"), (std::vector<int64_t>{96, 16}));
    EXPECT_EQ(shape("final_layer.linear.weight"), (std::vector<int64_t>{8, 16}));
    EXPECT_EQ(layout.Find("pos_embed") >= 0, learned);
  }
}

// The paper's S and B shapes (depth/hidden/heads 12/384/6 and 12/768/12) on
// its 32x32x4 latents with 1000 classes build, with the layout the count
// formula predicts (no learned sigma here: out channels = in channels).
TEST(DitLayout, PaperSAndBConfigsAreExpressible) {
  auto device = kernels::MakeCpuDevice(1);
  for (auto [L, C, NH] : {std::tuple{12, 384, 6}, std::tuple{12, 768, 12}}) {
    const DitConfig c{.n_layer = L,
                      .n_head = NH,
                      .n_embd = C,
                      .patch_size = 2,
                      .image_size = 32,
                      .image_channels = 4,
                      .num_classes = 1000};
    auto m = Dit::Create(c, DitOptions{1}, device.get());
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ((*m)->layout().total_numel(), static_cast<size_t>(DitNumParams(c)));
    std::printf("DiT %d/%d/%d p=2 32x32x4: %lld parameters, %.2f GFLOP per training image\n", L, C,
                NH, static_cast<long long>(DitNumParams(c)), DitFlopsPerImage(c) / 1e9);
  }
}

TEST(DitHost, PatchPermutationsRoundTripAndMatchModelsPy) {
  const DitConfig c = Tiny();
  const int B = 2, S = 8, C = 2, p = 2, G = 4;
  std::vector<float> img(B * S * S * C), rows(img.size()), back(img.size());
  for (size_t i = 0; i < img.size(); ++i) img[i] = static_cast<float>(i);
  DitToTokenOrder(c, B, img.data(), rows.data());
  DitFromTokenOrder(c, B, rows.data(), back.data());
  EXPECT_EQ(back, img);
  // Pixel (y=3, x=5, ch=1) of image 1: token (1, 2) of the 4x4 grid,
  // in-patch (i=1, j=1).
  const int px = ((1 * S + 3) * S + 5) * C + 1;
  const int token = (1 * G + 1) * G + 2;
  EXPECT_EQ(rows[token * 8 + (1 * p + 1) * C + 1], img[px]);  // (i, j, c)
  DitPatchify(c, B, img.data(), rows.data());
  EXPECT_EQ(rows[token * 8 + (1 * p + 1) * p + 1], img[px]);  // (c, i, j)
}

TEST(DitInit, AdaLnZeroPredictsZero) {
  auto device = kernels::MakeCpuDevice(1);
  const DitConfig c = Tiny();
  const int B = 3;
  auto m = Dit::Create(c, DitOptions{B}, device.get());
  ASSERT_TRUE(m.ok());
  std::vector<float> p((*m)->layout().total_numel());
  (*m)->InitParams(p.data(), 1);
  const Data d = RandomData(c, B, 4);
  ASSERT_TRUE((*m)->SetDiffusionBatch(AsBatch(d, B)).ok());
  (*m)->ForwardAll(p.data());
  std::vector<float> pred(d.x.size(), 1.f);
  (*m)->CopyPrediction(pred.data());
  double ms = 0;
  for (size_t i = 0; i < pred.size(); ++i) {
    EXPECT_EQ(pred[i], 0.f);
    ms += static_cast<double>(d.target[i]) * d.target[i];
  }
  EXPECT_NEAR((*m)->Loss(), ms / pred.size(), 1e-5);
}

TEST(DitSpec, RegisteredForDiffusionDataAndValidatesAgainstTheData) {
  auto spec = FindModel("dit");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ((*spec)->data, DataKind::kDiffusion);
  proto::TrainConfig c = DefaultTrainConfig();
  c.mutable_model()->set_kind("dit");
  EXPECT_TRUE((*spec)->validate(c).ok()) << (*spec)->validate(c);
  const DitConfig d = ToDitConfig(c.model());
  EXPECT_EQ((*spec)->param_count(c.model()), DitParamCount(d));
  EXPECT_EQ(d.norm_eps, 1e-6f);  // models.py's, whatever the GPT-oriented schema default
  auto error = [&](proto::TrainConfig bad) {
    return std::string((*spec)->validate(bad).message());
  };
  proto::TrainConfig bad = c;
  bad.mutable_data()->set_image_pad(32);
  EXPECT_EQ(error(bad), "--image_size (28) must equal --image_pad (32)");
  bad.mutable_model()->set_image_size(32);
  EXPECT_TRUE((*spec)->validate(bad).ok());
  bad = c;
  bad.mutable_diffusion()->set_num_classes(5);
  EXPECT_EQ(error(bad), "--image_classes (10) must equal --num_classes (5)");
  bad = c;
  bad.mutable_model()->set_norm_eps(1e-3f);
  EXPECT_EQ(error(bad), "--norm_eps is not supported by --model dit (its LayerNorms use 1e-6)");
  bad = c;
  bad.mutable_model()->set_patch_size(5);
  EXPECT_EQ(error(bad), "--patch_size (5) must divide --image_size (28)");
}

TEST(DitErrors, NameTheFlagOrTheValue) {
  auto device = kernels::MakeCpuDevice(1);
  auto expect_error = [&](DitConfig c, const std::string& want) {
    auto m = Dit::Create(c, DitOptions{1}, device.get());
    ASSERT_FALSE(m.ok()) << want;
    EXPECT_NE(m.status().message().find(want), std::string::npos) << m.status();
  };
  DitConfig c = Tiny();
  c.patch_size = 3;
  expect_error(c, "--patch_size (3) must divide --image_size (8)");
  c = Tiny();
  c.n_head = 3;
  c.n_embd = 20;
  expect_error(c, "--n_embd (20) must be divisible by --n_head (3)");
  c = Tiny();
  c.n_head = 3;
  c.n_embd = 6;
  expect_error(c, "divisible by 4");
  c = Tiny();
  c.num_classes = -1;
  expect_error(c, "--image_classes");
  auto m = Dit::Create(Tiny(), DitOptions{2}, device.get());
  ASSERT_TRUE(m.ok());
  Data d = RandomData(Tiny(), 2, 1);
  d.y[1] = 4;
  absl::Status s = (*m)->SetDiffusionBatch(AsBatch(d, 2));
  EXPECT_NE(s.message().find("label 4 of image 1 outside 0..3"), std::string::npos) << s;
  s = (*m)->SetDiffusionBatch(AsBatch(d, 3));
  EXPECT_NE(s.message().find("batch size 3 outside 1..2"), std::string::npos) << s;
}

// Parameters with every adaLN and the final linear non-zero (zero-init
// would hide the gradients of everything before them).
std::vector<float> LiveParams(const Dit& model, uint64_t seed, float noise) {
  std::vector<float> p(model.layout().total_numel());
  model.InitParams(p.data(), seed);
  std::mt19937 rng(static_cast<uint32_t>(seed) + 1);
  for (float& x : p) x += std::normal_distribution<float>(0.f, noise)(rng);
  return p;
}

TEST(DitGradient, MatchesFiniteDifferences) {
  for (bool learned : {false, true}) {
    auto device = kernels::MakeCpuDevice(1);
    const DitConfig c = Tiny(learned);
    const int B = 3;
    auto m = Dit::Create(c, DitOptions{B}, device.get());
    ASSERT_TRUE(m.ok());
    Dit& model = **m;
    std::vector<float> p = LiveParams(model, 3, 0.2f), g(p.size(), 0.f);
    const Data d = RandomData(c, B, 9);
    ASSERT_TRUE(model.SetDiffusionBatch(AsBatch(d, B)).ok());
    model.ForwardAll(p.data());
    model.BackwardAll(p.data(), g.data(), 1.0f);
    std::mt19937 rng(5);
    testing::ExpectGradientsMatchFiniteDifferences(model, p, g, rng, {},
                                                   learned ? "learned " : "");
  }
}

struct Result {
  double loss;
  std::vector<float> grads;
  size_t arena;
};
Result RunOnce(const DitConfig& c, DitOptions o, const std::vector<float>& p, const Data& d, int B,
               int threads = 2) {
  auto device = kernels::MakeCpuDevice(threads);
  auto m = Dit::Create(c, o, device.get());
  EXPECT_TRUE(m.ok()) << m.status();
  Dit& model = **m;
  std::vector<float> g(p.size(), 0.f);
  EXPECT_TRUE(model.SetDiffusionBatch(AsBatch(d, B)).ok());
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

DitConfig Small() {
  return DitConfig{.n_layer = 4,
                   .n_head = 4,
                   .n_embd = 64,
                   .patch_size = 2,
                   .image_size = 16,
                   .image_channels = 1,
                   .num_classes = 10};
}

TEST(DitRecompute, BitIdenticalGradientsWithLessMemory) {
  const DitConfig c = Small();
  const int B = 3;
  auto dev = kernels::MakeCpuDevice(1);
  auto m = Dit::Create(c, DitOptions{B}, dev.get());
  const std::vector<float> p = LiveParams(**m, 7, 0.02f);
  const Data d = RandomData(c, B, 3);
  for (DType dt : {DType::kF32, DType::kBF16}) {
    const Result keep = RunOnce(c, DitOptions{B, dt, false}, p, d, B);
    const Result redo = RunOnce(c, DitOptions{B, dt, true}, p, d, B);
    EXPECT_EQ(redo.loss, keep.loss) << DTypeName(dt);
    EXPECT_EQ(redo.grads, keep.grads) << DTypeName(dt);
    EXPECT_LT(redo.arena, keep.arena * 3 / 4) << DTypeName(dt);
  }
}

TEST(DitBf16, TracksFp32LossAndGradients) {
  const DitConfig c = Small();
  const int B = 4;
  auto dev = kernels::MakeCpuDevice(1);
  auto m = Dit::Create(c, DitOptions{B}, dev.get());
  const std::vector<float> p = LiveParams(**m, 11, 0.02f);
  const Data d = RandomData(c, B, 5);
  const Result f32 = RunOnce(c, DitOptions{B}, p, d, B);
  const Result bf16 = RunOnce(c, DitOptions{B, DType::kBF16}, p, d, B);
  EXPECT_NEAR(bf16.loss, f32.loss, 0.01 * f32.loss);
  const testing::GradAgreement a = testing::CompareGrads(f32.grads, bf16.grads);
  std::printf("dit bf16 vs fp32: loss %.6f vs %.6f, gradient cosine %.6f, norm ratio %.4f\n",
              bf16.loss, f32.loss, a.cosine, a.norm_ratio);
  EXPECT_GT(a.cosine, 0.995);
  EXPECT_NEAR(a.norm_ratio, 1.0, 0.03);
  EXPECT_LT(bf16.arena, f32.arena * 4 / 5);
  const Result bf16_1t = RunOnce(c, DitOptions{B, DType::kBF16}, p, d, B, 1);
  testing::ExpectSameStepAtAnotherThreadCount("dit bf16", bf16.loss, bf16_1t.loss, bf16.grads,
                                              bf16_1t.grads);
}

TEST(DitArena, EstimateBoundsTheArenaClosely) {
  for (const DitConfig& c : {Tiny(), Small()}) {
    auto dev = kernels::MakeCpuDevice(1);
    auto m = Dit::Create(c, DitOptions{8}, dev.get());
    ASSERT_TRUE(m.ok());
    const double est = DitActivationBytesEstimate(c, 8);
    const double got = static_cast<double>((*m)->arena_bytes());
    std::printf("dit arena %.0f bytes, estimate %.0f\n", got, est);
    EXPECT_GE(est, got);
    EXPECT_LT(est, 1.25 * got);
  }
}

}  // namespace
}  // namespace anvil
