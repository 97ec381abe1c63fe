// NCCL backend tests. They skip (GTEST_SKIP) without a CUDA device; with one
// device they run world size 1 (every collective, stream ordering, the fp32
// staging kernels, Split) and the bootstrap timeout; with two or more they
// also run a 2-rank sum, ranks as threads, one device each.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/convert.h"
#include "runtime/collectives/nccl/nccl_process_group.h"
#include "runtime/store/hash_store.h"

namespace anvil::testing {
namespace {

int DeviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
}

#define REQUIRE_GPUS(n)                                                    \
  if (DeviceCount() < (n)) GTEST_SKIP() << "needs " << (n) << " CUDA device(s)"

template <typename T>
struct DeviceBuffer {
  explicit DeviceBuffer(size_t n) : n(n) { EXPECT_EQ(cudaMalloc(&ptr, std::max<size_t>(n, 1) * sizeof(T)), cudaSuccess); }
  ~DeviceBuffer() { cudaFree(ptr); }
  void Upload(const std::vector<T>& v, cudaStream_t s) {
    ASSERT_EQ(cudaMemcpyAsync(ptr, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice, s), cudaSuccess);
  }
  std::vector<T> Download(cudaStream_t s) {
    std::vector<T> v(n);
    EXPECT_EQ(cudaMemcpyAsync(v.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost, s), cudaSuccess);
    EXPECT_EQ(cudaStreamSynchronize(s), cudaSuccess);
    return v;
  }
  T* ptr = nullptr;
  size_t n;
};

std::unique_ptr<NcclProcessGroup> MakeGroup(std::shared_ptr<Store> store, int rank, int size,
                                            int device, absl::Duration timeout = absl::Seconds(60)) {
  NcclOptions o;
  o.store = std::move(store);
  o.rank = rank;
  o.size = size;
  o.device = device;
  o.timeout = timeout;
  auto pg = NcclProcessGroup::Create(o);
  EXPECT_TRUE(pg.ok()) << pg.status();
  return pg.ok() ? std::move(*pg) : nullptr;
}

TEST(NcclProcessGroupTest, WorldOneEveryCollectiveOnUserStream) {
  REQUIRE_GPUS(1);
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  auto pg = MakeGroup(std::make_shared<HashStore>(), 0, 1, 0);
  ASSERT_NE(pg, nullptr);
  cudaStream_t s;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  constexpr size_t kN = 1031;
  std::vector<float> host(kN);
  for (size_t i = 0; i < kN; ++i) host[i] = static_cast<float>(i) * 0.5f - 7.0f;
  DeviceBuffer<float> buf(kN);
  buf.Upload(host, s);

  // Each collective is ordered after the upload on `s` and before the
  // download on `s` purely by the stream: no host synchronisation between.
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax}) {
    auto w = pg->AllReduce(buf.ptr, kN, {.op = op, .stream = s});
    ASSERT_TRUE(w->Wait().ok());
  }
  ASSERT_TRUE(pg->ReduceScatter(buf.ptr, kN, {.stream = s})->Wait().ok());
  ASSERT_TRUE(pg->AllGather(buf.ptr, kN, {.stream = s})->Wait().ok());
  ASSERT_TRUE(pg->Broadcast(buf.ptr, kN, {.root = 0, .stream = s})->Wait().ok());
  auto barrier = pg->Barrier({});
  EXPECT_EQ(buf.Download(s), host);  // world 1: every collective is the identity
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!barrier->IsCompleted() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_TRUE(barrier->IsCompleted());
  EXPECT_TRUE(barrier->Wait().ok());
  cudaStreamDestroy(s);
}

