// Test harness: a training job of N ranks as threads, each a real Trainer
// with its own CPU device, Gloo process groups over loopback TCP and one
// shared in-memory store (a fresh prefix per job, like a launcher attempt).
// Plus helpers to read a checkpoint's tensors back in full.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/device.h"
#include "runtime/checkpoint/manifest.h"
#include "runtime/collectives/gloo/gloo_process_group.h"
#include "runtime/collectives/hybrid_groups.h"
#include "runtime/store/hash_store.h"
#include "runtime/store/prefix_store.h"
#include "runtime/trainer/trainer.h"

namespace anvil::testing {

struct JobSpec {
  std::string strategy = "NO_SHARD";
  int world = 1;
  int local_size = 0;  // HYBRID_SHARD: ranks per simulated node (0: world)
  bool async = true;
  std::string param_dtype = "";  // empty: the config's
};

inline void PrintTo(const JobSpec& s, std::ostream* os) {
  *os << s.strategy << " x" << s.world << (s.async ? "" : " sync") << " " << s.param_dtype;
}

struct RankResult {
  absl::Status status;
  std::vector<std::string> log;
};

// fn runs on each rank's thread with its trainer; its status is the rank's.
using RankFn = std::function<absl::Status(Trainer& trainer, int rank)>;

inline std::vector<RankResult> RunJob(proto::TrainConfig config, const JobSpec& spec,
                                      const RankFn& fn) {
  static std::atomic<int> job_counter{0};
  static auto* base = new std::shared_ptr<Store>(std::make_shared<HashStore>());
  auto store = std::make_shared<PrefixStore>(absl::StrCat("job", job_counter++, "/"), *base);
  config.set_sharding(spec.strategy);
  if (!spec.param_dtype.empty()) config.set_param_dtype(spec.param_dtype);
  config.set_checkpoint_async(spec.async);
  std::vector<RankResult> results(spec.world);
  auto rank_main = [&](int rank) {
    RankResult& out = results[rank];
    std::unique_ptr<ProcessGroup> world;
    HybridGroups hybrid;
    TrainerOptions o;
    if (spec.world > 1) {
      GlooOptions g;
      g.store = store;
      g.rank = rank;
      g.size = spec.world;
      g.timeout = absl::Seconds(60);
      g.hostname = "127.0.0.1";
      auto pg = GlooProcessGroup::Create(g);
      if (!pg.ok()) {
        out.status = pg.status();
        return;
      }
      world = std::move(*pg);
      o.groups.world = world.get();
      if (spec.strategy == "HYBRID_SHARD") {
        auto h = SplitHybrid(*world, spec.local_size > 0 ? spec.local_size : spec.world);
        if (!h.ok()) {
          out.status = h.status();
          return;
        }
        hybrid = std::move(*h);
        o.groups.node_local = hybrid.node_local.get();
        o.groups.cross_node = hybrid.cross_node.get();
      }
      o.store = store;
    }
    o.rank = rank;
    o.world_size = spec.world;
    o.store_timeout = absl::Seconds(60);
    o.log = [&out](const std::string& line) { out.log.push_back(line); };
    auto device = kernels::MakeCpuDevice(1);
    auto trainer = Trainer::Create(config, device.get(), o);
    if (!trainer.ok()) {
      out.status = trainer.status();
      return;
    }
    out.status = fn(**trainer, rank);
  };
  std::vector<std::thread> threads;
  for (int r = 0; r < spec.world; ++r) threads.emplace_back(rank_main, r);
  for (auto& t : threads) t.join();
  return results;
}

inline bool AllOk(const std::vector<RankResult>& rs) {
  for (const RankResult& r : rs) {
    if (!r.status.ok()) {
      ADD_FAILURE() << r.status;
      return false;
    }
  }
  return true;
}

inline bool LogHas(const RankResult& r, const std::string& text) {
  for (const std::string& l : r.log) {
    if (l.find(text) != std::string::npos) return true;
  }
  return false;
}

inline std::string JoinLog(const RankResult& r) {
  std::string s;
  for (const std::string& l : r.log) s += l + "\n";
  return s;
}

// Every tensor of a checkpoint directory, read in full, keyed
// "<state>/<name>" (e.g. "params/wte.weight", "adam_m/wte.weight").
inline std::map<std::string, std::vector<float>> ReadCheckpoint(const std::string& path) {
  std::map<std::string, std::vector<float>> out;
  auto m = ckpt::ReadManifest(path);
  EXPECT_TRUE(m.ok()) << m.status();
  if (!m.ok()) return out;
  for (const proto::TensorEntry& t : m->tensors()) {
    uint64_t n = 1;
    for (int64_t d : t.shape()) n *= static_cast<uint64_t>(d);
    std::vector<float> v(n);
    absl::Status s = ckpt::ReadTensorRange(path, *m, t, 0, n, v.data());
    EXPECT_TRUE(s.ok()) << s;
    out[absl::StrCat(ckpt::EntryStateName(t), "/", t.name())] = std::move(v);
  }
  return out;
}

}  // namespace anvil::testing
