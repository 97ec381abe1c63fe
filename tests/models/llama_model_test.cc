// Llama model: layout (HF names, fused q|k|v and gate|up adjacency, units,
// tied head), initialisation, config errors naming the flag, a
// finite-difference check of whole-model gradients (tied and untied),
// activation recomputation (bit-identical, less memory), bf16 compute
// against fp32, and the activation-memory estimate.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/convert.h"
#include "kernels/device.h"
#include "models/llama/llama.h"
#include "tests/models/finite_difference.h"
#include "tests/models/grad_compare.h"

namespace anvil {
namespace {

LlamaConfig Tiny(bool tied = false) {
  return LlamaConfig{.n_layer = 2, .n_head = 4, .n_kv_head = 2, .n_embd = 16, .ffn_hidden = 24,
                     .vocab_size = 32, .max_seq_len = 8, .tie_embeddings = tied};
}

TEST(LlamaLayout, HfNamesUnitsAndFusedGroups) {
  auto device = kernels::MakeCpuDevice(1);
  for (bool tied : {false, true}) {
    LlamaConfig c = Tiny(tied);
    c.n_layer = 3;
    auto m = Llama::Create(c, LlamaOptions{2, 8}, device.get());
    ASSERT_TRUE(m.ok()) << m.status();
    const ParamLayout& layout = (*m)->layout();
    ASSERT_EQ(layout.num_units(), 2 * c.n_layer + 2);
    EXPECT_EQ(layout.total_numel(), static_cast<size_t>(LlamaNumParams(c)));
    size_t expect = 0;
    for (const UnitInfo& u : layout.units()) {
      EXPECT_EQ(u.offset, expect) << u.name;
      expect += u.numel;
    }
    EXPECT_EQ(expect, layout.total_numel());
    EXPECT_EQ(layout.units()[0].name, "embed");
    EXPECT_EQ(layout.units()[1].name, "layers.0.attn");
    EXPECT_EQ(layout.units()[2].name, "layers.0.mlp");
    EXPECT_EQ(layout.units().back().name, "head");
    // q|k|v and gate|up are each one row-stacked matrix.
    auto at = [&](const std::string& n) {
      const int i = layout.Find(n);
      EXPECT_GE(i, 0) << n;
      return layout.params()[i];
    };
    const std::string p = "model.layers.2.";
    const ParamInfo q = at(p + "self_attn.q_proj.weight"), k = at(p + "self_attn.k_proj.weight"),
                    v = at(p + "self_attn.v_proj.weight");
    EXPECT_EQ(k.offset, q.offset + q.numel);
    EXPECT_EQ(v.offset, k.offset + k.numel);
    EXPECT_EQ(k.shape, (std::vector<int64_t>{8, 16}));  // NKV * hd = 2 * 4 rows
    const ParamInfo g = at(p + "mlp.gate_proj.weight"), u = at(p + "mlp.up_proj.weight");
    EXPECT_EQ(u.offset, g.offset + g.numel);
    EXPECT_EQ(at(p + "mlp.down_proj.weight").shape, (std::vector<int64_t>{16, 24}));
    EXPECT_EQ(at("model.norm.weight").unit, 2 * c.n_layer + 1);
    EXPECT_EQ(layout.Find("lm_head.weight") >= 0, !tied);
    EXPECT_EQ((*m)->UnitDeps(2 * c.n_layer + 1), tied ? std::vector<int>{0} : std::vector<int>{});
    EXPECT_FALSE(at("model.layers.0.input_layernorm.weight").weight_decay);
    EXPECT_TRUE(at("model.embed_tokens.weight").weight_decay);
    // 6N + 6 L C T
    EXPECT_DOUBLE_EQ((*m)->FlopsPerToken(8), 6.0 * LlamaNumParams(c) + 6.0 * 3 * 16 * 8);
  }
}

TEST(LlamaInit, HfStatistics) {
  auto device = kernels::MakeCpuDevice(1);
  LlamaConfig c{.n_layer = 2, .n_head = 4, .n_kv_head = 2, .n_embd = 64, .ffn_hidden = 128,
                .vocab_size = 256, .max_seq_len = 16};
  auto m = Llama::Create(c, LlamaOptions{1, 16}, device.get());
  ASSERT_TRUE(m.ok());
  const ParamLayout& layout = (*m)->layout();
  std::vector<float> p(layout.total_numel()), q(layout.total_numel());
  (*m)->InitParams(p.data(), 7);
  (*m)->InitParams(q.data(), 7);
  EXPECT_EQ(p, q);
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
  EXPECT_NEAR(stddev("model.embed_tokens.weight"), 0.02, 0.001);
  EXPECT_NEAR(stddev("model.layers.1.mlp.down_proj.weight"), 0.02, 0.001);
  EXPECT_NEAR(stddev("lm_head.weight"), 0.02, 0.001);
  EXPECT_EQ(p[layout.params()[layout.Find("model.norm.weight")].offset + 3], 1.0f);
}

TEST(LlamaConfigErrors, NameTheFlag) {
  auto device = kernels::MakeCpuDevice(1);
  auto expect_error = [&](LlamaConfig c, LlamaOptions o, const std::string& flag) {
    auto m = Llama::Create(c, o, device.get());
    ASSERT_FALSE(m.ok()) << flag;
    EXPECT_NE(m.status().message().find(flag), std::string::npos) << m.status();
  };
  LlamaConfig c = Tiny();
  c.n_kv_head = 3;  // 4 heads are not a multiple of 3
  expect_error(c, LlamaOptions{1, 8}, "--n_kv_head");
  c = Tiny();
  c.n_head = 3;
  expect_error(c, LlamaOptions{1, 8}, "--n_head");
  c = Tiny();
  c.n_embd = 12;  // head size 3: odd, no rotary pairs
  expect_error(c, LlamaOptions{1, 8}, "even");
  c = Tiny();
  c.ffn_hidden = 0;
  expect_error(c, LlamaOptions{1, 8}, "--ffn_hidden");
  c = Tiny();
  c.rope_theta = 0;
  expect_error(c, LlamaOptions{1, 8}, "--rope_theta");
  c = Tiny();
  c.norm_eps = -1;
  expect_error(c, LlamaOptions{1, 8}, "--norm_eps");
  expect_error(Tiny(), LlamaOptions{1, 9}, "--seq_len");
  auto m = Llama::Create(Tiny(), LlamaOptions{1, 4}, device.get());
  ASSERT_TRUE(m.ok());
  std::vector<int32_t> in{1, 2, 32, 3}, tg{1, 2, 3, 4};
  const absl::Status s = (*m)->SetBatch(in.data(), tg.data(), 1, 4);
  EXPECT_NE(s.message().find("token id 32"), std::string::npos) << s;
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

// Central differences on the full model against its analytic gradient, for
// a random sample of parameters from every tensor: untied with grouped-query
// attention (2 kv heads for 4), tied with multi-query attention (1 kv head).
TEST(LlamaGradient, MatchesFiniteDifferences) {
  for (bool tied : {false, true}) {
    auto device = kernels::MakeCpuDevice(1);
    LlamaConfig c = Tiny(tied);
    if (tied) c.n_kv_head = 1;
    const int B = 2, T = 6;
    auto m = Llama::Create(c, LlamaOptions{B, T}, device.get());
    ASSERT_TRUE(m.ok());
    Llama& model = **m;
    const ParamLayout& layout = model.layout();
    std::vector<float> p(layout.total_numel()), g(layout.total_numel(), 0.f);
    model.InitParams(p.data(), 3);
    std::mt19937 rng(5);
    for (float& x : p) x += std::normal_distribution<float>(0.f, 0.15f)(rng);
    const Batch b = RandomBatch(B * T, c.vocab_size, 9);
    ASSERT_TRUE(model.SetBatch(b.in.data(), b.tg.data(), B, T).ok());
    model.ForwardAll(p.data());
    model.BackwardAll(p.data(), g.data(), 1.0f);
    testing::ExpectGradientsMatchFiniteDifferences(model, p, g, rng, {}, tied ? "tied " : "");
  }
}

struct Result {
  double loss;
  std::vector<float> grads;
  size_t arena;
};
Result RunOnce(const LlamaConfig& c, LlamaOptions o, const std::vector<float>& p, const Batch& b,
               int B, int T, int threads = 2) {
  auto device = kernels::MakeCpuDevice(threads);
  auto m = Llama::Create(c, o, device.get());
  EXPECT_TRUE(m.ok()) << m.status();
  Llama& model = **m;
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

TEST(LlamaRecompute, BitIdenticalGradientsWithLessMemory) {
  const LlamaConfig c{.n_layer = 4, .n_head = 4, .n_kv_head = 2, .n_embd = 64, .ffn_hidden = 160,
                      .vocab_size = 50, .max_seq_len = 32};
  const int B = 3, T = 32;
  auto dev = kernels::MakeCpuDevice(1);
  auto m = Llama::Create(c, LlamaOptions{B, T}, dev.get());
  std::vector<float> p((*m)->layout().total_numel());
  (*m)->InitParams(p.data(), 7);
  const Batch b = RandomBatch(B * T, c.vocab_size, 3);
  for (DType dt : {DType::kF32, DType::kBF16}) {
    const Result keep = RunOnce(c, LlamaOptions{B, T, dt, false}, p, b, B, T);
    const Result redo = RunOnce(c, LlamaOptions{B, T, dt, true}, p, b, B, T);
    EXPECT_EQ(redo.loss, keep.loss) << DTypeName(dt);
    EXPECT_EQ(redo.grads, keep.grads) << DTypeName(dt);
    EXPECT_LT(redo.arena, keep.arena * 3 / 4) << DTypeName(dt);
  }
}

TEST(LlamaBf16, TracksFp32LossAndGradients) {
  for (bool tied : {false, true}) {
    const LlamaConfig c{.n_layer = 2, .n_head = 4, .n_kv_head = 2, .n_embd = 64,
                        .ffn_hidden = 128, .vocab_size = 64, .max_seq_len = 32,
                        .tie_embeddings = tied};
    const int B = 4, T = 32;
    auto dev = kernels::MakeCpuDevice(1);
    auto m = Llama::Create(c, LlamaOptions{B, T}, dev.get());
    std::vector<float> p((*m)->layout().total_numel());
    (*m)->InitParams(p.data(), 11);
    std::mt19937 rng(2);
    for (float& x : p) x += std::normal_distribution<float>(0.f, 0.05f)(rng);
    const Batch b = RandomBatch(B * T, c.vocab_size, 5);
    const Result f32 = RunOnce(c, LlamaOptions{B, T}, p, b, B, T);
    const Result bf16 = RunOnce(c, LlamaOptions{B, T, DType::kBF16}, p, b, B, T);
    EXPECT_NEAR(bf16.loss, f32.loss, 0.01 * f32.loss);
    const testing::GradAgreement a = testing::CompareGrads(f32.grads, bf16.grads);
    std::printf("llama bf16 vs fp32 (%s): loss %.6f vs %.6f, gradient cosine %.6f, norm ratio %.4f\n",
                tied ? "tied" : "untied", bf16.loss, f32.loss, a.cosine, a.norm_ratio);
    EXPECT_GT(a.cosine, 0.995);
    EXPECT_NEAR(a.norm_ratio, 1.0, 0.03);
    EXPECT_LT(bf16.arena, f32.arena * 4 / 5);
    const Result bf16_1t = RunOnce(c, LlamaOptions{B, T, DType::kBF16}, p, b, B, T, 1);
    testing::ExpectSameStepAtAnotherThreadCount(tied ? "llama bf16 tied" : "llama bf16", bf16.loss,
                                                bf16_1t.loss, bf16.grads, bf16_1t.grads);
  }
}

TEST(LlamaArena, EstimateBoundsTheArenaClosely) {
  auto dev = kernels::MakeCpuDevice(1);
  for (const LlamaConfig& c :
       {Tiny(), LlamaConfig{.n_layer = 6, .n_head = 6, .n_kv_head = 2, .n_embd = 384,
                            .ffn_hidden = 1024, .vocab_size = 256, .max_seq_len = 256}}) {
    for (int T : {c.max_seq_len / 2, c.max_seq_len}) {
      auto m = Llama::Create(c, LlamaOptions{4, T}, dev.get());
      ASSERT_TRUE(m.ok());
      const double est = LlamaActivationBytesEstimate(c, 4, T);
      const double got = static_cast<double>((*m)->arena_bytes());
      EXPECT_GE(est * 1.02, got) << c.n_embd << " T=" << T;  // 64-byte rounding of pieces
      EXPECT_LE(est, got * 1.10) << c.n_embd << " T=" << T;
      auto bf16 = Llama::Create(c, LlamaOptions{4, T, DType::kBF16}, dev.get());
      EXPECT_LT(static_cast<double>((*bf16)->arena_bytes()), got);
    }
  }
}

}  // namespace
}  // namespace anvil
