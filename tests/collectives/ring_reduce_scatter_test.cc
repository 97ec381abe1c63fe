// The Gloo backend's reduce-scatter algorithms on raw Gloo contexts: the
// ring with tiny segment limits, so that chunks span many segments and the
// two-in-flight pipeline wraps around (the ProcessGroup matrix mostly sees
// one or two segments per chunk), the direct one-step algorithm, and
// recursive halving (power-of-two sizes, also with tiny segments), all over
// the same chunk sizes, with exact integer sums.
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gloo/rendezvous/context.h"
#include "gloo/transport/tcp/device.h"
#include "gtest/gtest.h"
#include "runtime/collectives/gloo/gloo_store_adapter.h"
#include "runtime/collectives/gloo/direct_reduce_scatter.h"
#include "runtime/collectives/gloo/halving_reduce_scatter.h"
#include "runtime/collectives/gloo/ring_reduce_scatter.h"
#include "runtime/store/hash_store.h"
#include "runtime/store/prefix_store.h"

namespace anvil::collectives_internal {
namespace {

class RingReduceScatterTest : public ::testing::TestWithParam<int> {};

void RunRanks(int n, const std::function<void(const std::shared_ptr<gloo::Context>&)>& fn) {
  auto store = std::make_shared<HashStore>();
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      gloo::transport::tcp::attr attr;
      attr.hostname = "127.0.0.1";
      auto device = gloo::transport::tcp::CreateDevice(attr);
      auto context = std::make_shared<gloo::rendezvous::Context>(r, n);
      context->setTimeout(std::chrono::seconds(10));
      GlooStoreAdapter adapter(std::make_shared<PrefixStore>("rs", store), absl::Seconds(10));
      context->connectFullMesh(adapter, device);
      fn(context);
    });
  }
  for (auto& t : threads) t.join();
}

ReduceScatterArgs IntArgs(std::vector<int32_t>& data, size_t chunk, uint32_t tag) {
  ReduceScatterArgs args;
  args.data = data.data();
  args.chunk_elems = chunk;
  args.elem_size = 4;
  args.reduce = GetReduceFn(DType::kI32, ReduceOp::kSum);
  args.tag = tag;
  args.timeout = std::chrono::seconds(10);
  return args;
}

void Fill(std::vector<int32_t>& data, int rank) {
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<int32_t>(i * 10 + rank);
}

// Chunk `rank` must hold sum over ranks of (i * 10 + r).
void Check(const std::vector<int32_t>& data, size_t chunk, int n, int rank, const char* what) {
  for (size_t j = 0; j < chunk; ++j) {
    const size_t i = rank * chunk + j;
    const int32_t want = static_cast<int32_t>(n * i * 10 + n * (n - 1) / 2);
    ASSERT_EQ(data[i], want) << what << " chunk " << chunk << " rank " << rank << " index " << i;
  }
}

TEST_P(RingReduceScatterTest, ManySegmentsPerChunk) {
  const int n = GetParam();
  RunRanks(n, [n](const std::shared_ptr<gloo::Context>& context) {
    ReduceScatterScratch scratch;
    uint32_t tag = 0;
    for (size_t chunk : {1, 2, 3, 5, 17, 100, 1001}) {
      for (size_t seg_bytes : {4, 8, 12, 40, 1 << 20}) {
        if (chunk * 4 / seg_bytes > 200) continue;  // keep the runtime small
        std::vector<int32_t> data(chunk * n);
        Fill(data, context->rank);
        ReduceScatterArgs args = IntArgs(data, chunk, tag++);
        args.max_segment_bytes = seg_bytes;
        args.min_pipelined_segment_bytes = 4;
        RingReduceScatter(context, args, &scratch);
        Check(data, chunk, n, context->rank, "ring");
      }
    }
  });
}

TEST_P(RingReduceScatterTest, DirectAlgorithmMatches) {
  const int n = GetParam();
  RunRanks(n, [n](const std::shared_ptr<gloo::Context>& context) {
    ReduceScatterScratch scratch;  // shared with the ring, as in the group
    uint32_t tag = 0;
    for (size_t chunk : {1, 2, 3, 5, 17, 100, 1001, 5003}) {
      for (bool ring_first : {false, true}) {
        std::vector<int32_t> data(chunk * n);
        Fill(data, context->rank);
        if (ring_first) RingReduceScatter(context, IntArgs(data, chunk, tag++), &scratch);
        else DirectReduceScatter(context, IntArgs(data, chunk, tag++), &scratch);
        Check(data, chunk, n, context->rank, ring_first ? "ring" : "direct");
      }
    }
  });
}

TEST_P(RingReduceScatterTest, HalvingMatchesWithManySegments) {
  const int n = GetParam();
  if (!IsPowerOfTwo(n)) GTEST_SKIP() << "recursive halving needs 2^k ranks";
  RunRanks(n, [n](const std::shared_ptr<gloo::Context>& context) {
    ReduceScatterScratch scratch;  // shared with the ring, as in the group
    uint32_t tag = 0;
    for (size_t chunk : {1, 2, 3, 5, 17, 100, 1001, 5003}) {
      for (size_t seg_bytes : {4, 12, 40, 1 << 20}) {
        if (chunk * 4 * n / seg_bytes > 400) continue;  // keep the runtime small
        std::vector<int32_t> data(chunk * n);
        Fill(data, context->rank);
        ReduceScatterArgs args = IntArgs(data, chunk, tag++);
        args.max_segment_bytes = seg_bytes;
        HalvingReduceScatter(context, args, &scratch);
        Check(data, chunk, n, context->rank, "halving");
        // The ring on the same scratch right after: slots and buffers do not mix.
        Fill(data, context->rank);
        RingReduceScatter(context, IntArgs(data, chunk, tag++), &scratch);
        Check(data, chunk, n, context->rank, "ring after halving");
      }
    }
  });
}

INSTANTIATE_TEST_SUITE_P(WorldSize, RingReduceScatterTest, ::testing::Values(2, 3, 4, 8),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return absl::StrCat("N", info.param);
                         });

}  // namespace
}  // namespace anvil::collectives_internal
