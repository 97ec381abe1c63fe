// comm_bench: bandwidth and latency of the ProcessGroup collectives (Gloo
// backend) against the same collectives called directly on Gloo, in the
// same processes and the same run, in the style of nccl-tests.
//
// Ranks are real processes on loopback TCP: the launcher mode (no --rank)
// starts an in-process RendezvousServer, spawns --world copies of itself
// (each a rank), and they meet through the gRPC store, as workers do.
// Every rank holds two connected meshes: the ProcessGroup's and a raw Gloo
// context (its own store prefix). For each collective and size, calls
// alternate direct / ProcessGroup; every call is timed on rank 0 and each
// side reports its median call (robust to the preemptions of a shared host,
// where a block average is not). Each call is issue-then-Wait: the
// latency-bound pattern.
// --spin_idle_cpus (default on) runs one idle-priority busy loop per CPU in
// the launcher: on a VM, a thread woken on a halted vCPU can wait a whole
// timer tick (4 ms here), which otherwise swamps every small-message number
// (both sides alike, but bimodally).
//  - "bytes" is the whole buffer (all-gather: the gathered output;
//    reduce-scatter: the padded input), as nccl-tests counts it.
//  - algbw = bytes / time; busbw = algbw * 2(n-1)/n (all-reduce),
//    * (n-1)/n (reduce-scatter, all-gather), * 1 (broadcast).
//  - Direct baselines: gloo::allreduce (ring), gloo::allgather (ring, in
//    place), gloo::broadcast, and gloo::ReduceScatterHalvingDoubling (Gloo's
//    only reduce-scatter; built once per size, outside the timing).
//  - ratio: median over adjacent call pairs of t_direct / t_anvil (the
//    busbw ratio, paired so that load drifting on a shared host cancels);
//    overhead: median over pairs of t_anvil - t_direct, in microseconds.
// A second table measures bf16 sums: staged in fp32 (the default) against
// reduced on the wire, next to fp32 of the same element count.
// --device cuda: ProcessGroup(NCCL) against NCCL direct, one process per GPU
// (bench/comm/nccl_bench.h); without a usable GPU or NCCL, one `skipped:`
// line and exit 0.
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gloo/allgather.h"
#include "gloo/allreduce.h"
#include "gloo/barrier.h"
#include "gloo/broadcast.h"
#include "gloo/math.h"
#include "gloo/reduce_scatter.h"
#include "gloo/rendezvous/context.h"
#include "gloo/transport/tcp/device.h"
#include "launcher/server/server.h"
#include "runtime/collectives/gloo/gloo_process_group.h"
#include "runtime/collectives/gloo/gloo_store_adapter.h"
#include "runtime/store/grpc_store.h"
#include "runtime/store/prefix_store.h"
#include "tests/common/process.h"

#if ANVIL_COMM_NCCL
#include "bench/comm/nccl_bench.h"
#endif

ABSL_FLAG(std::string, worlds, "2,4", "world sizes to run, comma separated");
ABSL_FLAG(int64_t, min_bytes, 1024, "smallest message");
ABSL_FLAG(int64_t, max_bytes, int64_t{256} << 20, "largest message");
ABSL_FLAG(int, rounds, 5, "samples per size and side: rounds x (16 MiB / size, in [2, 100])");
ABSL_FLAG(bool, spin_idle_cpus, true,
          "run a nice-19 busy loop per CPU so that idle vCPUs never halt (see above)");
ABSL_FLAG(int64_t, bf16_max_bytes, int64_t{64} << 20, "largest bf16 message (0: skip bf16 table)");
ABSL_FLAG(std::string, device, "cpu",
          "cpu (Gloo, loopback TCP) | cuda (NCCL, one process per GPU)");
ABSL_FLAG(std::string, gpu_worlds, "",
          "--device cuda: world sizes, comma separated (empty: all visible GPUs)");
// Worker mode (set by the launcher mode).
ABSL_FLAG(int, rank, -1, "internal: rank of this worker");
ABSL_FLAG(int, world, 0, "internal: world size of this worker");
ABSL_FLAG(std::string, store, "", "internal: store address");
ABSL_FLAG(std::string, run_id, "", "internal: store run id");

