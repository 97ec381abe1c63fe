// The collectives matrix on the Gloo backend, ranks as threads: every
// collective x dtype x op x size (0, 1, primes, sizes not divisible by the
// world size) for world sizes 1-4. Integers and data movement are checked
// exactly, float reductions against a double reference (see reference.h).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/collectives/reference.h"
#include "tests/collectives/test_util.h"

namespace anvil::testing {
namespace {

const std::vector<size_t> kSizes = {0, 1, 2, 3, 5, 7, 13, 31, 97, 257, 1031, 4099, 65537};

// Reports at most a few mismatches per rank to keep the log readable.
void Check(const ReduceCase& c, int world, const TypedBuffer& buf, size_t i, int* failures) {
  if (*failures > 5) return;
  std::string err = CheckReduced(c, world, buf.Get(i), buf.GetInt(i), i);
  if (!err.empty()) {
    ++*failures;
    ADD_FAILURE() << err;
  }
}

class GlooMatrixTest : public ::testing::TestWithParam<int> {};

TEST_P(GlooMatrixTest, AllReduce) {
  const int world = GetParam();
  const std::vector<ReduceCase> cases = ReduceCases(kSizes);
  RunThreadRanks(world, [&](ProcessGroup& pg) {
    int failures = 0;
    for (const ReduceCase& c : cases) {
      TypedBuffer buf(c.dtype, c.count);
      for (size_t i = 0; i < c.count; ++i) buf.Set(i, InputValue(c.dtype, c.seed, pg.rank(), i));
      absl::Status st =
          pg.AllReduce(buf.data(), c.count, {.dtype = c.dtype, .op = c.op, .accumulation = c.acc})
              ->Wait();
      ASSERT_TRUE(st.ok()) << Describe(c, world) << ": " << st;
      for (size_t i = 0; i < c.count; ++i) Check(c, world, buf, i, &failures);
    }
  });
}

TEST_P(GlooMatrixTest, ReduceScatter) {
  const int world = GetParam();
  const std::vector<ReduceCase> cases = ReduceCases(kSizes);
  RunThreadRanks(world, [&](ProcessGroup& pg) {
    int failures = 0;
    for (const ReduceCase& c : cases) {
      const size_t shard = c.count;
      TypedBuffer buf(c.dtype, shard * world);
      for (size_t i = 0; i < shard * world; ++i) buf.Set(i, InputValue(c.dtype, c.seed, pg.rank(), i));
      absl::Status st = pg.ReduceScatter(buf.data(), shard,
                                         {.dtype = c.dtype, .op = c.op, .accumulation = c.acc})
                            ->Wait();
      ASSERT_TRUE(st.ok()) << Describe(c, world) << ": " << st;
      for (size_t j = 0; j < shard; ++j) {
        const size_t i = pg.rank() * shard + j;
        Check(c, world, buf, i, &failures);
      }
    }
  });
}

TEST_P(GlooMatrixTest, AllGather) {
  const int world = GetParam();
  RunThreadRanks(world, [&](ProcessGroup& pg) {
    uint64_t seed = 100;
    for (DType t : {DType::kF32, DType::kBF16, DType::kF16, DType::kI32, DType::kI64, DType::kU8}) {
      for (size_t shard : kSizes) {
        ++seed;
        TypedBuffer buf(t, shard * world);
        std::memset(buf.data(), 0xab, shard * world * DTypeSize(t));
        for (size_t j = 0; j < shard; ++j) {
          buf.Set(pg.rank() * shard + j, InputValue(t, seed, pg.rank(), j));
        }
        absl::Status st = pg.AllGather(buf.data(), shard, {.dtype = t})->Wait();
        ASSERT_TRUE(st.ok()) << st;
        int bad = 0;
        for (int r = 0; r < world && bad < 5; ++r) {
          TypedBuffer want(t, shard);
          for (size_t j = 0; j < shard; ++j) want.Set(j, InputValue(t, seed, r, j));
          const size_t bytes = shard * DTypeSize(t);
          if (std::memcmp(buf.bytes() + r * bytes, want.bytes(), bytes) != 0) {
            ++bad;
            ADD_FAILURE() << "allgather " << DTypeName(t) << " shard=" << shard << " world=" << world
                          << ": slice of rank " << r << " differs on rank " << pg.rank();
          }
        }
      }
    }
  });
}

TEST_P(GlooMatrixTest, Broadcast) {
  const int world = GetParam();
  RunThreadRanks(world, [&](ProcessGroup& pg) {
    uint64_t seed = 200;
    for (int root = 0; root < world; ++root) {
      for (DType t : {DType::kF32, DType::kBF16, DType::kI64, DType::kU8}) {
        for (size_t n : kSizes) {
          ++seed;
          TypedBuffer buf(t, n);
          for (size_t i = 0; i < n; ++i) buf.Set(i, InputValue(t, seed, pg.rank(), i));
          absl::Status st = pg.Broadcast(buf.data(), n, {.dtype = t, .root = root})->Wait();
          ASSERT_TRUE(st.ok()) << st;
          TypedBuffer want(t, n);
          for (size_t i = 0; i < n; ++i) want.Set(i, InputValue(t, seed, root, i));
          EXPECT_EQ(std::memcmp(buf.bytes(), want.bytes(), n * DTypeSize(t)), 0)
              << "broadcast " << DTypeName(t) << " n=" << n << " root=" << root << " world=" << world
              << " rank " << pg.rank();
        }
      }
    }
  });
}

TEST_P(GlooMatrixTest, Barrier) {
  const int world = GetParam();
  std::atomic<int> arrived{0};
  RunThreadRanks(world, [&](ProcessGroup& pg) {
    for (int round = 1; round <= 5; ++round) {
      // Stagger arrivals so that a barrier that does not wait would be seen.
      absl::SleepFor(absl::Milliseconds(5 * pg.rank()));
      arrived.fetch_add(1);
      ASSERT_TRUE(pg.Barrier({})->Wait().ok());
      EXPECT_GE(arrived.load(), round * world) << "rank " << pg.rank() << " left barrier early";
      ASSERT_TRUE(pg.Barrier({})->Wait().ok());
    }
  });
}

INSTANTIATE_TEST_SUITE_P(WorldSize, GlooMatrixTest, ::testing::Values(1, 2, 3, 4),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return absl::StrCat("N", info.param);
                         });

}  // namespace
}  // namespace anvil::testing