TEST(NcclProcessGroupTest, WorldOneStagedBf16AndIntegerAverage) {
  REQUIRE_GPUS(1);
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  auto pg = MakeGroup(std::make_shared<HashStore>(), 0, 1, 0);
  ASSERT_NE(pg, nullptr);
  cudaStream_t s;
  ASSERT_EQ(cudaStreamCreate(&s), cudaSuccess);
  // bf16 values widen and narrow exactly: the staged path must be the identity.
  std::vector<uint16_t> h(257);
  for (size_t i = 0; i < h.size(); ++i) {
    h[i] = kernels::F32ToBF16(static_cast<float>(i) * 0.37f - 40.0f);
  }
  DeviceBuffer<uint16_t> b(h.size());
  b.Upload(h, s);
  for (Accumulation acc : {Accumulation::kFloat32, Accumulation::kWireDType}) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg}) {
      ASSERT_TRUE(pg->AllReduce(b.ptr, h.size(),
                                {.dtype = DType::kBF16, .op = op, .accumulation = acc, .stream = s})
                      ->Wait()
                      .ok());
      ASSERT_TRUE(pg->ReduceScatter(b.ptr, h.size(),
                                    {.dtype = DType::kBF16, .op = op, .accumulation = acc, .stream = s})
                      ->Wait()
                      .ok());
    }
  }
  EXPECT_EQ(b.Download(s), h);
  std::vector<int64_t> hi = {-7, 7, 1LL << 40, -(1LL << 40) - 3};
  DeviceBuffer<int64_t> bi(hi.size());
  bi.Upload(hi, s);
  ASSERT_TRUE(pg->AllReduce(bi.ptr, hi.size(), {.dtype = DType::kI64, .op = ReduceOp::kAvg, .stream = s})
                  ->Wait()
                  .ok());
  EXPECT_EQ(bi.Download(s), hi);
  cudaStreamDestroy(s);
}

TEST(NcclProcessGroupTest, WorldOneSplit) {
  REQUIRE_GPUS(1);
  auto pg = MakeGroup(std::make_shared<HashStore>(), 0, 1, 0);
  ASSERT_NE(pg, nullptr);
  auto child = pg->Split({.color = 3});
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_EQ((*child)->size(), 1);
  EXPECT_EQ((*child)->backend(), "nccl");
  DeviceBuffer<float> buf(16);
  auto w = (*child)->AllReduce(buf.ptr, 16, {});
  EXPECT_TRUE(w->Wait().ok());
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

// Rank 1 of 2 never arrives: rank 0's communicator set-up must fail with
// DeadlineExceeded at its timeout (the non-blocking init is aborted), and a
// lone rank 1 must time out waiting for the unique id in the store.
TEST(NcclProcessGroupTest, BootstrapTimesOutWhenARankIsMissing) {
  REQUIRE_GPUS(1);
  for (int rank : {0, 1}) {
    NcclOptions o;
    o.store = std::make_shared<HashStore>();
    o.rank = rank;
    o.size = 2;
    o.device = 0;
    o.timeout = absl::Seconds(2);
    const absl::Time t0 = absl::Now();
    auto pg = NcclProcessGroup::Create(o);
    const absl::Duration took = absl::Now() - t0;
    ASSERT_FALSE(pg.ok()) << "rank " << rank;
    EXPECT_EQ(pg.status().code(), absl::StatusCode::kDeadlineExceeded) << pg.status();
    EXPECT_LT(took, absl::Seconds(5)) << "rank " << rank;
  }
}

TEST(NcclProcessGroupTest, TwoRanksSum) {
  REQUIRE_GPUS(2);
  auto store = std::make_shared<HashStore>();
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      ASSERT_EQ(cudaSetDevice(r), cudaSuccess);
      auto pg = MakeGroup(store, r, 2, r);
      ASSERT_NE(pg, nullptr);
      cudaStream_t s;
      ASSERT_EQ(cudaStreamCreate(&s), cudaSuccess);
      std::vector<float> h(2 * 101, static_cast<float>(r + 1));
      DeviceBuffer<float> b(h.size());
      b.Upload(h, s);
      ASSERT_TRUE(pg->AllReduce(b.ptr, h.size(), {.stream = s})->Wait().ok());
      ASSERT_TRUE(pg->ReduceScatter(b.ptr, 101, {.stream = s})->Wait().ok());
      ASSERT_TRUE(pg->AllGather(b.ptr, 101, {.stream = s})->Wait().ok());
      for (float x : b.Download(s)) ASSERT_EQ(x, 6.0f);  // (1 + 2) summed, then summed again
      cudaStreamDestroy(s);
    });
  }
  for (auto& t : threads) t.join();
}

}  // namespace
}  // namespace anvil::testing