namespace anvil {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(600);

enum class Coll { kAllReduce, kReduceScatter, kAllGather, kBroadcast };

const char* Name(Coll c) {
  switch (c) {
    case Coll::kAllReduce: return "all_reduce";
    case Coll::kReduceScatter: return "reduce_scatter";
    case Coll::kAllGather: return "all_gather";
    case Coll::kBroadcast: return "broadcast";
  }
  return "?";
}

double BusFactor(Coll c, int n) {
  switch (c) {
    case Coll::kAllReduce: return 2.0 * (n - 1) / n;
    case Coll::kReduceScatter:
    case Coll::kAllGather: return static_cast<double>(n - 1) / n;
    case Coll::kBroadcast: return 1.0;
  }
  return 1.0;
}

// Calls per timed block: many for small messages, at least 2.
int Iters(int64_t bytes) {
  return static_cast<int>(
      std::clamp<int64_t>((int64_t{16} << 20) / std::max<int64_t>(bytes, 1), 2, 100));
}

struct Worker {
  int rank;
  int world;
  std::unique_ptr<GlooProcessGroup> pg;
  std::shared_ptr<gloo::Context> direct;
  uint32_t tag = 0;  // a fresh tag per direct collective, as a Gloo user would

  void DirectBarrier() {
    gloo::BarrierOptions o(direct);
    o.setTag(tag++);
    o.setTimeout(absl::ToChronoMilliseconds(kTimeout));
    gloo::barrier(o);
  }

