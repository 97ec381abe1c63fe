// The EMA of the weights kept by the sharded optimizer: equal to a
// hand-computed EMA (diffusers' warm-up, then the configured decay), started
// at the initial weights, absent with decay 0, and equal under every
// sharding strategy at 2 and 4 ranks (ranks as threads over Gloo/TCP
// loopback) to a single process. The model is tests/diffusion's tiny
// denoiser fed deterministic diffusion batches.
#include <cmath>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/device.h"
#include "models/batch.h"
#include "models/init_rng.h"
#include "runtime/collectives/gloo/gloo_process_group.h"
#include "runtime/collectives/hybrid_groups.h"
#include "runtime/sharding/sharded_engine.h"
#include "runtime/store/hash_store.h"
#include "tests/diffusion/tiny_denoiser.h"

namespace anvil {
namespace {

constexpr int kH = 4, kW = 4, kC = 2, kClasses = 3;
constexpr int kGlobalBatch = 8;

struct EmaRun {
  ShardingStrategy strategy = ShardingStrategy::kNoShard;
  int world = 1;
  float ema_decay = 0.9f;
  int steps = 6;
};

struct Trace {
  std::vector<std::vector<float>> params, ema;  // rank 0, after init and each step
  bool has_ema = false;
};

// Rows [first, first + rows) of step s's global batch.
void FillBatch(int step, int first, int rows, std::vector<float>* x, std::vector<float>* target,
               std::vector<int32_t>* t, std::vector<int32_t>* y) {
  const int n = kH * kW * kC;
  x->resize(rows * n);
  target->resize(rows * n);
  t->resize(rows);
  y->resize(rows);
  for (int r = 0; r < rows; ++r) {
    const uint64_t row = static_cast<uint64_t>(step) * 1000 + first + r;
    (*t)[r] = static_cast<int32_t>(SplitMix64(row) % 1000);
    (*y)[r] = static_cast<int32_t>(SplitMix64(row + 77) % (kClasses + 1));
    for (int i = 0; i < n; ++i) {
      const uint64_t h = SplitMix64(row * 4096 + i);
      (*x)[r * n + i] = static_cast<float>(static_cast<double>(h % 2001) / 1000.0 - 1.0);
      const double v = static_cast<double>((h >> 24) % 2001) / 1000.0 - 1.0;
      (*target)[r * n + i] = static_cast<float>(v);
    }
  }
}

void RankMain(const EmaRun& run, int rank, ProcessGroup* world, Trace* out) {
  auto device = kernels::MakeCpuDevice(1);
  const int rows = kGlobalBatch / run.world;
  testing::TinyDenoiser model(testing::TinyDenoiserConfig{kH, kW, kC, kClasses, rows});
  EngineGroups groups{world, nullptr, nullptr};
  HybridGroups hybrid;
  if (run.strategy == ShardingStrategy::kHybridShard && world != nullptr) {
    auto h = SplitHybrid(*world, 2);
    ASSERT_TRUE(h.ok()) << h.status();
    hybrid = std::move(*h);
    groups.node_local = hybrid.node_local.get();
    groups.cross_node = hybrid.cross_node.get();
  }
  EngineOptions o;
  o.strategy = run.strategy;
  o.ema_decay = run.ema_decay;
  o.adamw.weight_decay = 0.1f;
  auto engine = ShardedEngine::Create(&model, device.get(), groups, o);
  ASSERT_TRUE(engine.ok()) << engine.status();
  ShardedEngine& e = **engine;
  ASSERT_TRUE(e.InitParams(11).ok());
  if (rank == 0) out->has_ema = e.has_ema();
  const size_t total = model.layout().total_numel();
  auto record = [&] {
    std::vector<float> p(total), m(total);
    ASSERT_TRUE(e.GetFullParams(p.data()).ok());
    if (e.has_ema()) {
      ASSERT_TRUE(e.GetFullState("ema", m.data()).ok());
    }
    if (rank == 0) {
      out->params.push_back(p);
      out->ema.push_back(m);
    }
  };
  record();
  std::vector<float> x, target;
  std::vector<int32_t> t, y;
  for (int s = 0; s < run.steps; ++s) {
    FillBatch(s, rank * rows, rows, &x, &target, &t, &y);
    Batch b;
    b.Set("x_t", {DType::kF32, {rows, kH, kW, kC}, x.data()});
    b.Set("target", {DType::kF32, {rows, kH, kW, kC}, target.data()});
    b.Set("timesteps", {DType::kI32, {rows}, t.data()});
    b.Set("labels", {DType::kI32, {rows}, y.data()});
    ASSERT_TRUE(model.SetBatch(b).ok());
    auto loss = e.ForwardBackward(1.0f, true);
    ASSERT_TRUE(loss.ok()) << loss.status();
    auto res = e.Step(5e-2f, *loss);
    ASSERT_TRUE(res.ok()) << res.status();
    record();
  }
}

Trace Train(const EmaRun& run) {
  Trace out;
  if (run.world == 1) {
    RankMain(run, 0, nullptr, &out);
    return out;
  }
  auto store = std::make_shared<HashStore>();
  std::vector<std::thread> threads;
  for (int r = 0; r < run.world; ++r) {
    threads.emplace_back([&, r] {
      GlooOptions g;
      g.store = store;
      g.rank = r;
      g.size = run.world;
      g.timeout = absl::Seconds(60);
      g.hostname = "127.0.0.1";
      auto pg = GlooProcessGroup::Create(g);
      ASSERT_TRUE(pg.ok()) << pg.status();
      RankMain(run, r, pg->get(), &out);
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

TEST(EmaDecayTest, FollowsDiffusersWarmUpThenTheDecay) {
  // diffusers' EMAModel.get_decay with update_after_step 0, inv_gamma 1 off:
  // step = optimization_step - 1; 0 at the first update.
  EXPECT_EQ(EmaDecayAt(0.999f, 0), 0.0f);
  EXPECT_FLOAT_EQ(EmaDecayAt(0.999f, 1), 2.0f / 11.0f);
  EXPECT_FLOAT_EQ(EmaDecayAt(0.999f, 90), 91.0f / 100.0f);
  EXPECT_FLOAT_EQ(EmaDecayAt(0.9f, 90), 0.9f);
  EXPECT_FLOAT_EQ(EmaDecayAt(0.999f, 100000), 0.999f);
}

TEST(EmaTest, EqualsAHandComputedEmaOfTheWeights) {
  EmaRun run;
  run.ema_decay = 0.2f;  // warm-up (t = 1: 2/11) then capped (t >= 2: 0.2)
  const Trace tr = Train(run);
  ASSERT_TRUE(tr.has_ema);
  ASSERT_EQ(tr.params.size(), 7u);
  EXPECT_EQ(tr.ema[0], tr.params[0]);  // starts at the initial weights
  std::vector<double> want(tr.params[0].begin(), tr.params[0].end());
  for (int s = 1; s <= run.steps; ++s) {
    const double d = EmaDecayAt(run.ema_decay, s - 1);
    for (size_t i = 0; i < want.size(); ++i) want[i] = d * want[i] + (1 - d) * tr.params[s][i];
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_NEAR(tr.ema[s][i], want[i], 1e-6 * (1 + std::fabs(want[i])))
          << "step " << s << " i " << i;
    }
  }
  // The weights moved, and the EMA lags behind them.
  EXPECT_GT(RelDiff(tr.params[6], tr.params[0]), 1e-2);
  EXPECT_GT(RelDiff(tr.ema[6], tr.params[6]), 1e-4);
}

TEST(EmaTest, DecayZeroKeepsNoEma) {
  EmaRun run;
  run.ema_decay = 0;
  run.steps = 1;
  const Trace tr = Train(run);
  EXPECT_FALSE(tr.has_ema);
}

struct EmaCase {
  ShardingStrategy strategy;
  int world;
};

class EmaEquivalence : public ::testing::TestWithParam<EmaCase> {};

TEST_P(EmaEquivalence, MatchesOneRank) {
  const Trace ref = Train(EmaRun{});
  const Trace got = Train(EmaRun{GetParam().strategy, GetParam().world});
  ASSERT_EQ(ref.ema.size(), got.ema.size());
  for (size_t s = 0; s < ref.ema.size(); ++s) {
    EXPECT_LE(RelDiff(got.params[s], ref.params[s]), 1e-5) << "step " << s;
    EXPECT_LE(RelDiff(got.ema[s], ref.ema[s]), 1e-5) << "step " << s;
  }
  EXPECT_GT(RelDiff(ref.ema.back(), ref.params.back()), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(
    AllStrategies, EmaEquivalence,
    ::testing::Values(EmaCase{ShardingStrategy::kNoShard, 2},
                      EmaCase{ShardingStrategy::kNoShard, 4},
                      EmaCase{ShardingStrategy::kShardGradOp, 2},
                      EmaCase{ShardingStrategy::kShardGradOp, 4},
                      EmaCase{ShardingStrategy::kFullShard, 2},
                      EmaCase{ShardingStrategy::kFullShard, 4},
                      EmaCase{ShardingStrategy::kHybridShard, 4}),
    [](const auto& info) {
      return std::string(ShardingStrategyName(info.param.strategy)) + "_" +
             std::to_string(info.param.world);
    });

}  // namespace
}  // namespace anvil
