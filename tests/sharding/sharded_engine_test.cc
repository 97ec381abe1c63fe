// ShardedEngine: N ranks as threads over real Gloo/TCP loopback connections
// must train exactly like one process on the same global batch, for every
// strategy and several models (GPT, Llama, an MLP; the UNet fed diffusion
// batches); memory follows the ZeRO formulas; an
// inf on one rank skips the step everywhere.
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/device.h"
#include "models/dit/dit.h"
#include "models/gpt/gpt.h"
#include "models/llama/llama.h"
#include "models/unet/unet.h"
#include "models/init_rng.h"
#include "runtime/collectives/gloo/gloo_process_group.h"
#include "runtime/collectives/hybrid_groups.h"
#include "runtime/sharding/sharded_engine.h"
#include "runtime/store/hash_store.h"
#include "tests/sharding/grad_injector.h"
#include "tests/sharding/mlp_model.h"

namespace anvil {
namespace {

enum class ModelKind { kGpt, kLlama, kMlp };

struct RunSpec {
  ModelKind model = ModelKind::kGpt;
  ShardingStrategy strategy = ShardingStrategy::kNoShard;
  int world = 1;
  int local_size = 2;  // HYBRID_SHARD: ranks per simulated node
  DType param_dtype = DType::kF32;
  DType reduce_dtype = DType::kF32;
  int steps = 4;
  int global_batch = 12;  // sequences: divisible by 1, 2, 3 and 4
  int seq = 8;
  size_t bucket_bytes = 4096;  // small, so NO_SHARD uses several buckets
  int micro = 1;               // micro-batches per step (gradient accumulation)
  bool overlap = true;
  int n_layer = 2;             // GPT depth
};

struct RunResult {
  std::vector<double> losses;
  std::vector<float> params;
  std::vector<MemoryStats> memory;  // per rank
  std::vector<size_t> local_numel;
  std::vector<StepResult> results;         // rank 0
  std::vector<std::vector<float>> scales;  // per rank, loss scale after each step
};

constexpr int kVocab = 29;

std::unique_ptr<TokenModel> MakeModel(ModelKind kind, kernels::Device* b, int batch, int seq,
                                     int n_layer = 2) {
  if (kind == ModelKind::kGpt) {
    auto m = Gpt::Create(GptConfig{n_layer, 2, 12, 8, kVocab}, GptOptions{batch, seq}, b);
    EXPECT_TRUE(m.ok());
    return std::move(*m);
  }
  if (kind == ModelKind::kLlama) {
    // Grouped-query (2 heads share 1 KV head), untied head, odd vocabulary.
    LlamaConfig c;
    c.n_layer = n_layer;
    c.n_head = 2;
    c.n_kv_head = 1;
    c.n_embd = 16;
    c.ffn_hidden = 24;
    c.vocab_size = kVocab;
    c.max_seq_len = 8;
    auto m = Llama::Create(c, LlamaOptions{batch, seq}, b);
    EXPECT_TRUE(m.ok());
    return std::move(*m);
  }
  return std::make_unique<testing::MlpModel>(testing::MlpConfig{kVocab, 13, 3, batch * seq}, b);
}

// The global batch of step s: deterministic tokens, rows split across ranks.
void Batch(int step, int rows, int seq, std::vector<int32_t>* in, std::vector<int32_t>* tg) {
  in->resize(rows * seq);
  tg->resize(rows * seq);
  for (int i = 0; i < rows * seq; ++i) {
    const uint64_t h = SplitMix64(static_cast<uint64_t>(step) * 1000003u + i);
    (*in)[i] = static_cast<int32_t>(h % kVocab);
    (*tg)[i] = static_cast<int32_t>((h >> 20) % kVocab);
  }
}

// Called on each rank before a step's first micro-batch.
using StepHook = std::function<void(testing::GradInjector& model, ShardedEngine& e, int step)>;

void RankMain(const RunSpec& spec, int rank, ProcessGroup* world, RunResult* out,
              const StepHook& hook) {
  auto device = kernels::MakeCpuDevice(1);
  const int rows = spec.global_batch / spec.world / spec.micro;
  auto inner = MakeModel(spec.model, device.get(), rows, spec.seq, spec.n_layer);
  auto model = std::make_unique<testing::GradInjector>(inner.get(), device.get());
  EngineGroups groups{world, nullptr, nullptr};
  HybridGroups hybrid;
  if (spec.strategy == ShardingStrategy::kHybridShard && world != nullptr) {
    auto h = SplitHybrid(*world, spec.local_size);
    ASSERT_TRUE(h.ok()) << h.status();
    hybrid = std::move(*h);
    groups.node_local = hybrid.node_local.get();
    groups.cross_node = hybrid.cross_node.get();
  }
  EngineOptions o;
  o.strategy = spec.strategy;
  o.param_dtype = spec.param_dtype;
  o.reduce_dtype = spec.reduce_dtype;
  o.bucket_bytes = spec.bucket_bytes;
  o.first_bucket_bytes = 512;
  o.overlap = spec.overlap;
  o.adamw.weight_decay = 0.1f;
  auto engine = ShardedEngine::Create(model.get(), device.get(), groups, o);
  ASSERT_TRUE(engine.ok()) << engine.status();
  ShardedEngine& e = **engine;
  ASSERT_TRUE(e.InitParams(42).ok());
  std::vector<int32_t> in, tg;
  for (int s = 0; s < spec.steps; ++s) {
    Batch(s, spec.global_batch, spec.seq, &in, &tg);
    if (hook) hook(*model, e, s);
    double loss = 0;
    for (int m = 0; m < spec.micro; ++m) {
      const size_t first = static_cast<size_t>(rank * spec.micro + m) * rows * spec.seq;
      ASSERT_TRUE(model->SetBatch(in.data() + first, tg.data() + first, rows, spec.seq).ok());
      auto l = e.ForwardBackward(1.0f / spec.micro, m == spec.micro - 1);
      ASSERT_TRUE(l.ok()) << l.status();
      loss += *l / spec.micro;
    }
    auto res = e.Step(1e-2f, loss);
    ASSERT_TRUE(res.ok()) << res.status();
    if (rank == 0) {
      out->losses.push_back(res->loss);
      out->results.push_back(*res);
    }
    out->scales[rank].push_back(e.loss_scale());
  }
  std::vector<float> full(model->layout().total_numel());
  ASSERT_TRUE(e.GetFullParams(full.data()).ok());
  if (rank == 0) out->params = full;
  out->memory[rank] = e.memory();
  out->local_numel[rank] = e.shard_layout().local_numel();
}

RunResult Train(const RunSpec& spec, const StepHook& hook = nullptr) {
  RunResult out;
  out.memory.resize(spec.world);
  out.local_numel.resize(spec.world);
  out.scales.resize(spec.world);
  if (spec.world == 1) {
    RankMain(spec, 0, nullptr, &out, hook);
    return out;
  }
  auto store = std::make_shared<HashStore>();
  std::vector<std::thread> threads;
  for (int r = 0; r < spec.world; ++r) {
    threads.emplace_back([&, r] {
      GlooOptions g;
      g.store = store;
      g.rank = r;
      g.size = spec.world;
      g.timeout = absl::Seconds(60);
      g.hostname = "127.0.0.1";
      auto pg = GlooProcessGroup::Create(g);
      ASSERT_TRUE(pg.ok()) << pg.status();
      RankMain(spec, r, pg->get(), &out, hook);
    });
  }
  for (auto& t : threads) t.join();
  return out;
}

double RelDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

struct EquivCase {
  ModelKind model;
  ShardingStrategy strategy;
  int world;
};

class Equivalence : public ::testing::TestWithParam<EquivCase> {};

TEST_P(Equivalence, MatchesOneRankInFp32) {
  const EquivCase c = GetParam();
  RunSpec one{c.model, ShardingStrategy::kNoShard, 1};
  RunSpec many{c.model, c.strategy, c.world};
  const RunResult ref = Train(one);
  const RunResult got = Train(many);
  ASSERT_EQ(ref.losses.size(), got.losses.size());
  for (size_t s = 0; s < ref.losses.size(); ++s) {
    EXPECT_NEAR(got.losses[s], ref.losses[s], 1e-5 * ref.losses[s]) << "step " << s;
  }
  // The global gradient norm (sharded and replicated parts counted once).
  ASSERT_EQ(ref.results.size(), got.results.size());
  for (size_t s = 0; s < ref.results.size(); ++s) {
    EXPECT_NEAR(got.results[s].grad_norm, ref.results[s].grad_norm,
                1e-5 * ref.results[s].grad_norm)
        << "step " << s;
    EXPECT_GT(ref.results[s].grad_norm, 0) << "step " << s;
  }
  ASSERT_EQ(ref.params.size(), got.params.size());
  EXPECT_LE(RelDiff(got.params, ref.params), 1e-5);
  EXPECT_GT(RelDiff(got.params, std::vector<float>(got.params.size(), 0.f)), 0.5);
}

std::string CaseName(const ::testing::TestParamInfo<EquivCase>& info) {
  const ModelKind m = info.param.model;
  return std::string(m == ModelKind::kGpt ? "Gpt" : m == ModelKind::kLlama ? "Llama" : "Mlp") + "_" +
         std::string(ShardingStrategyName(info.param.strategy)) + "_" +
         std::to_string(info.param.world);
}

INSTANTIATE_TEST_SUITE_P(
    AllStrategies, Equivalence,
    ::testing::Values(EquivCase{ModelKind::kGpt, ShardingStrategy::kNoShard, 2},
                      EquivCase{ModelKind::kGpt, ShardingStrategy::kNoShard, 4},
                      EquivCase{ModelKind::kGpt, ShardingStrategy::kShardGradOp, 2},
                      EquivCase{ModelKind::kGpt, ShardingStrategy::kShardGradOp, 4},
                      EquivCase{ModelKind::kGpt, ShardingStrategy::kFullShard, 2},
                      EquivCase{ModelKind::kGpt, ShardingStrategy::kFullShard, 4},
                      EquivCase{ModelKind::kGpt, ShardingStrategy::kHybridShard, 4},
                      EquivCase{ModelKind::kLlama, ShardingStrategy::kNoShard, 2},
                      EquivCase{ModelKind::kLlama, ShardingStrategy::kShardGradOp, 2},
                      EquivCase{ModelKind::kLlama, ShardingStrategy::kFullShard, 4},
                      EquivCase{ModelKind::kLlama, ShardingStrategy::kHybridShard, 4},
                      EquivCase{ModelKind::kMlp, ShardingStrategy::kNoShard, 2},
                      EquivCase{ModelKind::kMlp, ShardingStrategy::kFullShard, 4},
                      EquivCase{ModelKind::kMlp, ShardingStrategy::kShardGradOp, 3},
                      EquivCase{ModelKind::kMlp, ShardingStrategy::kHybridShard, 4}),
    CaseName);


// ---- Diffusion models: the same equivalence on diffusion batches -----------
// A deterministic global batch of noised images per step (x_t, timesteps,
// labels with some null classes, target), rows split across ranks, fed to a
// DiffusionModel made by `make` (so other denoisers can reuse the path).

using DiffusionFactory =
    std::function<std::unique_ptr<DiffusionModel>(kernels::Device* device, int batch)>;

struct DiffusionData {
  std::vector<float> x, target;
  std::vector<int32_t> t, y;
};

DiffusionData DiffusionGlobalBatch(int step, int rows, int pixels, int num_classes) {
  DiffusionData d{std::vector<float>(static_cast<size_t>(rows) * pixels),
                  std::vector<float>(static_cast<size_t>(rows) * pixels),
                  std::vector<int32_t>(rows), std::vector<int32_t>(rows)};
  auto unit = [](uint64_t h) { return static_cast<float>((h >> 11) * 0x1.0p-53) * 2.f - 1.f; };
  for (size_t i = 0; i < d.x.size(); ++i) {
    d.x[i] = unit(SplitMix64(static_cast<uint64_t>(step) * 7919u + 2 * i));
    d.target[i] = unit(SplitMix64(static_cast<uint64_t>(step) * 7919u + 2 * i + 1));
  }
  for (int r = 0; r < rows; ++r) {
    const uint64_t h = SplitMix64(static_cast<uint64_t>(step) * 131u + r + 0x51ed);
    d.t[r] = static_cast<int32_t>(h % 1000);
    d.y[r] = static_cast<int32_t>((h >> 20) % (num_classes + 1));  // null class included
  }
  return d;
}

void DiffusionRankMain(const DiffusionFactory& make, const RunSpec& spec, int rank,
                       ProcessGroup* world, RunResult* out) {
  auto device = kernels::MakeCpuDevice(1);
  const int rows = spec.global_batch / spec.world;
  std::unique_ptr<DiffusionModel> model = make(device.get(), rows);
  ASSERT_NE(model, nullptr);
  EngineGroups groups{world, nullptr, nullptr};
  HybridGroups hybrid;
  if (spec.strategy == ShardingStrategy::kHybridShard && world != nullptr) {
    auto h = SplitHybrid(*world, spec.local_size);
    ASSERT_TRUE(h.ok()) << h.status();
    hybrid = std::move(*h);
    groups.node_local = hybrid.node_local.get();
    groups.cross_node = hybrid.cross_node.get();
  }
  EngineOptions o;
  o.strategy = spec.strategy;
  o.bucket_bytes = spec.bucket_bytes;
  o.first_bucket_bytes = 512;
  o.adamw.weight_decay = 0.1f;
  auto engine = ShardedEngine::Create(model.get(), device.get(), groups, o);
  ASSERT_TRUE(engine.ok()) << engine.status();
  ShardedEngine& e = **engine;
  ASSERT_TRUE(e.InitParams(42).ok());
  const int pixels = model->image_height() * model->image_width() * model->image_channels();
  for (int s = 0; s < spec.steps; ++s) {
    const DiffusionData d = DiffusionGlobalBatch(s, spec.global_batch, pixels, 3);
    const size_t first = static_cast<size_t>(rank) * rows;
    const DiffusionBatch b{d.x.data() + first * pixels, d.t.data() + first, d.y.data() + first,
                           d.target.data() + first * pixels, rows};
    ASSERT_TRUE(model->SetDiffusionBatch(b).ok());
    auto l = e.ForwardBackward(1.0f, true);
    ASSERT_TRUE(l.ok()) << l.status();
    auto res = e.Step(1e-2f, *l);
    ASSERT_TRUE(res.ok()) << res.status();
    if (rank == 0) {
      out->losses.push_back(res->loss);
      out->results.push_back(*res);
    }
  }
  std::vector<float> full(model->layout().total_numel());
  ASSERT_TRUE(e.GetFullParams(full.data()).ok());
  if (rank == 0) out->params = full;
}

RunResult TrainDiffusion(const DiffusionFactory& make, const RunSpec& spec) {
  RunResult out;
  if (spec.world == 1) {
    DiffusionRankMain(make, spec, 0, nullptr, &out);
    return out;
  }
  auto store = std::make_shared<HashStore>();
  std::vector<std::thread> threads;
  for (int r = 0; r < spec.world; ++r) {
    threads.emplace_back([&, r] {
      GlooOptions g;
      g.store = store;
      g.rank = r;
      g.size = spec.world;
      g.timeout = absl::Seconds(60);
      g.hostname = "127.0.0.1";
      auto pg = GlooProcessGroup::Create(g);
      ASSERT_TRUE(pg.ok()) << pg.status();
      DiffusionRankMain(make, spec, r, pg->get(), &out);
    });
  }
  for (auto& t : threads) t.join();
  return out;
}

void ExpectDiffusionEquivalence(const DiffusionFactory& make, ShardingStrategy strategy,
                                int world) {
  const RunResult ref = TrainDiffusion(make, RunSpec{ModelKind::kMlp, ShardingStrategy::kNoShard, 1});
  const RunResult got = TrainDiffusion(make, RunSpec{ModelKind::kMlp, strategy, world});
  ASSERT_EQ(ref.losses.size(), got.losses.size());
  for (size_t s = 0; s < ref.losses.size(); ++s) {
    EXPECT_NEAR(got.losses[s], ref.losses[s], 1e-5 * ref.losses[s]) << "step " << s;
    EXPECT_NEAR(got.results[s].grad_norm, ref.results[s].grad_norm,
                1e-5 * ref.results[s].grad_norm)
        << "step " << s;
    EXPECT_GT(ref.results[s].grad_norm, 0) << "step " << s;
  }
  // The trained parameters moved (adaLN-Zero's zero tensors included).
  EXPECT_NE(ref.losses.back(), ref.losses.front());
  ASSERT_EQ(ref.params.size(), got.params.size());
  EXPECT_LE(RelDiff(got.params, ref.params), 1e-5);
}

std::unique_ptr<DiffusionModel> MakeTinyDit(kernels::Device* device, int batch) {
  // 8x8x2 images, 2x2 patches (16 tokens), 3 classes + null, learned positions.
  const DitConfig c{.n_layer = 2, .n_head = 2, .n_embd = 16, .patch_size = 2, .image_size = 8,
                    .image_channels = 2, .num_classes = 3, .learned_pos = true, .freq_dim = 16};
  auto m = Dit::Create(c, DitOptions{batch}, device);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::move(*m) : nullptr;
}

struct DiffusionCase {
  ShardingStrategy strategy;
  int world;
};

class DitEquivalence : public ::testing::TestWithParam<DiffusionCase> {};

TEST_P(DitEquivalence, MatchesOneRankInFp32) {
  ExpectDiffusionEquivalence(MakeTinyDit, GetParam().strategy, GetParam().world);
}

INSTANTIATE_TEST_SUITE_P(
    AllStrategies, DitEquivalence,
    ::testing::Values(DiffusionCase{ShardingStrategy::kNoShard, 2},
                      DiffusionCase{ShardingStrategy::kNoShard, 4},
                      DiffusionCase{ShardingStrategy::kShardGradOp, 2},
                      DiffusionCase{ShardingStrategy::kShardGradOp, 4},
                      DiffusionCase{ShardingStrategy::kFullShard, 2},
                      DiffusionCase{ShardingStrategy::kFullShard, 4},
                      DiffusionCase{ShardingStrategy::kHybridShard, 4}),
    [](const ::testing::TestParamInfo<DiffusionCase>& info) {
      return std::string(ShardingStrategyName(info.param.strategy)) + "_" +
             std::to_string(info.param.world);
    });

TEST(ShardedEngineTest, GradientAccumulationSkipsCommunicationUntilTheLastMicroBatch) {
  const RunResult ref = Train(RunSpec{ModelKind::kGpt, ShardingStrategy::kNoShard, 1});
  for (ShardingStrategy st : {ShardingStrategy::kFullShard, ShardingStrategy::kNoShard}) {
    RunSpec spec{ModelKind::kGpt, st, 2};
    spec.micro = 3;  // 3 micro-batches of 2 rows per rank
    const RunResult got = Train(spec);
    for (size_t s = 0; s < ref.losses.size(); ++s) {
      EXPECT_NEAR(got.losses[s], ref.losses[s], 1e-5 * ref.losses[s]) << s;
    }
    EXPECT_LE(RelDiff(got.params, ref.params), 1e-5) << ShardingStrategyName(st);
  }
}

TEST(ShardedEngineTest, OverlapDoesNotChangeResults) {
  RunSpec spec{ModelKind::kGpt, ShardingStrategy::kFullShard, 2};
  const RunResult a = Train(spec);
  spec.overlap = false;
  const RunResult b = Train(spec);
  EXPECT_EQ(a.losses, b.losses);
  EXPECT_EQ(a.params, b.params);  // same collectives, same order: bitwise equal
}

// Per-rank bytes of sharded state follow the ZeRO formulas (fp32 params,
// grads, m, v: 16 bytes per parameter): 16 Psi for NO_SHARD, 16 Psi / N
// (+ padding) when sharded. What is gathered on top is bounded by units, not by
// the model: FULL_SHARD's peak does not grow with depth (a window of gathered
// units), SHARD_GRAD_OP holds every parameter gathered (4 Psi).
TEST(ShardedEngineTest, MemoryFollowsTheZeroFormulas) {
  std::map<std::pair<int, int>, size_t> full_peak, grad_op_peak;  // (layers, n)
  for (int layers : {6, 12}) {
    auto device = kernels::MakeCpuDevice(1);
    auto model = MakeModel(ModelKind::kGpt, device.get(), 1, 8, layers);
    const ParamLayout& layout = model->layout();
    const double psi = static_cast<double>(layout.total_numel());
    size_t max_unit = 0;
    for (const UnitInfo& u : layout.units()) max_unit = std::max(max_unit, u.numel);
    const size_t shared = layout.units()[0].numel + layout.units().back().numel;  // tied embed + head
    for (int n : {1, 2, 4}) {
      for (ShardingStrategy st : {ShardingStrategy::kNoShard, ShardingStrategy::kShardGradOp,
                                  ShardingStrategy::kFullShard}) {
        RunSpec spec{ModelKind::kGpt, st, n};
        spec.n_layer = layers;
        spec.steps = 1;
        const RunResult r = Train(spec);
        for (int rank = 0; rank < n; ++rank) {
          const MemoryStats& m = r.memory[rank];
          const bool sharded = st != ShardingStrategy::kNoShard && n > 1;
          size_t expect_local = 0;
          for (const UnitInfo& u : layout.units()) expect_local += sharded ? (u.numel + n - 1) / n : u.numel;
          EXPECT_EQ(m.shard_state_bytes, 16 * expect_local);
          const double formula = sharded ? 16 * psi / n : 16 * psi;
          EXPECT_LE(m.shard_state_bytes, formula + 16.0 * layout.num_units());
          if (st == ShardingStrategy::kFullShard && n > 1) {
            // params: shared units + current + 2 prefetched; grads: shared +
            // current + 2 in flight (+1 being retired)
            const double bound = 4.0 * (2 * shared + 7 * (max_unit + n));
            EXPECT_LE(m.gathered_peak_bytes, bound) << "L=" << layers << " N=" << n;
            full_peak[std::make_pair(layers, n)] =
                std::max(full_peak[std::make_pair(layers, n)], m.gathered_peak_bytes);
          }
          if (st == ShardingStrategy::kShardGradOp && n > 1) {
            EXPECT_GE(m.gathered_peak_bytes, 4 * psi);
            grad_op_peak[std::make_pair(layers, n)] =
                std::max(grad_op_peak[std::make_pair(layers, n)], m.gathered_peak_bytes);
          }
          if (st == ShardingStrategy::kNoShard) {
            EXPECT_EQ(m.gathered_peak_bytes, 0u);
          }
        }
      }
    }
  }
  for (int n : {2, 4}) {
    const size_t full6 = full_peak[std::make_pair(6, n)], full12 = full_peak[std::make_pair(12, n)];
    const size_t op6 = grad_op_peak[std::make_pair(6, n)], op12 = grad_op_peak[std::make_pair(12, n)];
    EXPECT_LE(full12, full6 * 105 / 100) << "FULL_SHARD grows with depth, N=" << n;
    EXPECT_GE(op12, op6 * 14 / 10) << "SHARD_GRAD_OP keeps all params gathered, N=" << n;
  }
}

// fp16: an inf injected into one rank's gradients makes every rank skip the
// step and halve the scale; parameters do not move; the next step trains.
// The inf goes into rank 1's slice of unit 0's unsharded gradient, so after
// the reduce-scatter only rank 1's shard holds it.
TEST(ShardedEngineTest, InfOnOneRankSkipsTheStepEverywhere) {
  RunSpec spec{ModelKind::kGpt, ShardingStrategy::kFullShard, 2};
  spec.param_dtype = DType::kF16;
  spec.reduce_dtype = DType::kF16;
  spec.steps = 3;
  const RunResult r = Train(spec, [](testing::GradInjector& m, ShardedEngine& e, int step) {
    const ShardLayout& shards = e.shard_layout();
    if (step == 1 && shards.rank() == 1) m.InjectOnce(0, shards.unit(0).shard + 3, INFINITY);
  });
  ASSERT_EQ(r.results.size(), 3u);
  EXPECT_FALSE(r.results[0].skipped);
  EXPECT_TRUE(r.results[1].skipped);
  EXPECT_FALSE(r.results[2].skipped);
  for (int rank = 0; rank < 2; ++rank) {
    EXPECT_EQ(r.scales[rank][0], 65536.0f);
    EXPECT_EQ(r.scales[rank][1], 32768.0f) << "rank " << rank;
    EXPECT_EQ(r.scales[rank][2], 32768.0f);
  }
  // The skipped step left the parameters alone: step 2 saw the same loss a
  // run without step 1 would... checked directly: losses of steps 0 and 2
  // are finite and training continued.
  EXPECT_TRUE(std::isfinite(r.results[2].loss));
  EXPECT_TRUE(std::isnan(r.results[1].grad_norm));
}

// bf16 parameters and reductions: the N-rank run tracks the 1-rank bf16 run
// within bf16 resolution, while both visibly differ from fp32.
TEST(ShardedEngineTest, Bf16TracksOneRankWithinBf16Resolution) {
  RunSpec one{ModelKind::kGpt, ShardingStrategy::kNoShard, 1};
  one.param_dtype = DType::kBF16;
  one.reduce_dtype = DType::kBF16;
  RunSpec many = one;
  many.world = 4;
  many.strategy = ShardingStrategy::kFullShard;
  const RunResult fp32 = Train(RunSpec{ModelKind::kGpt, ShardingStrategy::kNoShard, 1});
  const RunResult a = Train(one);
  const RunResult b = Train(many);
  const double d_ranks = RelDiff(b.params, a.params);
  const double d_fp32 = RelDiff(a.params, fp32.params);
  for (size_t s = 0; s < a.losses.size(); ++s) {
    EXPECT_NEAR(b.losses[s], a.losses[s], 1e-2 * a.losses[s]) << s;
  }
  // bf16 reductions round every partial sum to 8 mantissa bits (2^-8 = 3.9e-3
  // relative), and AdamW's per-element normalisation turns small gradient
  // differences into O(lr) steps: measured 7.4e-3 relative L2 after 4 steps.
  EXPECT_LE(d_ranks, 1.5e-2);
  EXPECT_GT(d_fp32, 1e-5);   // bf16 really is in effect
  std::printf("bf16: 4-rank FULL_SHARD vs 1-rank rel L2 %.2e; bf16 vs fp32 %.2e\n", d_ranks, d_fp32);
}

// ---- The UNet (a diffusion model) under every strategy ------------------------
// Same engine set-up as RankMain, fed diffusion batches (x_t, timesteps,
// labels, target) built here: the global batch of step s split into
// per-rank rows. Units are one per residual block, so FULL_SHARD gathers and
// reduces per block; SiLU(temb) crosses units as an activation.

struct DiffusionStepData {
  std::vector<float> x_t, target;
  std::vector<int32_t> t, labels;
};

constexpr int kUNetSize = 8, kUNetChannels = 2, kUNetClasses = 3;

DiffusionStepData DiffusionGlobalBatch(int step, int rows) {
  const int px = kUNetSize * kUNetSize * kUNetChannels;
  DiffusionStepData d;
  d.x_t.resize(static_cast<size_t>(rows) * px);
  d.target.resize(d.x_t.size());
  auto unit = [](uint64_t h) { return static_cast<float>(UniformFromBits(h)) * 2.0f - 1.0f; };
  for (size_t i = 0; i < d.x_t.size(); ++i) {
    d.x_t[i] = unit(SplitMix64(static_cast<uint64_t>(step) * 7919u + 2 * i));
    d.target[i] = unit(SplitMix64(static_cast<uint64_t>(step) * 7919u + 2 * i + 1));
  }
  for (int r = 0; r < rows; ++r) {
    const uint64_t h = SplitMix64(static_cast<uint64_t>(step) * 131u + r + 99991u);
    d.t.push_back(static_cast<int32_t>(h % 1000));
    d.labels.push_back(static_cast<int32_t>((h >> 20) % (kUNetClasses + 1)));  // incl. null
  }
  return d;
}

std::unique_ptr<UNet> MakeUNet(kernels::Device* device, int batch) {
  UNetConfig c;
  c.image_size = kUNetSize;
  c.image_channels = kUNetChannels;
  c.channels = 8;
  c.channel_mult = {1, 2};
  c.attention_res = {4};
  c.norm_groups = 2;
  c.n_head = 2;
  c.num_classes = kUNetClasses;
  auto m = UNet::Create(c, UNetOptions{batch}, device);
  EXPECT_TRUE(m.ok()) << m.status();
  return std::move(*m);
}

void DiffusionRankMain(const RunSpec& spec, int rank, ProcessGroup* world, RunResult* out) {
  auto device = kernels::MakeCpuDevice(1);
  const int rows = spec.global_batch / spec.world;
  std::unique_ptr<UNet> model = MakeUNet(device.get(), rows);
  EngineGroups groups{world, nullptr, nullptr};
  HybridGroups hybrid;
  if (spec.strategy == ShardingStrategy::kHybridShard && world != nullptr) {
    auto h = SplitHybrid(*world, spec.local_size);
    ASSERT_TRUE(h.ok()) << h.status();
    hybrid = std::move(*h);
    groups.node_local = hybrid.node_local.get();
    groups.cross_node = hybrid.cross_node.get();
  }
  EngineOptions o;
  o.strategy = spec.strategy;
  o.bucket_bytes = spec.bucket_bytes;
  o.first_bucket_bytes = 512;
  o.overlap = spec.overlap;
  o.adamw.weight_decay = 0.1f;
  auto engine = ShardedEngine::Create(model.get(), device.get(), groups, o);
  ASSERT_TRUE(engine.ok()) << engine.status();
  ShardedEngine& e = **engine;
  ASSERT_TRUE(e.InitParams(42).ok());
  const int px = kUNetSize * kUNetSize * kUNetChannels;
  for (int s = 0; s < spec.steps; ++s) {
    const DiffusionStepData d = DiffusionGlobalBatch(s, spec.global_batch);
    const size_t first = static_cast<size_t>(rank) * rows;
    anvil::Batch b;
    const std::vector<int64_t> img = {rows, kUNetSize, kUNetSize, kUNetChannels};
    b.Set("x_t", {DType::kF32, img, d.x_t.data() + first * px});
    b.Set("target", {DType::kF32, img, d.target.data() + first * px});
    b.Set("timesteps", {DType::kI32, {rows}, d.t.data() + first});
    b.Set("labels", {DType::kI32, {rows}, d.labels.data() + first});
    ASSERT_TRUE(model->SetBatch(b).ok());
    auto l = e.ForwardBackward(1.0f, true);
    ASSERT_TRUE(l.ok()) << l.status();
    auto res = e.Step(1e-2f, *l);
    ASSERT_TRUE(res.ok()) << res.status();
    if (rank == 0) {
      out->losses.push_back(res->loss);
      out->results.push_back(*res);
    }
  }
  std::vector<float> full(model->layout().total_numel());
  ASSERT_TRUE(e.GetFullParams(full.data()).ok());
  if (rank == 0) out->params = full;
}

RunResult TrainDiffusion(const RunSpec& spec) {
  RunResult out;
  if (spec.world == 1) {
    DiffusionRankMain(spec, 0, nullptr, &out);
    return out;
  }
  auto store = std::make_shared<HashStore>();
  std::vector<std::thread> threads;
  for (int r = 0; r < spec.world; ++r) {
    threads.emplace_back([&, r] {
      GlooOptions g;
      g.store = store;
      g.rank = r;
      g.size = spec.world;
      g.timeout = absl::Seconds(60);
      g.hostname = "127.0.0.1";
      auto pg = GlooProcessGroup::Create(g);
      ASSERT_TRUE(pg.ok()) << pg.status();
      DiffusionRankMain(spec, r, pg->get(), &out);
    });
  }
  for (auto& t : threads) t.join();
  return out;
}

struct UNetCase {
  ShardingStrategy strategy;
  int world;
};

class UNetEquivalence : public ::testing::TestWithParam<UNetCase> {};

TEST_P(UNetEquivalence, MatchesOneRankInFp32) {
  const UNetCase c = GetParam();
  RunSpec one{ModelKind::kMlp, ShardingStrategy::kNoShard, 1};  // model kind unused here
  RunSpec many{ModelKind::kMlp, c.strategy, c.world};
  const RunResult ref = TrainDiffusion(one);
  const RunResult got = TrainDiffusion(many);
  ASSERT_EQ(ref.losses.size(), got.losses.size());
  for (size_t s = 0; s < ref.losses.size(); ++s) {
    EXPECT_NEAR(got.losses[s], ref.losses[s], 1e-5 * ref.losses[s]) << "step " << s;
    EXPECT_NEAR(got.results[s].grad_norm, ref.results[s].grad_norm,
                1e-5 * ref.results[s].grad_norm)
        << "step " << s;
    EXPECT_GT(ref.results[s].grad_norm, 0) << "step " << s;
  }
  ASSERT_EQ(ref.params.size(), got.params.size());
  EXPECT_LE(RelDiff(got.params, ref.params), 1e-5);
  EXPECT_GT(RelDiff(got.params, std::vector<float>(got.params.size(), 0.f)), 0.5);
}

INSTANTIATE_TEST_SUITE_P(
    AllStrategies, UNetEquivalence,
    ::testing::Values(UNetCase{ShardingStrategy::kNoShard, 2},
                      UNetCase{ShardingStrategy::kNoShard, 4},
                      UNetCase{ShardingStrategy::kShardGradOp, 2},
                      UNetCase{ShardingStrategy::kShardGradOp, 4},
                      UNetCase{ShardingStrategy::kFullShard, 2},
                      UNetCase{ShardingStrategy::kFullShard, 4},
                      UNetCase{ShardingStrategy::kHybridShard, 4}),
    [](const ::testing::TestParamInfo<UNetCase>& info) {
      return "UNet_" + std::string(ShardingStrategyName(info.param.strategy)) + "_" +
             std::to_string(info.param.world);
    });

}  // namespace
}  // namespace anvil
