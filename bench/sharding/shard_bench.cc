// shard_bench: whole-job training throughput of the sharded runtime on the
// standard CPU config, per strategy, as real processes over loopback.
//
// For each strategy: 1 rank x 2 threads (reference) and 2 ranks x 1 thread,
// same per-rank batch. Each rank reports ms/step, its peak RSS, and how much
// communication the overlapped schedule hides: the same steps are run again
// with every collective waited for right after it is issued (no overlap);
// the time blocked there is the communication time C, the time blocked in
// the overlapped run is the exposed part E, hidden = 1 - E / C, from the
// means over ranks. Ranks meet at every step, so a rank whose compute ran
// faster (scheduling noise: the communication threads share the two cores
// with compute) also blocks waiting for its peer; that is load imbalance,
// not communication. In each step the rank that blocks least is the one on
// the critical path, and "hidden*" counts only its blocking: E* and C* are
// the sums over steps of the per-step minimum over ranks.
// Blocked time is also split by phase (forward / backward / Step).
// Where torch is importable, the same model runs under torchrun + FSDP2
// (gloo, CPU) in the same run, and the ratios are printed.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "kernels/cpu/cpu_info.h"
#include "kernels/device.h"
#include "launcher/server/server.h"
#include "models/gpt/gpt.h"
#include "models/init_rng.h"
#include "runtime/collectives/gloo/gloo_process_group.h"
#include "runtime/collectives/hybrid_groups.h"
#include "runtime/sharding/sharded_engine.h"
#include "runtime/store/grpc_store.h"

ABSL_FLAG(int32_t, n_layer, 6, "L");
ABSL_FLAG(int32_t, n_head, 6, "H");
ABSL_FLAG(int32_t, n_embd, 384, "C");
ABSL_FLAG(int32_t, seq_len, 256, "T");
ABSL_FLAG(int32_t, batch_size, 8, "B per rank");
ABSL_FLAG(int32_t, steps, 6, "timed steps per measurement");
ABSL_FLAG(std::string, strategies, "NO_SHARD,SHARD_GRAD_OP,FULL_SHARD,HYBRID_SHARD", "comma list");
ABSL_FLAG(int32_t, bucket_mb, 4, "NO_SHARD all-reduce bucket size, MiB");
ABSL_FLAG(std::string, dtype, "fp32",
          "fp32 | bf16 (bf16 gathers and compute, fp32 reduction: FSDP2's "
          "MixedPrecisionPolicy(param_dtype=bf16, reduce_dtype=fp32))");
ABSL_FLAG(bool, torch, true, "also run torchrun + FSDP2 when torch is importable");
ABSL_FLAG(std::string, torch_script, "bench/sharding/torch_fsdp_bench.py", "FSDP2 reference");
// Internal: set when this binary runs as one rank of a measured job.
ABSL_FLAG(int32_t, worker_rank, -1, "internal");
ABSL_FLAG(int32_t, worker_world, 1, "internal");
ABSL_FLAG(int32_t, worker_threads, 1, "internal");
ABSL_FLAG(int32_t, worker_port, 0, "internal");
ABSL_FLAG(std::string, worker_strategy, "NO_SHARD", "internal");

