// The NCCL half of comm_bench (see nccl_bench.h): ProcessGroup(NCCL) against
// NCCL called directly, in the same processes and run, nccl-tests style.
// Invariants: every buffer is device memory on GPU `rank`; both sides run in
// place on the same buffer and the same stream; a timed block is `iters`
// back-to-back calls between two CUDA events (no host sync inside a block),
// and blocks alternate sides so that clock and thermal drift hit both.
#include "bench/comm/nccl_bench.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "runtime/collectives/nccl/nccl_process_group.h"
#include "runtime/store/prefix_store.h"

namespace anvil {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(300);

#define BENCH_CUDA(expr)                                                                    \
  do {                                                                                      \
    const cudaError_t _e = (expr);                                                          \
    if (_e != cudaSuccess) {                                                                \
      std::fprintf(stderr, "comm_bench: %s: %s\n", #expr, cudaGetErrorString(_e));          \
      return 1;                                                                             \
    }                                                                                       \
  } while (0)
#define BENCH_NCCL(expr)                                                                    \
  do {                                                                                      \
    const ncclResult_t _r = (expr);                                                         \
    if (_r != ncclSuccess) {                                                                \
      std::fprintf(stderr, "comm_bench: %s: %s\n", #expr, ncclGetErrorString(_r));          \
      return 1;                                                                             \
    }                                                                                       \
  } while (0)

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

// nccl-tests' bus bandwidth factors.
double BusFactor(Coll c, int n) {
  switch (c) {
    case Coll::kAllReduce: return 2.0 * (n - 1) / n;
    case Coll::kReduceScatter:
    case Coll::kAllGather: return static_cast<double>(n - 1) / n;
    case Coll::kBroadcast: return 1.0;
  }
  return 1.0;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Calls per timed block: many for small messages (launch-bound), few for big.
int Iters(int64_t bytes) {
  return static_cast<int>(
      std::clamp<int64_t>((int64_t{256} << 20) / std::max<int64_t>(bytes, 1), 5, 50));
}

}  // namespace

bool NcclBenchBuilt() { return true; }

int NcclBenchGpus(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    cudaGetLastError();
    *why = e != cudaSuccess ? absl::StrCat("cudaGetDeviceCount: ", cudaGetErrorString(e))
                            : "no CUDA GPU is visible";
    return 0;
  }
  return n;
}

int NcclBenchWorker(const NcclBenchOptions& o) {
  const int rank = o.rank, n = o.world;
  BENCH_CUDA(cudaSetDevice(rank));
  NcclOptions no;
  no.store = o.store;
  no.rank = rank;
  no.size = n;
  no.device = rank;
  no.timeout = kTimeout;
  no.name = "bench/nccl_pg";
  auto pg = NcclProcessGroup::Create(no);
  if (!pg.ok()) {
    std::fprintf(stderr, "comm_bench: rank %d: %s\n", rank, pg.status().ToString().c_str());
    return 1;
  }
  // The direct baseline: a communicator of its own, id through the store.
  PrefixStore store("bench/nccl_direct/", o.store);
  ncclUniqueId id;
  if (rank == 0) {
    BENCH_NCCL(ncclGetUniqueId(&id));
    if (!store.Set("id", std::string_view(id.internal, sizeof(id.internal))).ok()) return 1;
  } else {
    auto bytes = store.Get("id", kTimeout);
    if (!bytes.ok() || bytes->size() != sizeof(id.internal)) return 1;
    std::memcpy(id.internal, bytes->data(), sizeof(id.internal));
  }
  ncclComm_t comm = nullptr;
  BENCH_NCCL(ncclCommInitRank(&comm, n, id, rank));
  cudaStream_t s;
  BENCH_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cudaEvent_t e0, e1;
  BENCH_CUDA(cudaEventCreate(&e0));
  BENCH_CUDA(cudaEventCreate(&e1));
  float* buf = nullptr;
  BENCH_CUDA(cudaMalloc(&buf, o.max_bytes + 64 * n));
  BENCH_CUDA(cudaMemset(buf, 0, o.max_bytes + 64 * n));

  if (rank == 0) {
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, 0);
    int nccl_version = 0;
    ncclGetVersion(&nccl_version);
    std::printf("\n# world %d: %d GPU(s) (%s), NCCL %d, fp32 sum, in place; mean call of a "
                "block, median of %d blocks per side%s\n",
                n, n, prop.name, nccl_version, o.rounds,
                n == 1 ? "; world 1: busbw is 0 by nccl-tests' formula, algbw is a local copy"
                       : "");
    std::printf("%-15s %10s %11s %11s %12s %12s %12s %7s\n", "collective", "bytes", "direct_us",
                "anvil_us", "direct_algbw", "direct_busbw", "anvil_busbw", "ratio");
    std::printf("%-15s %10s %11s %11s %12s %12s %12s %7s\n", "", "", "", "", "(GB/s)", "(GB/s)",
                "(GB/s)", "");
  }
  int failed = 0;
  for (Coll c : {Coll::kAllReduce, Coll::kReduceScatter, Coll::kAllGather, Coll::kBroadcast}) {
    for (int64_t bytes = o.min_bytes; bytes <= o.max_bytes; bytes *= 4) {
      const int64_t unit = static_cast<int64_t>(sizeof(float)) * n;
      const int64_t b = std::max<int64_t>(unit, bytes / unit * unit);
      const size_t count = b / sizeof(float), shard = count / n;
      float* mine = buf + rank * shard;
      std::function<ncclResult_t()> direct;
      std::function<absl::Status()> ours;
      switch (c) {
        case Coll::kAllReduce:
          direct = [&] { return ncclAllReduce(buf, buf, count, ncclFloat, ncclSum, comm, s); };
          ours = [&] { return (*pg)->AllReduce(buf, count, {.stream = s})->Wait(); };
          break;
        case Coll::kReduceScatter:
          direct = [&] { return ncclReduceScatter(buf, mine, shard, ncclFloat, ncclSum, comm, s); };
          ours = [&] { return (*pg)->ReduceScatter(buf, shard, {.stream = s})->Wait(); };
          break;
        case Coll::kAllGather:
          direct = [&] { return ncclAllGather(mine, buf, shard, ncclFloat, comm, s); };
          ours = [&] { return (*pg)->AllGather(buf, shard, {.stream = s})->Wait(); };
          break;
        case Coll::kBroadcast:
          direct = [&] { return ncclBroadcast(buf, buf, count, ncclFloat, 0, comm, s); };
          ours = [&] { return (*pg)->Broadcast(buf, count, {.stream = s})->Wait(); };
          break;
      }
      const int iters = Iters(b);
      // One timed block of `iters` calls of one side; seconds per call.
      auto block = [&](bool anvil_side, double* per_call) -> int {
        BENCH_CUDA(cudaEventRecord(e0, s));
        for (int i = 0; i < iters; ++i) {
          if (anvil_side) {
            const absl::Status st = ours();
            if (!st.ok()) {
              std::fprintf(stderr, "comm_bench: rank %d: %s\n", rank, st.ToString().c_str());
              return 1;
            }
          } else {
            BENCH_NCCL(direct());
          }
        }
        BENCH_CUDA(cudaEventRecord(e1, s));
        BENCH_CUDA(cudaEventSynchronize(e1));
        float ms = 0;
        BENCH_CUDA(cudaEventElapsedTime(&ms, e0, e1));
        *per_call = ms / 1e3 / iters;
        return 0;
      };
      double t = 0;
      if (block(false, &t) != 0 || block(true, &t) != 0) return 1;  // warm-up
      std::vector<double> sd, so, ratios;
      for (int r = 0; r < o.rounds; ++r) {
        double td = 0, ta = 0;
        const bool anvil_first = r % 2 == 1;
        if (block(anvil_first, anvil_first ? &ta : &td) != 0) return 1;
        if (block(!anvil_first, anvil_first ? &td : &ta) != 0) return 1;
        sd.push_back(td);
        so.push_back(ta);
        ratios.push_back(td / ta);
      }
      if (rank == 0) {
        const double f = BusFactor(c, n), td = Median(sd), ta = Median(so);
        std::printf("%-15s %10lld %11.1f %11.1f %12.2f %12.2f %12.2f %7.3f\n", Name(c),
                    static_cast<long long>(b), td * 1e6, ta * 1e6, b / td / 1e9, b / td * f / 1e9,
                    b / ta * f / 1e9, Median(ratios));
        std::fflush(stdout);
      }
    }
  }
  cudaFree(buf);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  ncclCommDestroy(comm);
  pg->reset();
  cudaStreamDestroy(s);
  return failed;
}

}  // namespace anvil
