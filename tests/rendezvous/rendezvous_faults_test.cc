// Rendezvous under faults: a round that never completes (error names who is
// missing), a node that stops heartbeating (declared dead, round reopened,
// watchers told), wrong token / run id, server shutdown, no server at all,
// and a run id reused by a new job after the previous one finished or was
// abandoned.
#include <future>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "runtime/store/grpc_store.h"
#include "tests/rendezvous/rendezvous_test_util.h"

namespace anvil {
namespace {

using testing::AwaitEvent;
using testing::JoinAsync;
using testing::MakeNode;
using testing::RdzvOptions;
using testing::StartServer;

TEST(RendezvousFaultsTest, JoinTimeoutNamesWhoIsMissing) {
  auto server = StartServer(RdzvOptions(3, 3));
  // node-a waits longer than node-b and joins first, so node-b's timeout
  // always fires while node-a is still waiting (the server drops a joiner
  // whose own timeout fired, so equal timeouts would race).
  auto a = MakeNode(*server, {"node-a", "", 1, 0}, absl::Milliseconds(2500));
  auto b = MakeNode(*server, {"node-b", "", 1, 1}, absl::Milliseconds(700));
  auto fa = JoinAsync(a.get());
  absl::SleepFor(absl::Milliseconds(200));
  absl::Time start = absl::Now();
  absl::StatusOr<RendezvousRound> rb = b->Join();
  absl::Duration took = absl::Now() - start;
  absl::StatusOr<RendezvousRound> ra = fa.get();
  ASSERT_EQ(rb.status().code(), absl::StatusCode::kDeadlineExceeded) << rb.status();
  std::string msg(rb.status().message());
  EXPECT_NE(msg.find("did not complete within 700ms"), std::string::npos) << msg;
  EXPECT_NE(msg.find("has 2 of 3 node(s)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("node-a"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing 1 node(s)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no node with --node_rank 2"), std::string::npos) << msg;
  EXPECT_EQ(ra.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(took, absl::Milliseconds(700) + absl::Seconds(1));
}

TEST(RendezvousFaultsTest, SilentNodeIsDeclaredDeadAndWatchersAreTold) {
  absl::Duration hb_timeout = absl::Milliseconds(600);
  auto server = StartServer(RdzvOptions(1, 2, absl::Milliseconds(200), hb_timeout));
  auto a = MakeNode(*server, {"survivor"});
  auto b = MakeNode(*server, {"victim"});
  auto fa = JoinAsync(a.get());
  auto fb = JoinAsync(b.get());
  ASSERT_TRUE(fa.get().ok());
  absl::StatusOr<RendezvousRound> rb = fb.get();
  ASSERT_TRUE(rb.ok());
  int victim_rank = rb->group_rank;
  auto watch = a->Watch();
  ASSERT_TRUE(watch.ok()) << watch.status();
  absl::SleepFor(hb_timeout * 2);  // heartbeats keep both alive
  EXPECT_TRUE(a->HeartbeatStatus().ok()) << a->HeartbeatStatus();

  // kill -9 of the victim's launcher: its heartbeats just stop.
  absl::Time killed = absl::Now();
  b.reset();
  absl::StatusOr<RendezvousEvent> dead =
      AwaitEvent(**watch, RendezvousEventType::kNodeDead, absl::Seconds(5));
  absl::Duration detect = absl::Now() - killed;
  ASSERT_TRUE(dead.ok()) << dead.status();
  EXPECT_EQ(dead->host, "victim");
  EXPECT_EQ(dead->group_rank, victim_rank);
  EXPECT_NE(dead->reason.find("no heartbeat for 600ms"), std::string::npos) << dead->reason;
  EXPECT_GE(detect, hb_timeout - absl::Milliseconds(150));
  EXPECT_LT(detect, hb_timeout + absl::Seconds(1));
  absl::StatusOr<RendezvousEvent> reopened = (*watch)->Next(absl::Seconds(2));
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(reopened->type, RendezvousEventType::kRoundReopened);
  EXPECT_EQ(reopened->round, 1);
  // The survivor carries on alone (MIN 1) in round 1.
  absl::StatusOr<RendezvousRound> r1 = a->Join();
  ASSERT_TRUE(r1.ok()) << r1.status();
  EXPECT_EQ(r1->round, 1);
  EXPECT_EQ(r1->group_world_size, 1);
}

TEST(RendezvousFaultsTest, DeadMembersAreNamedWhenTheNextRoundTimesOut) {
  absl::Duration hb_timeout = absl::Milliseconds(400);
  auto server = StartServer(RdzvOptions(2, 2, absl::Milliseconds(200), hb_timeout));
  auto a = MakeNode(*server, {"survivor"}, absl::Milliseconds(800));
  auto b = MakeNode(*server, {"victim"});
  auto fa = JoinAsync(a.get());
  ASSERT_TRUE(b->Join().ok());
  ASSERT_TRUE(fa.get().ok());
  b.reset();
  absl::SleepFor(hb_timeout + absl::Milliseconds(300));
  absl::StatusOr<RendezvousRound> r = a->Join();
  ASSERT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_NE(r.status().message().find("dead since round 0: victim (no heartbeat"),
            std::string::npos)
      << r.status();
}

// Issue 14, item 5: a standalone server serves a run id again once its job is
// over, with a fresh store (no restart count or keys of the old job).
TEST(RendezvousFaultsTest, RunIdIsServedAgainAfterItsJobFinishedOrWasAbandoned) {
  const absl::Duration hb_timeout = absl::Milliseconds(400);
  auto server = StartServer(RdzvOptions(2, 2, absl::Milliseconds(200), hb_timeout));
  GrpcStoreOptions so;
  so.address = server->address();
  so.run_id = testing::kRunId;
  so.token = testing::kTestToken;
  so.connect_timeout = absl::Seconds(5);
  auto store = GrpcStore::Create(so);
  ASSERT_TRUE(store.ok()) << store.status();
  auto join_pair = [&](const std::string& tag) -> std::vector<std::unique_ptr<RendezvousClient>> {
    std::vector<std::unique_ptr<RendezvousClient>> nodes;
    nodes.push_back(MakeNode(*server, {tag + "-a"}, absl::Seconds(3)));
    nodes.push_back(MakeNode(*server, {tag + "-b"}, absl::Seconds(3)));
    auto fa = JoinAsync(nodes[0].get());
    absl::StatusOr<RendezvousRound> rb = nodes[1]->Join();
    absl::StatusOr<RendezvousRound> ra = fa.get();
    EXPECT_TRUE(ra.ok()) << tag << ": " << ra.status();
    EXPECT_TRUE(rb.ok()) << tag << ": " << rb.status();
    return nodes;
  };
  // Job 1 runs and finishes: its nodes leave.
  auto job1 = join_pair("job1");
  ASSERT_TRUE((*store)->Set("anvil/agent/restarts", "3").ok());
  for (auto& n : job1) ASSERT_TRUE(n->Leave().ok());
  // Job 2 under the same run id forms a round within its 3 s join timeout,
  // and sees none of job 1's keys.
  auto job2 = join_pair("job2");
  EXPECT_EQ((*store)->Get("anvil/agent/restarts", absl::Milliseconds(50)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE((*store)->Set("anvil/agent/restarts", "1").ok());
  // Job 2 is abandoned (killed: no Leave); past the heartbeat timeout a
  // third job gets the run id.
  job2.clear();
  absl::SleepFor(hb_timeout + absl::Milliseconds(300));
  auto job3 = join_pair("job3");
  EXPECT_EQ((*store)->Get("anvil/agent/restarts", absl::Milliseconds(50)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST(RendezvousFaultsTest, WrongTokenOrRunIdIsRefused) {
  auto server = StartServer(RdzvOptions(1, 1));
  auto bad_token = MakeNode(*server, {"a"}, absl::Seconds(2), "wrong");
  absl::StatusOr<RendezvousRound> r = bad_token->Join();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
  EXPECT_NE(r.status().message().find("wrong token"), std::string::npos) << r.status();
  EXPECT_EQ(bad_token->Watch().status().code(), absl::StatusCode::kPermissionDenied);
  auto bad_run = MakeNode(*server, {"a"}, absl::Seconds(2), testing::kTestToken, "other-job");
  r = bad_run->Join();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
  EXPECT_NE(r.status().message().find("not 'other-job'"), std::string::npos) << r.status();
}

TEST(RendezvousFaultsTest, ServerShutdownEndsJoinsAndWatches) {
  auto server = StartServer(RdzvOptions(2, 2));
  auto a = MakeNode(*server, {"a"});
  auto watch = a->Watch();
  ASSERT_TRUE(watch.ok());
  auto fa = JoinAsync(a.get());
  absl::SleepFor(absl::Milliseconds(200));
  server->server->Shutdown();
  absl::StatusOr<RendezvousRound> r = fa.get();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  absl::StatusOr<RendezvousEvent> e =
      AwaitEvent(**watch, RendezvousEventType::kServerShutdown, absl::Seconds(5));
  EXPECT_TRUE(e.ok()) << e.status();
}

TEST(RendezvousFaultsTest, UnreachableEndpointFailsWithinJoinTimeout) {
  testing::TestServer nowhere;
  nowhere.port = 1;  // nothing listens on port 1
  auto a = MakeNode(nowhere, {"a"}, absl::Milliseconds(500));
  absl::Time start = absl::Now();
  absl::StatusOr<RendezvousRound> r = a->Join();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_NE(r.status().message().find("cannot reach rendezvous at 127.0.0.1:1"),
            std::string::npos)
      << r.status();
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500) + absl::Seconds(2));
}

TEST(RendezvousFaultsTest, LeaveWithTheServerGoneIsBoundedByItsTimeout) {
  testing::TestServer nowhere;
  nowhere.port = 1;  // nothing listens on port 1 (rpc_timeout is 5 s)
  auto a = MakeNode(nowhere, {"a"});
  absl::Time start = absl::Now();
  absl::Status st = a->Leave(absl::Milliseconds(300));
  const absl::Duration took = absl::Now() - start;
  EXPECT_FALSE(st.ok());
  EXPECT_LT(took, absl::Milliseconds(300) + absl::Seconds(1)) << st;
}

TEST(RendezvousFaultsTest, JoinOverTls) {
  testing::SelfSignedCert cert;
  if (!testing::MakeSelfSignedCert(cert)) GTEST_SKIP() << "openssl not available";
  ServerOptions o = RdzvOptions(1, 1);
  o.tls.cert_chain_path = cert.cert_path;
  o.tls.private_key_path = cert.key_path;
  auto server = StartServer(o);
  RendezvousClientOptions co;
  co.endpoint = server->address();
  co.run_id = testing::kRunId;
  co.token = testing::kTestToken;
  co.tls.root_cert_path = cert.cert_path;
  auto c = RendezvousClient::Create(co, testing::HostNode("secure"));
  ASSERT_TRUE(c.ok());
  absl::StatusOr<RendezvousRound> r = (*c)->Join();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->group_world_size, 1);
}

}  // namespace
}  // namespace anvil
