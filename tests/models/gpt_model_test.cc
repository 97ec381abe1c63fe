// GPT model: layout invariants, initialisation, config errors, a
// finite-difference check of whole-model gradients, activation
// recomputation (bit-identical, less memory) and bf16 compute against fp32.
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/convert.h"
#include "kernels/device.h"
#include "models/gpt/gpt.h"
#include "tests/models/finite_difference.h"
#include "tests/models/grad_compare.h"

namespace anvil {
namespace {

GptConfig Tiny() { return GptConfig{2, 2, 16, 8, 32}; }

TEST(GptLayout, UnitsAreContiguousAndCoverTheBuffer) {
  auto device = kernels::MakeCpuDevice(1);
  const GptConfig c{3, 2, 16, 8, 32};
  auto m = Gpt::Create(c, GptOptions{2, 8}, device.get());
  ASSERT_TRUE(m.ok());
  const ParamLayout& layout = (*m)->layout();
  ASSERT_EQ(layout.num_units(), 2 * c.n_layer + 2);
  EXPECT_EQ(layout.total_numel(), static_cast<size_t>(GptNumParams(c)));
  size_t expect = 0;
  for (const UnitInfo& u : layout.units()) {
    EXPECT_EQ(u.offset, expect) << u.name;
    expect += u.numel;
  }
  EXPECT_EQ(expect, layout.total_numel());
  for (const ParamInfo& p : layout.params()) {
    const UnitInfo& u = layout.units()[p.unit];
    EXPECT_GE(p.offset, u.offset);
    EXPECT_LE(p.offset + p.numel, u.offset + u.numel) << p.name;
  }
  EXPECT_EQ(layout.units()[1].name, "h.0.attn");
  EXPECT_EQ(layout.units()[2].name, "h.0.mlp");
  EXPECT_EQ(layout.units().back().name, "head");
  EXPECT_EQ((*m)->UnitDeps(2 * c.n_layer + 1), std::vector<int>{0});
  EXPECT_GE(layout.Find("h.2.mlp.c_proj.bias"), 0);
}

TEST(GptInit, Gpt2Statistics) {
  auto device = kernels::MakeCpuDevice(1);
  const GptConfig c{4, 4, 64, 32, 256};
  auto m = Gpt::Create(c, GptOptions{1, 32}, device.get());
  ASSERT_TRUE(m.ok());
  const ParamLayout& layout = (*m)->layout();
  std::vector<float> p(layout.total_numel()), q(layout.total_numel());
  (*m)->InitParams(p.data(), 7);
  (*m)->InitParams(q.data(), 7);
  EXPECT_EQ(p, q);  // deterministic in the seed
  (*m)->InitParams(q.data(), 8);
  EXPECT_NE(p, q);
  auto stddev = [&](const std::string& name) {
    const ParamInfo& info = layout.params()[layout.Find(name)];
    double s = 0, s2 = 0;
    for (size_t i = 0; i < info.numel; ++i) {
      s += p[info.offset + i];
      s2 += p[info.offset + i] * p[info.offset + i];
    }
    const double mean = s / info.numel;
    return std::sqrt(s2 / info.numel - mean * mean);
  };
  EXPECT_NEAR(stddev("wte.weight"), 0.02, 0.001);
  EXPECT_NEAR(stddev("h.0.mlp.c_fc.weight"), 0.02, 0.001);
  EXPECT_NEAR(stddev("h.1.attn.c_proj.weight"), 0.02 / std::sqrt(8.0), 0.0008);
  const ParamInfo& ln = layout.params()[layout.Find("h.3.ln_2.weight")];
  EXPECT_EQ(p[ln.offset], 1.0f);
  const ParamInfo& bias = layout.params()[layout.Find("h.3.mlp.c_fc.bias")];
  EXPECT_EQ(p[bias.offset + 5], 0.0f);
}

TEST(GptConfigErrors, NameTheField) {
  auto device = kernels::MakeCpuDevice(1);
  auto bad_heads = Gpt::Create(GptConfig{2, 3, 16, 8, 32}, GptOptions{1, 8}, device.get());
  ASSERT_FALSE(bad_heads.ok());
  EXPECT_NE(bad_heads.status().message().find("--n_head"), std::string::npos);
  auto long_seq = Gpt::Create(Tiny(), GptOptions{1, 9}, device.get());
  ASSERT_FALSE(long_seq.ok());
  EXPECT_NE(long_seq.status().message().find("--seq_len"), std::string::npos);
  auto zero_layers = Gpt::Create(GptConfig{0, 2, 16, 8, 32}, GptOptions{1, 8}, device.get());
  EXPECT_FALSE(zero_layers.ok());
}

TEST(GptBatch, RejectsOutOfVocabTokens) {
  auto device = kernels::MakeCpuDevice(1);
  auto m = Gpt::Create(Tiny(), GptOptions{1, 4}, device.get());
  ASSERT_TRUE(m.ok());
  std::vector<int32_t> in{1, 2, 32, 3}, tg{1, 2, 3, 4};
  absl::Status s = (*m)->SetBatch(in.data(), tg.data(), 1, 4);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("token id 32"), std::string::npos) << s;
  in[2] = 5;
  EXPECT_TRUE((*m)->SetBatch(in.data(), tg.data(), 1, 4).ok());
  EXPECT_FALSE((*m)->SetBatch(in.data(), tg.data(), 2, 4).ok());  // beyond max batch
}

// Central differences on the full model against its analytic gradient, for a
// random sample of parameters from every tensor.
TEST(GptGradient, MatchesFiniteDifferences) {
  auto device = kernels::MakeCpuDevice(1);
  const GptConfig c = Tiny();
  const int B = 2, T = 6;
  auto m = Gpt::Create(c, GptOptions{B, T}, device.get());
  ASSERT_TRUE(m.ok());
  Gpt& model = **m;
  const ParamLayout& layout = model.layout();
  std::vector<float> p(layout.total_numel()), g(layout.total_numel(), 0.f);
  model.InitParams(p.data(), 3);
  std::mt19937 rng(5);
  // Larger weights than GPT-2's init so every path carries signal in fp32.
  for (float& x : p) x += std::normal_distribution<float>(0.f, 0.1f)(rng);
  std::vector<int32_t> in(B * T), tg(B * T);
  for (int i = 0; i < B * T; ++i) {
    in[i] = static_cast<int32_t>(rng() % c.vocab_size);
    tg[i] = static_cast<int32_t>(rng() % c.vocab_size);
  }
  ASSERT_TRUE(model.SetBatch(in.data(), tg.data(), B, T).ok());
  model.ForwardAll(p.data());
  model.BackwardAll(p.data(), g.data(), 1.0f);
  const int checked = testing::ExpectGradientsMatchFiniteDifferences(model, p, g, rng);
  EXPECT_EQ(checked, 3 * static_cast<int>(layout.params().size()));
}

struct Batch {
  std::vector<int32_t> in, tg;
};
Batch RandomBatch(int n, int V, uint32_t seed) {
  std::mt19937 rng(seed);
  Batch b{std::vector<int32_t>(n), std::vector<int32_t>(n)};
  for (int i = 0; i < n; ++i) {
    b.in[i] = static_cast<int32_t>(rng() % V);
    b.tg[i] = static_cast<int32_t>(rng() % V);
  }
  return b;
}

// Loss and gradients of one batch with the given options (params fp32 on the
// host, rounded to bf16 when the model computes in bf16).
struct Result {
  double loss;
  std::vector<float> grads;
  size_t arena;
};
Result RunOnce(const GptConfig& c, GptOptions o, const std::vector<float>& p, const Batch& b, int B,
           int T, int threads = 2) {
  auto device = kernels::MakeCpuDevice(threads);
  auto m = Gpt::Create(c, o, device.get());
  EXPECT_TRUE(m.ok()) << m.status();
  Gpt& model = **m;
  std::vector<float> g(p.size(), 0.f);
  EXPECT_TRUE(model.SetBatch(b.in.data(), b.tg.data(), B, T).ok());
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

TEST(GptRecompute, BitIdenticalGradientsWithLessMemory) {
  const GptConfig c{4, 4, 64, 32, 50};
  const int B = 3, T = 32;
  auto dev = kernels::MakeCpuDevice(1);
  auto m = Gpt::Create(c, GptOptions{B, T}, dev.get());
  std::vector<float> p((*m)->layout().total_numel());
  (*m)->InitParams(p.data(), 7);
  const Batch b = RandomBatch(B * T, c.vocab_size, 3);
  for (DType dt : {DType::kF32, DType::kBF16}) {
    const Result keep = RunOnce(c, GptOptions{B, T, dt, false}, p, b, B, T);
    const Result redo = RunOnce(c, GptOptions{B, T, dt, true}, p, b, B, T);
    EXPECT_EQ(redo.loss, keep.loss) << DTypeName(dt);
    EXPECT_EQ(redo.grads, keep.grads) << DTypeName(dt);
    // Three of four layers' block activations are not kept.
    EXPECT_LT(redo.arena, keep.arena * 3 / 4) << DTypeName(dt);
  }
}

TEST(GptBf16, TracksFp32LossAndGradients) {
  const GptConfig c{2, 4, 64, 32, 64};
  const int B = 4, T = 32;
  auto dev = kernels::MakeCpuDevice(1);
  auto m = Gpt::Create(c, GptOptions{B, T}, dev.get());
  std::vector<float> p((*m)->layout().total_numel());
  (*m)->InitParams(p.data(), 11);
  std::mt19937 rng(2);
  for (float& x : p) x += std::normal_distribution<float>(0.f, 0.05f)(rng);
  const Batch b = RandomBatch(B * T, c.vocab_size, 5);
  const Result f32 = RunOnce(c, GptOptions{B, T}, p, b, B, T);
  const Result bf16 = RunOnce(c, GptOptions{B, T, DType::kBF16}, p, b, B, T);
  EXPECT_NEAR(bf16.loss, f32.loss, 0.01 * f32.loss);
  // Gradients: same direction (cosine) and norm within a few percent.
  const testing::GradAgreement a = testing::CompareGrads(f32.grads, bf16.grads);
  EXPECT_GT(a.cosine, 0.995);
  EXPECT_NEAR(a.norm_ratio, 1.0, 0.03);
  // The arena holds bf16 block activations: well under the fp32 one.
  EXPECT_LT(bf16.arena, f32.arena * 4 / 5);
  const Result bf16_1t = RunOnce(c, GptOptions{B, T, DType::kBF16}, p, b, B, T, 1);
  testing::ExpectSameStepAtAnotherThreadCount("gpt bf16", bf16.loss, bf16_1t.loss, bf16.grads,
                                              bf16_1t.grads);
}

TEST(GptArena, EstimateBoundsTheArenaClosely) {
  auto dev = kernels::MakeCpuDevice(1);
  for (const GptConfig& c : {GptConfig{2, 2, 16, 8, 32}, GptConfig{6, 6, 384, 256, 256}}) {
    for (int T : {c.max_seq_len / 2, c.max_seq_len}) {
      auto m = Gpt::Create(c, GptOptions{4, T}, dev.get());
      ASSERT_TRUE(m.ok());
      const double est = GptActivationBytesEstimate(c, 4, T);
      const double got = static_cast<double>((*m)->arena_bytes());
      EXPECT_GE(est * 1.02, got) << c.n_embd << " T=" << T;  // 64-byte rounding of pieces
      EXPECT_LE(est, got * 1.10) << c.n_embd << " T=" << T;
      auto bf16 = Gpt::Create(c, GptOptions{4, T, DType::kBF16}, dev.get());
      EXPECT_LT(static_cast<double>((*bf16)->arena_bytes()), got);
    }
  }
}

}  // namespace
}  // namespace anvil