  // Appends the seconds of one call of `op` to `samples`.
  static void TimeCall(const std::function<void()>& op, std::vector<double>* samples) {
    const absl::Time t0 = absl::Now();
    op();
    samples->push_back(absl::ToDoubleSeconds(absl::Now() - t0));
  }
};

void Check(const absl::Status& st) {
  if (!st.ok()) {
    std::fprintf(stderr, "comm_bench: %s\n", st.ToString().c_str());
    std::exit(1);
  }
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

struct Result {
  double direct;    // median seconds per call
  double ours;      // median seconds per call
  double ratio;     // median over call pairs of direct / ours (bandwidth ratio)
  double overhead;  // median over call pairs of ours - direct, seconds
};

Result Measure(Worker& w, Coll c, int64_t bytes, std::vector<float>& buf) {
  const size_t count = bytes / sizeof(float);
  const size_t shard = count / w.world;
  float* data = buf.data();
  const auto timeout = absl::ToChronoMilliseconds(kTimeout);

  std::function<void()> direct;
  std::function<void()> ours;
  std::unique_ptr<gloo::ReduceScatterHalvingDoubling<float>> rs;
  switch (c) {
    case Coll::kAllReduce:
      direct = [&] {
        gloo::AllreduceOptions o(w.direct);
        o.setOutput(data, count);
        o.setTag(w.tag++);
        o.setReduceFunction(static_cast<void (*)(void*, const void*, const void*, size_t)>(
            &gloo::sum<float>));
        o.setTimeout(timeout);
        gloo::allreduce(o);
      };
      ours = [&] { Check(w.pg->AllReduce(data, count, {})->Wait()); };
      break;
    case Coll::kReduceScatter:
      rs = std::make_unique<gloo::ReduceScatterHalvingDoubling<float>>(
          w.direct, std::vector<float*>{data}, static_cast<int>(shard * w.world),
          std::vector<int>(w.world, static_cast<int>(shard)));
      direct = [&] { rs->run(); };
      ours = [&] { Check(w.pg->ReduceScatter(data, shard, {})->Wait()); };
      break;
    case Coll::kAllGather:
      direct = [&] {
        gloo::AllgatherOptions o(w.direct);
        o.setOutput(data, shard * w.world);
        o.setTag(w.tag++);
        o.setTimeout(timeout);
        gloo::allgather(o);
      };
      ours = [&] { Check(w.pg->AllGather(data, shard, {})->Wait()); };
      break;
    case Coll::kBroadcast:
      direct = [&] {
        gloo::BroadcastOptions o(w.direct);
        o.setOutput(data, count);
        o.setRoot(0);
        o.setTag(w.tag++);
        o.setTimeout(timeout);
        gloo::broadcast(o);
      };
      ours = [&] { Check(w.pg->Broadcast(data, count, {})->Wait()); };
      break;
  }
  const int iters = Iters(bytes);
  direct();  // warm-up: connections, page faults, scratch buffers
  ours();
  std::vector<double> sd, so;
  w.DirectBarrier();
  // Alternate the two sides call by call, so that both see the same host
  // conditions (load on a shared machine drifts over seconds).
  // Which side goes first alternates too, so neither inherits a systematic
  // advantage from following the other (warm caches, a peer still busy).
  for (int i = 0; i < iters * absl::GetFlag(FLAGS_rounds); ++i) {
    if (i % 2 == 0) {
      w.TimeCall(direct, &sd);
      w.TimeCall(ours, &so);
    } else {
      w.TimeCall(ours, &so);
      w.TimeCall(direct, &sd);
    }
  }
  std::vector<double> ratios, diffs;
  for (size_t i = 0; i < sd.size(); ++i) {
    ratios.push_back(sd[i] / so[i]);
    diffs.push_back(so[i] - sd[i]);
  }
  return {Median(sd), Median(so), Median(ratios), Median(diffs)};
}

std::vector<int64_t> Sizes(int64_t lo, int64_t hi) {
  std::vector<int64_t> sizes;
  for (int64_t b = lo; b <= hi; b *= 4) sizes.push_back(b);
  return sizes;
}

void RunTables(Worker& w) {
  const int n = w.world;
  const int64_t max_bytes = absl::GetFlag(FLAGS_max_bytes);
  std::vector<float> buf(max_bytes / sizeof(float) + 64, 1.0f);
  if (w.rank == 0) {
    double load[3] = {};
    getloadavg(load, 3);
    std::printf("\n# world %d: %d processes, loopback TCP, fp32, sum; median call, %d rounds; "
                "host load average %.2f\n", n, n, absl::GetFlag(FLAGS_rounds), load[0]);
    std::printf("%-15s %10s %11s %11s %12s %12s %7s %11s\n", "collective", "bytes", "direct_us",
                "anvil_us", "direct_busbw", "anvil_busbw", "ratio", "overhead_us");
    std::printf("%-15s %10s %11s %11s %12s %12s %7s %11s\n", "", "", "", "", "(GB/s)", "(GB/s)",
                "", "");
  }
  for (Coll c : {Coll::kAllReduce, Coll::kReduceScatter, Coll::kAllGather, Coll::kBroadcast}) {
    for (int64_t bytes : Sizes(absl::GetFlag(FLAGS_min_bytes), max_bytes)) {
      // Whole elements per rank, as the sharded runtime pads them.
      const int64_t unit = sizeof(float) * n;
      const int64_t b = std::max<int64_t>(unit, bytes / unit * unit);
      const Result r = Measure(w, c, b, buf);
      if (w.rank == 0) {
        const double f = BusFactor(c, n);
        const double bd = b / r.direct * f / 1e9;
        const double bo = b / r.ours * f / 1e9;
        std::printf("%-15s %10lld %11.1f %11.1f %12.3f %12.3f %7.3f %11.1f\n", Name(c),
                    static_cast<long long>(b), r.direct * 1e6, r.ours * 1e6, bd, bo, r.ratio,
                    r.overhead * 1e6);
        std::fflush(stdout);
      }
    }
  }

  const int64_t bf16_max = std::min(absl::GetFlag(FLAGS_bf16_max_bytes), max_bytes / 2);
  if (bf16_max <= 0) return;
  if (w.rank == 0) {
    std::printf("\n# world %d: bf16 sums (bytes = bf16 buffer); fp32 column moves the same element "
                "count as fp32\n", n);
    std::printf("%-15s %10s %12s %12s %12s %10s\n", "collective", "bytes", "fp32_us",
                "bf16_fp32acc", "bf16_wire", "wire/acc");
  }
  std::vector<uint16_t> hbuf(bf16_max / 2 + 64, 0x3f80);  // 1.0
  for (Coll c : {Coll::kAllReduce, Coll::kReduceScatter}) {
    for (int64_t bytes : Sizes(std::max<int64_t>(absl::GetFlag(FLAGS_min_bytes), 1 << 16), bf16_max)) {
      const size_t count = bytes / 2 / n * n;
      const size_t per = c == Coll::kAllReduce ? count : count / n;
      auto run = [&](DType dt, Accumulation acc) {
        void* p = dt == DType::kF32 ? static_cast<void*>(buf.data()) : hbuf.data();
        return [&, p, dt, acc] {
          if (c == Coll::kAllReduce) {
            Check(w.pg->AllReduce(p, per, {.dtype = dt, .accumulation = acc})->Wait());
          } else {
            Check(w.pg->ReduceScatter(p, per, {.dtype = dt, .accumulation = acc})->Wait());
          }
        };
      };
      auto f32 = run(DType::kF32, Accumulation::kFloat32);
      auto acc = run(DType::kBF16, Accumulation::kFloat32);
      auto wire = run(DType::kBF16, Accumulation::kWireDType);
      f32();
      acc();
      wire();
      const int iters = Iters(bytes);
      std::vector<double> s32, sacc, swire;
      w.DirectBarrier();
      for (int i = 0; i < iters * absl::GetFlag(FLAGS_rounds); ++i) {
        w.TimeCall(f32, &s32);
        w.TimeCall(acc, &sacc);
        w.TimeCall(wire, &swire);
      }
      const double t32 = Median(s32), tacc = Median(sacc), twire = Median(swire);
      if (w.rank == 0) {
        std::printf("%-15s %10lld %12.1f %12.1f %12.1f %10.2f\n", Name(c),
                    static_cast<long long>(count * 2), t32 * 1e6, tacc * 1e6, twire * 1e6,
                    tacc / twire);
        std::fflush(stdout);
      }
    }
  }
}

int WorkerMain() {
  Worker w;
  w.rank = absl::GetFlag(FLAGS_rank);
  w.world = absl::GetFlag(FLAGS_world);
  GrpcStoreOptions so;
  so.address = absl::GetFlag(FLAGS_store);
  so.run_id = absl::GetFlag(FLAGS_run_id);
  auto grpc = GrpcStore::Create(so);
  Check(grpc.status());
  std::shared_ptr<Store> store(std::move(*grpc));
#if ANVIL_COMM_NCCL
  if (absl::GetFlag(FLAGS_device) == "cuda") {
    NcclBenchOptions no;
    no.rank = w.rank;
    no.world = w.world;
    no.store = store;
    no.min_bytes = absl::GetFlag(FLAGS_min_bytes);
    no.max_bytes = absl::GetFlag(FLAGS_max_bytes);
    no.rounds = absl::GetFlag(FLAGS_rounds);
    return NcclBenchWorker(no);
  }
#endif
  GlooOptions go;
  go.store = store;
  go.rank = w.rank;
  go.size = w.world;
  go.timeout = kTimeout;
  go.name = "bench/pg";
  go.hostname = "127.0.0.1";
  auto pg = GlooProcessGroup::Create(go);
  Check(pg.status());
  w.pg = std::move(*pg);

  gloo::transport::tcp::attr attr;
  attr.hostname = "127.0.0.1";
  auto device = gloo::transport::tcp::CreateDevice(attr);
  auto ctx = std::make_shared<gloo::rendezvous::Context>(w.rank, w.world);
  ctx->setTimeout(absl::ToChronoMilliseconds(kTimeout));
  GlooStoreAdapter adapter(std::make_shared<PrefixStore>("bench/direct", store), kTimeout);
  ctx->connectFullMesh(adapter, device);
  w.direct = ctx;

  RunTables(w);
  w.DirectBarrier();
  return 0;
}

// Idle-priority busy loops, one per CPU, stopped on destruction.
class IdleSpinners {
 public:
  explicit IdleSpinners(bool enable) {
    if (!enable) return;
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    for (long i = 0; i < cpus; ++i) {
      const pid_t pid = fork();
      if (pid == 0) {
        // Lowest priority there is, even when the bench runs under chrt.
        sched_param param = {};
        sched_setscheduler(0, SCHED_IDLE, &param);
        setpriority(PRIO_PROCESS, 0, 19);
        for (;;) __asm__ __volatile__("" ::: "memory");  // a side effect: never elided
      }
      if (pid > 0) pids_.push_back(pid);
    }
  }
  ~IdleSpinners() {
    for (pid_t p : pids_) kill(p, SIGKILL);
    for (pid_t p : pids_) waitpid(p, nullptr, 0);
  }

 private:
  std::vector<pid_t> pids_;
};

int LauncherMain(const char* self) {
  const bool cuda = absl::GetFlag(FLAGS_device) == "cuda";
  std::string worlds = absl::GetFlag(FLAGS_worlds);
  if (cuda) {
    std::string why = "this build has no CUDA/NCCL";
    int gpus = 0;
#if ANVIL_COMM_NCCL
    gpus = NcclBenchGpus(&why);
#endif
    if (gpus == 0) {
      std::printf("comm_bench: skipped: --device cuda: %s\n", why.c_str());
      return 0;
    }
    worlds = absl::GetFlag(FLAGS_gpu_worlds).empty() ? absl::StrCat(gpus)
                                                     : absl::GetFlag(FLAGS_gpu_worlds);
  }
  // The spinners keep idle vCPUs awake for loopback TCP; GPU runs need none.
  IdleSpinners spinners(!cuda && absl::GetFlag(FLAGS_spin_idle_cpus));
  RendezvousServer server;
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  auto port = server.Start(options);
  Check(port.status());
  std::printf(cuda ? "# comm_bench: ProcessGroup(NCCL) vs NCCL direct; one process per GPU\n"
                   : "# comm_bench: ProcessGroup(Gloo) vs Gloo direct; ranks are processes on "
                     "loopback\n");
  std::printf("# sizes %lld .. %lld bytes (x4)\n",
              static_cast<long long>(absl::GetFlag(FLAGS_min_bytes)),
              static_cast<long long>(absl::GetFlag(FLAGS_max_bytes)));
  std::fflush(stdout);
  for (absl::string_view ws : absl::StrSplit(worlds, ',')) {
    int n = 0;
    if (!absl::SimpleAtoi(ws, &n) || n < 1) continue;
    std::vector<std::unique_ptr<testing::Process>> workers;
    for (int r = 0; r < n; ++r) {
      std::vector<std::string> args = {
          absl::StrCat("--rank=", r), absl::StrCat("--world=", n),
          absl::StrCat("--store=127.0.0.1:", *port), absl::StrCat("--run_id=bench", n),
          absl::StrCat("--min_bytes=", absl::GetFlag(FLAGS_min_bytes)),
          absl::StrCat("--max_bytes=", absl::GetFlag(FLAGS_max_bytes)),
          absl::StrCat("--rounds=", absl::GetFlag(FLAGS_rounds)),
          absl::StrCat("--bf16_max_bytes=", absl::GetFlag(FLAGS_bf16_max_bytes)),
          absl::StrCat("--device=", absl::GetFlag(FLAGS_device))};
      testing::ProcessOptions options;
      options.inherit_stderr = true;
      auto wp = std::make_unique<testing::Process>(self, args, options);
      if (!wp->started()) {
        std::fprintf(stderr, "comm_bench: cannot spawn %s\n", self);
        return 1;
      }
      workers.push_back(std::move(wp));
    }
    // Relay rank 0's table; the others print nothing.
    while (auto line = workers[0]->ReadLine(absl::Now() + kTimeout)) {
      std::printf("%s\n", line->c_str());
      std::fflush(stdout);
    }
    for (int r = 0; r < n; ++r) {
      const int rc = workers[r]->Wait(absl::Seconds(60)).value_or(-1);
      if (rc != 0) std::fprintf(stderr, "comm_bench: rank %d exited with %d\n", r, rc);
    }
  }
  return 0;
}

}  // namespace
}  // namespace anvil

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_device) != "cpu" && absl::GetFlag(FLAGS_device) != "cuda") {
    std::fprintf(stderr, "comm_bench: --device must be cpu or cuda, got '%s'\n",
                 absl::GetFlag(FLAGS_device).c_str());
    return 2;
  }
  if (absl::GetFlag(FLAGS_rank) >= 0) return anvil::WorkerMain();
  char self[4096] = {};
  const ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (len <= 0) return 1;
  return anvil::LauncherMain(self);
}