namespace anvil {
namespace {

// Blocked time per step in forward / backward / Step (CommStats phases).
struct Phases {
  double fwd = 0, bwd = 0, step = 0;
  double total() const { return fwd + bwd + step; }
};

struct RankReport {
  double ms_per_step = 0;
  Phases exposed;  // per step, overlapped
  Phases comm;     // per step, serialised
  double peak_rss_mb = 0;
  std::vector<double> exposed_steps, comm_steps;  // blocked seconds in each timed step
};

double PeakRssMb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

// Runs `steps` timed steps (after one warm-up) and returns ms/step and the
// exposed wait per step, by phase.
std::pair<double, Phases> TimeSteps(Gpt& model, ShardedEngine& e, int steps,
                                    std::vector<double>* per_step) {
  CommStats c0;
  std::vector<double> ms;
  for (int s = 0; s <= steps; ++s) {
    if (s == 1) c0 = e.comm();
    const double blocked0 = e.comm().exposed_wait_s;
    const auto t0 = std::chrono::steady_clock::now();
    auto loss = e.ForwardBackward(1.0f, true);
    if (!loss.ok()) std::abort();
    if (!e.Step(1e-4f, *loss).ok()) std::abort();
    if (s >= 1) ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    if (s >= 1) per_step->push_back(e.comm().exposed_wait_s - blocked0);
  }
  (void)model;
  std::sort(ms.begin(), ms.end());
  const CommStats c1 = e.comm();
  return {ms[ms.size() / 2], Phases{(c1.exposed_forward_s - c0.exposed_forward_s) / steps,
                                    (c1.exposed_backward_s - c0.exposed_backward_s) / steps,
                                    (c1.exposed_step_s - c0.exposed_step_s) / steps}};
}

RankReport RunRank(const std::string& strategy, int rank, int world, int threads, int port) {
  const GptConfig c{absl::GetFlag(FLAGS_n_layer), absl::GetFlag(FLAGS_n_head),
                    absl::GetFlag(FLAGS_n_embd), absl::GetFlag(FLAGS_seq_len), 256};
  const int B = absl::GetFlag(FLAGS_batch_size), T = c.max_seq_len;
  auto device = kernels::MakeCpuDevice(threads);
  const DType cd = absl::GetFlag(FLAGS_dtype) == "bf16" ? DType::kBF16 : DType::kF32;
  auto model = *Gpt::Create(c, GptOptions{B, T, cd}, device.get());
  std::shared_ptr<Store> store;
  std::unique_ptr<ProcessGroup> pg;
  HybridGroups hybrid;
  EngineGroups groups;
  if (world > 1) {
    GrpcStoreOptions so;
    so.address = absl::StrCat("127.0.0.1:", port);
    so.run_id = "bench";
    store = std::shared_ptr<Store>(std::move(*GrpcStore::Create(so)));
    GlooOptions go;
    go.store = store;
    go.rank = rank;
    go.size = world;
    go.hostname = "127.0.0.1";
    go.name = "pg/" + strategy;
    pg = std::move(*GlooProcessGroup::Create(go));
    groups.world = pg.get();
    if (strategy == "HYBRID_SHARD") {
      // One simulated node of `world` ranks: shard inside it, no replicas.
      hybrid = std::move(*SplitHybrid(*pg, world));
      groups.node_local = hybrid.node_local.get();
      groups.cross_node = hybrid.cross_node.get();
    }
  }
  std::vector<int32_t> in(B * T), tg(B * T);
  for (int i = 0; i < B * T; ++i) {
    in[i] = static_cast<int32_t>(SplitMix64(rank * 7919 + i) % 256);
    tg[i] = static_cast<int32_t>(SplitMix64(rank * 7919 + i + 1) % 256);
  }
  if (!model->SetBatch(in.data(), tg.data(), B, T).ok()) std::abort();
  RankReport r;
  for (bool overlap : {true, false}) {
    EngineOptions o;
    o.strategy = *ParseShardingStrategy(strategy);
    o.overlap = overlap;
    o.bucket_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_bucket_mb)) << 20;
    o.param_dtype = cd;
    auto e = *ShardedEngine::Create(model.get(), device.get(), groups, o);
    if (!e->InitParams(1).ok()) std::abort();
    auto [ms, wait] = TimeSteps(*model, *e, absl::GetFlag(FLAGS_steps),
                                overlap ? &r.exposed_steps : &r.comm_steps);
    if (overlap) {
      r.ms_per_step = ms;
      r.exposed = wait;
    } else {
      r.comm = wait;
    }
  }
  r.peak_rss_mb = PeakRssMb();
  return r;
}

