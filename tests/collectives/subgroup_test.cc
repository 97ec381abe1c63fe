// Sub-groups on the Gloo backend (ranks as threads): Split ordering by
// (key, rank), hybrid node-local / cross-node groups, and parent and child
// collectives interleaved without interfering.
#include <cstdint>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/collectives/hybrid_groups.h"
#include "tests/collectives/test_util.h"

namespace anvil::testing {
namespace {

TEST(SubgroupTest, SplitOrdersByKeyThenRank) {
  RunThreadRanks(4, [](ProcessGroup& pg) {
    // Colors: {0, 2} -> 0, {1, 3} -> 1; key = -rank reverses the order.
    auto child = pg.Split({.color = pg.rank() % 2, .key = -pg.rank()});
    ASSERT_TRUE(child.ok()) << child.status();
    ProcessGroup& c = **child;
    EXPECT_EQ(c.size(), 2);
    EXPECT_EQ(c.rank(), pg.rank() < 2 ? 1 : 0);
    // Broadcast from child rank 0 = the higher parent rank of each pair.
    std::vector<int32_t> v(3, pg.rank());
    ASSERT_TRUE(c.Broadcast(v.data(), v.size(), {.dtype = DType::kI32, .root = 0})->Wait().ok());
    EXPECT_EQ(v[0], pg.rank() % 2 == 0 ? 2 : 3);
    EXPECT_NE(c.name(), pg.name());
  });
}

TEST(SubgroupTest, NegativeColorIsInvalid) {
  RunThreadRanks(1, [](ProcessGroup& pg) {
    auto child = pg.Split({.color = -1});
    EXPECT_EQ(child.status().code(), absl::StatusCode::kInvalidArgument);
  });
}

TEST(SubgroupTest, HybridGroupsReduceOverTheRightRanks) {
  constexpr int kLocal = 2;
  RunThreadRanks(4, [&](ProcessGroup& pg) {
    auto groups = SplitHybrid(pg, kLocal);
    ASSERT_TRUE(groups.ok()) << groups.status();
    const int node = pg.rank() / kLocal;
    const int local = pg.rank() % kLocal;
    ASSERT_EQ(groups->node_local->size(), 2);
    ASSERT_EQ(groups->cross_node->size(), 2);
    EXPECT_EQ(groups->node_local->rank(), local);
    EXPECT_EQ(groups->cross_node->rank(), node);

    // Interleave world, node-local and cross-node collectives; each reduces
    // 1 << rank so the result names exactly the ranks that took part.
    std::vector<int64_t> w(17, int64_t{1} << pg.rank());
    std::vector<int64_t> a(17, int64_t{1} << pg.rank());
    std::vector<int64_t> b(17, int64_t{1} << pg.rank());
    auto ww = pg.AllReduce(w.data(), w.size(), {.dtype = DType::kI64});
    auto wa = groups->node_local->AllReduce(a.data(), a.size(), {.dtype = DType::kI64});
    auto wb = groups->cross_node->AllReduce(b.data(), b.size(), {.dtype = DType::kI64});
    ASSERT_TRUE(wb->Wait().ok());
    ASSERT_TRUE(wa->Wait().ok());
    ASSERT_TRUE(ww->Wait().ok());
    EXPECT_EQ(w[16], 0b1111);
    EXPECT_EQ(a[16], node == 0 ? 0b0011 : 0b1100);
    EXPECT_EQ(b[16], local == 0 ? 0b0101 : 0b1010);

    // FSDP hybrid step: reduce-scatter inside the node, all-reduce the shard
    // across nodes, all-gather inside the node: every rank ends with the
    // world sum.
    std::vector<float> grad(2 * 5, static_cast<float>(pg.rank() + 1));
    ASSERT_TRUE(groups->node_local->ReduceScatter(grad.data(), 5, {})->Wait().ok());
    float* shard = grad.data() + local * 5;
    ASSERT_TRUE(groups->cross_node->AllReduce(shard, 5, {})->Wait().ok());
    ASSERT_TRUE(groups->node_local->AllGather(grad.data(), 5, {})->Wait().ok());
    for (float g : grad) EXPECT_EQ(g, 1 + 2 + 3 + 4);
  });
}

TEST(SubgroupTest, HybridRejectsNonDividingLocalSize) {
  RunThreadRanks(3, [](ProcessGroup& pg) {
    EXPECT_EQ(SplitHybrid(pg, 2).status().code(), absl::StatusCode::kInvalidArgument);
  });
}

}  // namespace
}  // namespace anvil::testing
