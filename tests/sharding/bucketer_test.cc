// Bucketer: DDP buckets cover every unit once, in backward order, as flat
// contiguous ranges of the shard; the first closes at first_bucket_bytes,
// later ones at bucket_bytes; marking units ready in backward order completes
// the buckets in issue order.
#include "runtime/sharding/bucketer.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "models/param_layout.h"

namespace anvil {
namespace {

// Units of 10, 300, 20, 20, 500, 5, 5 floats (W = 1).
ParamLayout Layout() {
  ParamLayout l;
  const size_t sizes[] = {10, 300, 20, 20, 500, 5, 5};
  for (int u = 0; u < 7; ++u) {
    l.BeginUnit(absl::StrCat("u", u));
    l.Add(absl::StrCat("u", u, ".w"), {static_cast<int64_t>(sizes[u])}, false);
  }
  return l;
}

TEST(BucketerTest, BucketsFollowBackwardOrderAndTheTwoSizes) {
  const ParamLayout layout = Layout();
  const ShardLayout shards(layout, 1, 0);
  const Bucketer b(shards, /*first_bucket_bytes=*/40, /*bucket_bytes=*/400);
  // Backward order: u6 (5) u5 (5) | first closes at >= 40 B: u6+u5 = 40 B.
  // Then >= 400 B each: u4 (2000 B) alone; u3+u2+u1 (80+80+1200 B); u0.
  const std::vector<std::pair<int, int>> want = {{5, 6}, {4, 4}, {1, 3}, {0, 0}};
  ASSERT_EQ(b.buckets().size(), want.size());
  size_t covered = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const Bucket& k = b.buckets()[i];
    EXPECT_EQ(k.lo, want[i].first) << i;
    EXPECT_EQ(k.hi, want[i].second) << i;
    EXPECT_EQ(k.offset, shards.unit(k.lo).shard_offset) << i;
    size_t numel = 0;
    for (int u = k.lo; u <= k.hi; ++u) {
      numel += shards.unit(u).numel;
      EXPECT_EQ(b.bucket_of(u), static_cast<int>(i));
    }
    EXPECT_EQ(k.numel, numel) << i;
    covered += numel;
  }
  EXPECT_EQ(covered, layout.total_numel());
}

TEST(BucketerTest, ReadyUnitsCompleteBucketsInIssueOrder) {
  const ParamLayout layout = Layout();
  const ShardLayout shards(layout, 1, 0);
  Bucketer b(shards, 40, 400);
  for (int pass = 0; pass < 2; ++pass) {  // Begin() resets the counts
    b.Begin();
    std::vector<int> done;
    for (int u = 6; u >= 0; --u) {
      const int k = b.MarkReady(u);
      if (k >= 0) done.push_back(k);
    }
    EXPECT_EQ(done, (std::vector<int>{0, 1, 2, 3})) << "pass " << pass;
  }
}

}  // namespace
}  // namespace anvil
