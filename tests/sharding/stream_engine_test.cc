// The sharded engine on the stream-emulating test device
// (kernels/testing/stream_test_device.h): every stream a worker thread with
// random delays, ops enqueued on the compute stream, collectives on the comm
// stream, ordered only by the engine's events.
//  - 2 ranks (threads, real Gloo over TCP loopback) train GPT and Llama under
//    NO_SHARD and FULL_SHARD exactly like the same ranks on the plain CPU
//    device (fp32, and GPT with bf16 gathers and gradients; bit for bit:
//    same kernels, same thread count).
//  - Dropping the compute stream's waits for collectives, or the comm
//    stream's waits for the ops that produce its inputs
//    (EngineOptions::debug_skip_event_wait_for_testing), gives a different
//    result: the delays make the race show on every run.
//  - Steady-state steps make no new system allocations (CPU device and the
//    stream device): gathered parameters and gradient buffers come back
//    from the caching allocator.
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/device.h"
#include "kernels/testing/stream_test_device.h"
#include "models/gpt/gpt.h"
#include "models/init_rng.h"
#include "models/llama/llama.h"
#include "runtime/collectives/gloo/gloo_process_group.h"
#include "runtime/sharding/sharded_engine.h"
#include "runtime/store/hash_store.h"

namespace anvil {
namespace {

constexpr int kVocab = 29;
constexpr int kWorld = 2;

enum class ModelKind { kGpt, kLlama };

struct Spec {
  ModelKind model = ModelKind::kGpt;
  ShardingStrategy strategy = ShardingStrategy::kFullShard;
  bool stream_device = false;
  std::vector<int> max_delay_us = {100, 1000};  // compute, comm
  int debug_skip = kSkipNoWait;
  DType dtype = DType::kF32;  // param_dtype and reduce_dtype
  int steps = 3;
  int micro = 2;      // gradient accumulation
  int rows = 2;       // sequences per rank per micro-batch
  int seq = 8;
};

struct Result {
  std::vector<double> losses, norms;  // rank 0, per step
  std::vector<std::vector<float>> params;  // per rank, at the end
  std::vector<size_t> raw_allocs_step2, raw_allocs_end;  // per rank
};

std::unique_ptr<TokenModel> MakeModel(ModelKind kind, kernels::Device* d, int batch, int seq,
                                     DType dtype) {
  if (kind == ModelKind::kGpt) {
    auto m = Gpt::Create(GptConfig{2, 2, 12, 8, kVocab}, GptOptions{batch, seq, dtype}, d);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? std::move(*m) : nullptr;
  }
  LlamaConfig c;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_kv_head = 1;
  c.n_embd = 16;
  c.ffn_hidden = 24;
  c.vocab_size = kVocab;
  c.max_seq_len = 8;
  auto m = Llama::Create(c, LlamaOptions{batch, seq, dtype}, d);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::move(*m) : nullptr;
}

void Tokens(int step, int micro, int rank, int n, std::vector<int32_t>* in,
            std::vector<int32_t>* tg) {
  in->resize(n);
  tg->resize(n);
  for (int i = 0; i < n; ++i) {
    const uint64_t h = SplitMix64((static_cast<uint64_t>(step) * 16 + micro * 4 + rank) * 1000003u + i);
    (*in)[i] = static_cast<int32_t>(h % kVocab);
    (*tg)[i] = static_cast<int32_t>((h >> 20) % kVocab);
  }
}

void RankMain(const Spec& spec, int rank, ProcessGroup* world, Result* out) {
  std::unique_ptr<kernels::Device> device;
  if (spec.stream_device) {
    kernels::testing::StreamTestOptions o;
    o.max_delay_us = spec.max_delay_us;
    o.seed = 7 + rank;
    device = kernels::testing::MakeStreamTestDevice(o);
  } else {
    device = kernels::MakeCpuDevice(1);
  }
  auto model = MakeModel(spec.model, device.get(), spec.rows, spec.seq, spec.dtype);
  ASSERT_NE(model, nullptr);
  EngineOptions o;
  o.strategy = spec.strategy;
  o.param_dtype = spec.dtype;
  o.reduce_dtype = spec.dtype;
  o.bucket_bytes = 4096;  // NO_SHARD: several buckets
  o.first_bucket_bytes = 512;
  o.adamw.weight_decay = 0.1f;
  o.grad_clip = 0.5f;  // clipping active: the read-back norm feeds the update
  o.debug_skip_event_wait_for_testing = spec.debug_skip;
  auto engine = ShardedEngine::Create(model.get(), device.get(), {world, nullptr, nullptr}, o);
  ASSERT_TRUE(engine.ok()) << engine.status();
  ShardedEngine& e = **engine;
  ASSERT_TRUE(e.InitParams(42).ok());
  std::vector<int32_t> in, tg;
  for (int s = 0; s < spec.steps; ++s) {
    for (int m = 0; m < spec.micro; ++m) {
      Tokens(s, m, rank, spec.rows * spec.seq, &in, &tg);
      ASSERT_TRUE(model->SetBatch(in.data(), tg.data(), spec.rows, spec.seq).ok());
      ASSERT_TRUE(e.RunMicroBatch(1.0f / spec.micro, m == spec.micro - 1).ok());
    }
    auto res = e.Step(1e-2f);
    ASSERT_TRUE(res.ok()) << res.status();
    if (rank == 0) {
      out->losses.push_back(res->loss);
      out->norms.push_back(res->grad_norm);
    }
    if (s == 1) out->raw_allocs_step2[rank] = device->memory_stats().raw_allocs;
  }
  device->Synchronize();
  out->raw_allocs_end[rank] = device->memory_stats().raw_allocs;
  std::vector<float> full(model->layout().total_numel());
  ASSERT_TRUE(e.GetFullParams(full.data()).ok());
  out->params[rank] = std::move(full);
}

Result Train(const Spec& spec) {
  Result out;
  out.params.resize(kWorld);
  out.raw_allocs_step2.resize(kWorld);
  out.raw_allocs_end.resize(kWorld);
  auto store = std::make_shared<HashStore>();
  std::vector<std::thread> threads;
  for (int r = 0; r < kWorld; ++r) {
    threads.emplace_back([&, r] {
      GlooOptions g;
      g.store = store;
      g.rank = r;
      g.size = kWorld;
      g.timeout = absl::Seconds(60);
      g.hostname = "127.0.0.1";
      auto pg = GlooProcessGroup::Create(g);
      ASSERT_TRUE(pg.ok()) << pg.status();
      RankMain(spec, r, pg->get(), &out);
    });
  }
  for (auto& t : threads) t.join();
  return out;
}

// Largest |a - b| / max(|b|, 1e-3); infinity on a NaN or a size mismatch.
double MaxRelDiff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size() || a.empty()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]) /
                     std::max(std::fabs(static_cast<double>(b[i])), 1e-3);
    if (std::isnan(d)) return INFINITY;
    worst = std::max(worst, d);
  }
  return worst;
}

