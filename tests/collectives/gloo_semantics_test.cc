// Semantics of the Gloo process group beyond the numbers: asynchrony and
// issue order, Work::Wait deadlines, argument errors that leave the group
// usable, timeouts when a rank does not arrive, fail-fast after a failure,
// and the single rounding of fp32-staged bf16 sums.
#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/collectives/test_util.h"

namespace anvil::testing {
namespace {

TEST(GlooSemanticsTest, AsyncIssueReturnsAtOnceAndRunsInOrder) {
  constexpr int kWorld = 3;
  constexpr int kLate = kWorld - 1;
  constexpr int kOps = 16;
  constexpr size_t kCount = 1 << 18;  // 1 MiB of fp32 per op
  // No clock: the last rank issues only after the others have issued all
  // their ops (or after 20 s). An AllReduce that blocked its caller could not
  // finish before the last rank joins, so the others would still be issuing
  // when it arrives; the timeout keeps that broken case from hanging.
  std::atomic<int> issued{0};
  std::atomic<bool> late_arrived{false};
  RunThreadRanks(kWorld, [&](ProcessGroup& pg) {
    std::vector<std::vector<float>> bufs(kOps, std::vector<float>(kCount));
    for (int k = 0; k < kOps; ++k) {
      for (size_t i = 0; i < kCount; ++i) bufs[k][i] = static_cast<float>(k + pg.rank());
    }
    if (pg.rank() == kLate) {
      const absl::Time deadline = absl::Now() + absl::Seconds(20);
      while (issued.load() < kWorld - 1 && absl::Now() < deadline) {
        absl::SleepFor(absl::Milliseconds(1));
      }
      late_arrived.store(true);
    }
    // Op k on one shared buffer reads op k-1's result: out of order runs
    // would show up in the final value.
    std::vector<float> chain(kCount, 1.0f);
    std::vector<std::shared_ptr<Work>> works;
    for (int k = 0; k < kOps; ++k) {
      works.push_back(pg.AllReduce(bufs[k].data(), kCount, {}));
      works.push_back(pg.AllReduce(chain.data(), kCount, {}));
    }
    if (pg.rank() != kLate) {
      EXPECT_FALSE(late_arrived.load()) << "issuing waited for the last rank to join";
      EXPECT_FALSE(works.front()->IsCompleted()) << "an op finished without the last rank";
      issued.fetch_add(1);
    }
    for (auto it = works.rbegin(); it != works.rend(); ++it) ASSERT_TRUE((*it)->Wait().ok());
    for (int k = 0; k < kOps; ++k) {
      const float want = static_cast<float>(kWorld * k + (0 + 1 + 2));
      EXPECT_EQ(bufs[k][0], want);
      EXPECT_EQ(bufs[k][kCount - 1], want);
    }
    // Each step triples the chain; fp32 rounds 3x the same way as x+x+x.
    float want_chain = 1.0f;
    for (int k = 0; k < kOps; ++k) want_chain *= kWorld;
    EXPECT_EQ(chain[0], want_chain);
    for (auto& w : works) EXPECT_TRUE(w->IsCompleted());
  });
}

// Nobody Waits: the communication thread alone must run the ops (this is
// what overlaps communication with the caller's compute).
TEST(GlooSemanticsTest, OpsProgressWithoutWait) {
  RunThreadRanks(3, [&](ProcessGroup& pg) {
    std::vector<std::vector<float>> bufs(4, std::vector<float>(1 << 16, 1.0f));
    std::vector<std::shared_ptr<Work>> works;
    for (auto& b : bufs) works.push_back(pg.AllReduce(b.data(), b.size(), {}));
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (!works.back()->IsCompleted() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    for (auto& w : works) ASSERT_TRUE(w->IsCompleted());
    for (auto& b : bufs) EXPECT_EQ(b[5], 3.0f);
    for (auto& w : works) EXPECT_TRUE(w->Wait().ok());
  });
}

TEST(GlooSemanticsTest, WaitWithShortDeadlineThenFullWait) {
  RunThreadRanks(2, [&](ProcessGroup& pg) {
    std::vector<float> buf(16, 1.0f);
    if (pg.rank() == 1) absl::SleepFor(absl::Milliseconds(300));
    auto work = pg.AllReduce(buf.data(), buf.size(), {});
    if (pg.rank() == 0) {
      absl::Status early = work->Wait(absl::Milliseconds(20));
      EXPECT_EQ(early.code(), absl::StatusCode::kDeadlineExceeded) << early;
      EXPECT_FALSE(work->IsCompleted());
    }
    ASSERT_TRUE(work->Wait().ok());
    EXPECT_EQ(buf[0], 2.0f);
  });
}

TEST(GlooSemanticsTest, ArgumentErrorsLeaveGroupUsable) {
  RunThreadRanks(2, [&](ProcessGroup& pg) {
    std::vector<uint8_t> bytes(8, 1);
    absl::Status st = pg.AllReduce(bytes.data(), bytes.size(), {.dtype = DType::kU8})->Wait();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
    st = pg.Broadcast(bytes.data(), bytes.size(), {.dtype = DType::kU8, .root = 2})->Wait();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
    st = pg.AllGather(nullptr, 4, {})->Wait();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
    std::vector<int64_t> v(3, pg.rank() + 1);
    ASSERT_TRUE(pg.AllReduce(v.data(), v.size(), {.dtype = DType::kI64})->Wait().ok());
    EXPECT_EQ(v[2], 3);
  });
}

// Rank 2 never joins the first collective: ranks 0 and 1 must fail within
// the timeout, later Works must fail fast, and rank 2, arriving late, must
// find its peers gone instead of hanging.
TEST(GlooSemanticsTest, MissingRankTimesOutThenFailsFast) {
  constexpr absl::Duration kTimeout = absl::Milliseconds(800);
  std::atomic<int> failed{0};
  RunThreadRanks(
      3,
      [&](ProcessGroup& pg) {
        std::vector<float> buf(1000, 1.0f);
        if (pg.rank() == 2) {
          while (failed.load() < 2) absl::SleepFor(absl::Milliseconds(5));
          const absl::Time t0 = absl::Now();
          absl::Status st = pg.AllReduce(buf.data(), buf.size(), {})->Wait();
          EXPECT_FALSE(st.ok());
          EXPECT_LT(absl::Now() - t0, kTimeout + absl::Seconds(1)) << st;
          return;
        }
        const absl::Time t0 = absl::Now();
        absl::Status st = pg.AllReduce(buf.data(), buf.size(), {})->Wait();
        const absl::Duration took = absl::Now() - t0;
        EXPECT_TRUE(st.code() == absl::StatusCode::kDeadlineExceeded ||
                    st.code() == absl::StatusCode::kUnavailable)
            << st;
        EXPECT_NE(st.message().find(".cc:"), std::string::npos) << "no file:line in " << st;
        EXPECT_LT(took, kTimeout + absl::Seconds(1)) << st;
        // Fail fast afterwards, with the first error's code.
        const absl::Time t1 = absl::Now();
        absl::Status later = pg.Barrier({})->Wait();
        EXPECT_EQ(later.code(), st.code()) << later;
        EXPECT_LT(absl::Now() - t1, kTimeout / 2) << "no fail-fast: the barrier waited";
        failed.fetch_add(1);
      },
      {.timeout = kTimeout, .name = "missing"});
}

// Element i: rank (i % N) holds 1.0, the others 2^-9 (a quarter of a bf16
// ulp at 1.0). The exact sum 1 + (N-1) 2^-9 rounds once to 1 + 2^-7 for
// N >= 3; summing hop by hop in bf16 loses the small terms in some orders.
TEST(GlooSemanticsTest, StagedBf16SumRoundsOnce) {
  constexpr int kWorld = 4;
  constexpr size_t kCount = 64;
  RunThreadRanks(kWorld, [&](ProcessGroup& pg) {
    for (bool scatter : {false, true}) {
      const size_t total = scatter ? kCount * kWorld : kCount;
      TypedBuffer buf(DType::kBF16, total);
      for (size_t i = 0; i < total; ++i) {
        buf.Set(i, static_cast<int>(i % kWorld) == pg.rank() ? 1.0 : 0x1.0p-9);
      }
      absl::Status st =
          scatter ? pg.ReduceScatter(buf.data(), kCount, {.dtype = DType::kBF16})->Wait()
                  : pg.AllReduce(buf.data(), kCount, {.dtype = DType::kBF16})->Wait();
      ASSERT_TRUE(st.ok()) << st;
      const size_t begin = scatter ? pg.rank() * kCount : 0;
      for (size_t i = begin; i < begin + kCount; ++i) {
        ASSERT_EQ(buf.Get(i), 1.0 + 0x1.0p-7) << "index " << i << (scatter ? " (reduce-scatter)" : "");
      }
    }
  });
}

}  // namespace
}  // namespace anvil::testing
