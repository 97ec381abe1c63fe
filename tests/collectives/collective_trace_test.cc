// The collective trace (runtime/collectives/collective_trace.h): the
// comparison names the first differing collective, a rank that is behind,
// or a rank that reported nothing; and on a real timeout (two Gloo ranks as
// threads that issued different collectives, 1 s timeout) both ranks'
// errors carry their fingerprint and name the mismatch.
#include "runtime/collectives/collective_trace.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/collectives/gloo/gloo_process_group.h"
#include "runtime/store/hash_store.h"

namespace anvil {
namespace {

std::vector<CollectiveEntry> Seq(std::initializer_list<CollectiveEntry> e) { return e; }

TEST(CollectiveTrace, EncodeDecodeRoundTrip) {
  const auto t = Seq({{1, "allreduce", 64}, {2, "allgather", 4096}});
  EXPECT_EQ(DecodeTrace(EncodeTrace(t)), t);
  EXPECT_TRUE(DecodeTrace("garbage,1:x").empty());
  EXPECT_EQ(TraceFingerprint(t), TraceFingerprint(DecodeTrace(EncodeTrace(t))));
  EXPECT_NE(TraceFingerprint(t), TraceFingerprint(Seq({{1, "allreduce", 64}, {2, "allgather", 4095}})));
}

TEST(CollectiveTrace, CompareNamesTheFirstMismatch) {
  const std::string s = CompareTraces({{0, Seq({{1, "allreduce", 64}, {2, "allreduce", 64}})},
                                       {1, Seq({{1, "allreduce", 64}, {2, "broadcast", 16}})}},
                                      2);
  EXPECT_NE(s.find("mismatch: #2 allreduce 64 B on rank 0 but broadcast 16 B on rank 1"), std::string::npos) << s;
}

TEST(CollectiveTrace, CompareNamesTheRankBehindAndTheSilentOne) {
  const std::string s = CompareTraces({{0, Seq({{1, "allreduce", 64}, {2, "allreduce", 64}})},
                                       {2, Seq({{1, "allreduce", 64}})}},
                                      3);
  EXPECT_NE(s.find("rank 2 is behind: its last collective is #1, rank 0 is in #2"), std::string::npos) << s;
  EXPECT_NE(s.find("rank 1 reported no trace"), std::string::npos) << s;
  EXPECT_NE(CompareTraces({{0, Seq({{1, "barrier", 0}})}, {1, Seq({{1, "barrier", 0}})}}, 2).find("same"),
            std::string::npos);
}

TEST(CollectiveTrace, DescribeKeepsTheLastEntries) {
  CollectiveTrace t("g");
  for (int i = 1; i <= 40; ++i) {
    t.Enter(i, "allreduce", 8);
    t.Exit();
  }
  EXPECT_EQ(t.Recent().size(), CollectiveTrace::kDepth);
  EXPECT_EQ(t.Recent().back().seq, 40u);
  EXPECT_NE(t.Describe().find("40 issued"), std::string::npos) << t.Describe();
  EXPECT_FALSE(CurrentCollective().inside);
  EXPECT_GE(CurrentCollective().issued, 40u);
}

TEST(CollectiveTrace, TimeoutOnDifferentCollectivesNamesTheMismatchOnEveryRank) {
  auto store = std::make_shared<HashStore>();
  std::string errors[2];
  std::vector<std::thread> ranks;
  for (int r = 0; r < 2; ++r) {
    ranks.emplace_back([&, r] {
      GlooOptions o;
      o.store = store;
      o.rank = r;
      o.size = 2;
      o.timeout = absl::Seconds(1);
      o.hostname = "127.0.0.1";
      o.single_node = true;
      auto pg = GlooProcessGroup::Create(o);
      ASSERT_TRUE(pg.ok()) << pg.status();
      float buf[4] = {1, 2, 3, 4};
      ASSERT_TRUE((*pg)->AllReduce(buf, 4, {}).get()->Wait(absl::Seconds(30)).ok());
      // Rank 0 broadcasts where rank 1 all-reduces: neither arrives.
      std::shared_ptr<Work> w = r == 0 ? (*pg)->Broadcast(buf, 4, {.root = 0}) : (*pg)->AllReduce(buf, 4, {});
      absl::Status st = w->Wait(absl::Seconds(30));
      errors[r] = std::string(st.message());
    });
  }
  for (std::thread& t : ranks) t.join();
  for (int r = 0; r < 2; ++r) {
    EXPECT_NE(errors[r].find("fingerprint"), std::string::npos) << errors[r];
    EXPECT_NE(errors[r].find("mismatch: #1 broadcast 16 B on rank 0 but allreduce 16 B on rank 1"), std::string::npos)
        << "rank " << r << ": " << errors[r];
  }
}

}  // namespace
}  // namespace anvil