struct Case {
  ModelKind model;
  ShardingStrategy strategy;
  DType dtype = DType::kF32;
};

class StreamEngine : public ::testing::TestWithParam<Case> {};

TEST_P(StreamEngine, MatchesCpuDeviceBitForBit) {
  Spec cpu{GetParam().model, GetParam().strategy};
  cpu.dtype = GetParam().dtype;
  Spec streams = cpu;
  streams.stream_device = true;
  const Result want = Train(cpu);
  const Result got = Train(streams);
  ASSERT_EQ(got.losses.size(), want.losses.size());
  for (size_t s = 0; s < want.losses.size(); ++s) {
    EXPECT_EQ(got.losses[s], want.losses[s]) << "step " << s;
    EXPECT_EQ(got.norms[s], want.norms[s]) << "step " << s;
    EXPECT_GT(want.norms[s], 0.5) << "clipping should be active at step " << s;
  }
  for (int r = 0; r < kWorld; ++r) {
    ASSERT_EQ(got.params[r].size(), want.params[r].size());
    EXPECT_EQ(std::memcmp(got.params[r].data(), want.params[r].data(),
                          want.params[r].size() * sizeof(float)),
              0)
        << "rank " << r << ": max relative difference " << MaxRelDiff(got.params[r], want.params[r]);
  }
  EXPECT_EQ(want.params[0], want.params[1]) << "ranks disagree on the CPU device";
}

