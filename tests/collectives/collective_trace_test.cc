// The collective trace (runtime/collectives/collective_trace.h): the
// comparison names the first differing collective, a rank that is behind,
// or a rank that reported nothing; and on a real timeout (two Gloo ranks as
// threads that issued different collectives, 1 s timeout) both ranks'
// errors carry their fingerprint and name the mismatch, also the rank that
// failed because its peer timed out first and closed the connection.
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

// Two Gloo ranks (threads) all-reduce once, then rank 0 broadcasts where
// rank 1 all-reduces: neither arrives. Returns each rank's error message.
struct RankErrors {
  std::string message[2];
  absl::StatusCode code[2];
};
RankErrors IssueDifferentCollectives(absl::Duration rank1_timeout) {
  auto store = std::make_shared<HashStore>();
  RankErrors out;
  std::vector<std::thread> ranks;
  for (int r = 0; r < 2; ++r) {
    ranks.emplace_back([&, r] {
      GlooOptions o;
      o.store = store;
      o.rank = r;
      o.size = 2;
      o.timeout = r == 0 ? absl::Seconds(1) : rank1_timeout;
      o.hostname = "127.0.0.1";
      o.single_node = true;
      auto pg = GlooProcessGroup::Create(o);
      ASSERT_TRUE(pg.ok()) << pg.status();
      float buf[4] = {1, 2, 3, 4};
      ASSERT_TRUE((*pg)->AllReduce(buf, 4, {}).get()->Wait(absl::Seconds(30)).ok());
      std::shared_ptr<Work> w = r == 0 ? (*pg)->Broadcast(buf, 4, {.root = 0}) : (*pg)->AllReduce(buf, 4, {});
      absl::Status st = w->Wait(absl::Seconds(60));
      out.message[r] = std::string(st.message());
      out.code[r] = st.code();
    });
  }
  for (std::thread& t : ranks) t.join();
  return out;
}

constexpr char kMismatch[] = "mismatch: #1 broadcast 16 B on rank 0 but allreduce 16 B on rank 1";

// Both ranks time out at about the same moment; whichever fails second may
// see its connection closed by the first instead of its own timeout.
TEST(CollectiveTrace, TimeoutOnDifferentCollectivesNamesTheMismatchOnEveryRank) {
  const RankErrors e = IssueDifferentCollectives(absl::Seconds(1));
  for (int r = 0; r < 2; ++r) {
    EXPECT_NE(e.message[r].find("fingerprint"), std::string::npos) << e.message[r];
    EXPECT_NE(e.message[r].find(kMismatch), std::string::npos) << "rank " << r << ": " << e.message[r];
  }
}

// Rank 1's own timeout is far away: it fails because rank 0 timed out and
// closed the connection, and still names the mismatch (rank 0 published
// its trace before closing).
TEST(CollectiveTrace, PeerClosedConnectionAfterItsTimeoutStillNamesTheMismatch) {
  const absl::Time start = absl::Now();
  const RankErrors e = IssueDifferentCollectives(absl::Seconds(60));
  EXPECT_LT(absl::Now() - start, absl::Seconds(30)) << "rank 1 waited for its own timeout";
  EXPECT_EQ(e.code[0], absl::StatusCode::kDeadlineExceeded) << e.message[0];
  EXPECT_EQ(e.code[1], absl::StatusCode::kUnavailable) << e.message[1];
  for (int r = 0; r < 2; ++r) {
    EXPECT_NE(e.message[r].find(kMismatch), std::string::npos) << "rank " << r << ": " << e.message[r];
  }
}

}  // namespace
}  // namespace anvil