// Starts `world` ranks as fresh processes (this binary, --worker_rank), each
// writing its RankReport to stdout. Fresh processes, not plain fork(): gRPC
// does not survive a fork after it started in the parent (the server runs here).
std::vector<RankReport> RunJob(const char* self, const std::string& strategy, int world,
                               int threads, int port) {
  std::vector<FILE*> pipes;
  for (int rank = 0; rank < world; ++rank) {
    const std::string cmd = absl::StrFormat(
        "%s --worker_rank=%d --worker_world=%d --worker_threads=%d --worker_port=%d "
        "--worker_strategy=%s --n_layer=%d --n_head=%d --n_embd=%d --seq_len=%d --batch_size=%d "
        "--steps=%d --bucket_mb=%d --dtype=%s",
        self, rank, world, threads, port, strategy, absl::GetFlag(FLAGS_n_layer),
        absl::GetFlag(FLAGS_n_head), absl::GetFlag(FLAGS_n_embd), absl::GetFlag(FLAGS_seq_len),
        absl::GetFlag(FLAGS_batch_size), absl::GetFlag(FLAGS_steps), absl::GetFlag(FLAGS_bucket_mb),
        absl::GetFlag(FLAGS_dtype));
    pipes.push_back(popen(cmd.c_str(), "r"));
  }
  std::vector<RankReport> out(world);
  for (int rank = 0; rank < world; ++rank) {
    RankReport& r = out[rank];
    if (pipes[rank] == nullptr ||
        std::fscanf(pipes[rank], "%lf %lf %lf %lf %lf %lf %lf %lf", &r.ms_per_step,
                    &r.exposed.fwd, &r.exposed.bwd, &r.exposed.step, &r.comm.fwd, &r.comm.bwd,
                    &r.comm.step, &r.peak_rss_mb) != 8) {
      std::fprintf(stderr, "shard_bench: rank %d of %s failed\n", rank, strategy.c_str());
    }
    for (auto* v : {&r.exposed_steps, &r.comm_steps}) {
      v->resize(absl::GetFlag(FLAGS_steps));
      for (double& x : *v) {
        if (pipes[rank] == nullptr || std::fscanf(pipes[rank], "%lf", &x) != 1) x = 0;
      }
    }
    if (pipes[rank] != nullptr) pclose(pipes[rank]);
  }
  return out;
}

}  // namespace
}  // namespace anvil

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  using namespace anvil;
  if (absl::GetFlag(FLAGS_worker_rank) >= 0) {
    const RankReport r = RunRank(absl::GetFlag(FLAGS_worker_strategy), absl::GetFlag(FLAGS_worker_rank),
                                 absl::GetFlag(FLAGS_worker_world), absl::GetFlag(FLAGS_worker_threads),
                                 absl::GetFlag(FLAGS_worker_port));
    std::printf("%.6f %.6f %.6f %.6f %.6f %.6f %.6f %.3f\n", r.ms_per_step, r.exposed.fwd,
                r.exposed.bwd, r.exposed.step, r.comm.fwd, r.comm.bwd, r.comm.step,
                r.peak_rss_mb);
    for (const auto* v : {&r.exposed_steps, &r.comm_steps}) {
      for (double x : *v) std::printf("%.6f\n", x);
    }
    return 0;
  }
  setvbuf(stdout, nullptr, _IOLBF, 0);
  RendezvousServer server;
  ServerOptions so;
  so.host = "127.0.0.1";
  so.port = 0;
  auto port = server.Start(so);
  if (!port.ok()) {
    std::fprintf(stderr, "shard_bench: %s\n", std::string(port.status().message()).c_str());
    return 1;
  }
  const int B = absl::GetFlag(FLAGS_batch_size), T = absl::GetFlag(FLAGS_seq_len);
  std::printf("cpu %s; %s\n", kernels::cpu::CpuModelName().c_str(),
              kernels::cpu::CpuIsaSummary().c_str());
  std::printf("config L=%d H=%d C=%d T=%d V=256, batch %d per rank, %s\n",
              absl::GetFlag(FLAGS_n_layer), absl::GetFlag(FLAGS_n_head),
              absl::GetFlag(FLAGS_n_embd), T, B, absl::GetFlag(FLAGS_dtype).c_str());
  const std::vector<RankReport> single = RunJob(argv[0], "NO_SHARD", 1, 2, *port);
  const double single_tps = B * T / (single[0].ms_per_step / 1e3);
  std::printf("1 rank x 2 threads: %.1f ms/step, %.0f tok/s, peak RSS %.0f MB\n",
              single[0].ms_per_step, single_tps, single[0].peak_rss_mb);
  std::printf("%-14s %8s %8s %7s %8s %8s %8s %7s %8s  %s\n", "2 ranks x 1", "ms/step", "tok/s",
              "vs 1x2", "RSS MB", "comm ms", "exposed", "hidden", "hidden*",
              "exposed/comm ms by phase: fwd bwd step");
  double best_tps = 0, best_rss = 0;
  std::string strategies = absl::GetFlag(FLAGS_strategies);
  for (size_t start = 0; start < strategies.size();) {
    size_t end = strategies.find(',', start);
    if (end == std::string::npos) end = strategies.size();
    const std::string st = strategies.substr(start, end - start);
    start = end + 1;
    const std::vector<RankReport> r = RunJob(argv[0], st, 2, 1, *port);
    const double ms = std::max(r[0].ms_per_step, r[1].ms_per_step);
    const double tps = 2 * B * T / (ms / 1e3);
    const double rss = std::max(r[0].peak_rss_mb, r[1].peak_rss_mb);
    auto mean = [&](auto field) { return (field(r[0]) + field(r[1])) / 2 * 1e3; };
    const double comm = mean([](const RankReport& x) { return x.comm.total(); });
    const double exposed = mean([](const RankReport& x) { return x.exposed.total(); });
    double crit_comm = 0, crit_exposed = 0;
    for (size_t i = 0; i < r[0].comm_steps.size(); ++i) {
      crit_comm += std::min(r[0].comm_steps[i], r[1].comm_steps[i]);
      crit_exposed += std::min(r[0].exposed_steps[i], r[1].exposed_steps[i]);
    }
    auto hidden = [](double e, double c) { return c > 0 ? 100.0 * std::max(0.0, 1.0 - e / c) : 100.0; };
    std::printf("%-14s %8.1f %8.0f %6.2fx %8.0f %8.1f %8.1f %6.0f%% %7.0f%%  %.1f/%.1f %.1f/%.1f %.1f/%.1f\n",
                st.c_str(), ms, tps, tps / single_tps, rss, comm, exposed, hidden(exposed, comm),
                hidden(crit_exposed, crit_comm),
                mean([](const RankReport& x) { return x.exposed.fwd; }),
                mean([](const RankReport& x) { return x.comm.fwd; }),
                mean([](const RankReport& x) { return x.exposed.bwd; }),
                mean([](const RankReport& x) { return x.comm.bwd; }),
                mean([](const RankReport& x) { return x.exposed.step; }),
                mean([](const RankReport& x) { return x.comm.step; }));
    if (st == "FULL_SHARD") {
      best_tps = tps;
      best_rss = rss;
    }
  }
  server.Shutdown();
  if (absl::GetFlag(FLAGS_torch) && std::system("python3 -c 'import torch' 2>/dev/null") == 0) {
    const std::string cmd = absl::StrFormat(
        "python3 -m torch.distributed.run --standalone --nproc_per_node=2 %s --L %d --H %d --C %d "
        "--T %d --B %d --steps %d --dtype %s 2>/dev/null",
        absl::GetFlag(FLAGS_torch_script), absl::GetFlag(FLAGS_n_layer), absl::GetFlag(FLAGS_n_head),
        absl::GetFlag(FLAGS_n_embd), T, B, absl::GetFlag(FLAGS_steps), absl::GetFlag(FLAGS_dtype));
    FILE* p = popen(cmd.c_str(), "r");
    char line[512];
    double tps = 0, rss = 0;
    while (p != nullptr && std::fgets(line, sizeof(line), p) != nullptr) {
      std::printf("%s", line);
      if (const char* t = std::strstr(line, "tokens_per_s=")) tps = std::atof(t + 13);
      if (const char* t = std::strstr(line, "peak_rss_mb=")) rss = std::atof(t + 12);
    }
    if (p != nullptr) pclose(p);
    if (tps > 0 && best_tps > 0) {
      std::printf("FULL_SHARD vs torchrun+FSDP2 (%s): tokens/s %.2fx, peak RSS per rank %.2fx\n",
                  absl::GetFlag(FLAGS_dtype).c_str(), best_tps / tps, best_rss / rss);
    }
  }
  return 0;
}