INSTANTIATE_TEST_SUITE_P(
    All, StreamEngine,
    ::testing::Values(Case{ModelKind::kGpt, ShardingStrategy::kNoShard},
                      Case{ModelKind::kGpt, ShardingStrategy::kFullShard},
                      Case{ModelKind::kLlama, ShardingStrategy::kNoShard},
                      Case{ModelKind::kLlama, ShardingStrategy::kFullShard},
                      // bf16 gathers and gradient wires: the conversion paths.
                      Case{ModelKind::kGpt, ShardingStrategy::kFullShard, DType::kBF16},
                      Case{ModelKind::kGpt, ShardingStrategy::kNoShard, DType::kBF16}),
    [](const ::testing::TestParamInfo<Case>& i) {
      return std::string(i.param.model == ModelKind::kGpt ? "Gpt" : "Llama") +
             (i.param.strategy == ShardingStrategy::kNoShard ? "NoShard" : "FullShard") +
             (i.param.dtype == DType::kBF16 ? "Bf16" : "");
    });

// A removed event wait must change the result (the test above would then
// fail): the delays make the race happen, not merely allow it.
struct RaceCase {
  ShardingStrategy strategy;
  int skip;
  std::vector<int> max_delay_us;
};

class StreamRace : public ::testing::TestWithParam<RaceCase> {};

TEST_P(StreamRace, MissingWaitGivesAWrongResult) {
  const RaceCase c = GetParam();
  Spec cpu{ModelKind::kGpt, c.strategy};
  const Result want = Train(cpu);
  // Control: the same delays with every wait in place are exact.
  Spec intact = cpu;
  intact.stream_device = true;
  intact.max_delay_us = c.max_delay_us;
  const Result ok = Train(intact);
  for (int r = 0; r < kWorld; ++r) EXPECT_EQ(ok.params[r], want.params[r]) << "rank " << r;
  Spec broken = intact;
  broken.debug_skip = c.skip;
  const Result got = Train(broken);
  double worst = 0;
  for (int r = 0; r < kWorld; ++r) worst = std::max(worst, MaxRelDiff(got.params[r], want.params[r]));
  EXPECT_GT(worst, 1e-3) << "the race did not change the parameters";
}

INSTANTIATE_TEST_SUITE_P(
    All, StreamRace,
    ::testing::Values(
        // Compute reads gathered parameters / reduced gradients before the
        // comm stream (slow) produced them.
        RaceCase{ShardingStrategy::kFullShard, kSkipComputeWaitsComm, {0, 5000}},
        RaceCase{ShardingStrategy::kNoShard, kSkipComputeWaitsComm, {0, 5000}},
        // Collectives read their inputs before the compute stream (slow)
        // wrote them.
        RaceCase{ShardingStrategy::kFullShard, kSkipCommWaitsCompute, {2000, 0}},
        RaceCase{ShardingStrategy::kNoShard, kSkipCommWaitsCompute, {2000, 0}}),
    [](const ::testing::TestParamInfo<RaceCase>& i) {
      return std::string(i.param.strategy == ShardingStrategy::kNoShard ? "NoShard" : "FullShard") +
             (i.param.skip == kSkipComputeWaitsComm ? "ComputeSkipsWait" : "CommSkipsWait");
    });

// Steady state: after step 2 the allocator reaches the system no more.
TEST(StreamEngineMemory, NoSystemAllocationsAfterStepTwo) {
  for (bool stream_device : {false, true}) {
    for (ShardingStrategy st : {ShardingStrategy::kFullShard, ShardingStrategy::kNoShard}) {
      Spec s{ModelKind::kGpt, st};
      s.stream_device = stream_device;
      s.steps = 5;
      const Result r = Train(s);
      for (int k = 0; k < kWorld; ++k) {
        EXPECT_GT(r.raw_allocs_step2[k], 0u);
        EXPECT_EQ(r.raw_allocs_end[k], r.raw_allocs_step2[k])
            << (stream_device ? "stream device" : "cpu device") << ", "
            << ShardingStrategyName(st) << ", rank " << k;
      }
    }
  }
}

}  // namespace
}  // namespace anvil
