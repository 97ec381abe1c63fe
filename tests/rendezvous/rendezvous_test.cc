// Rendezvous semantics over a real server: rounds of 2 and 3 nodes,
// deterministic ranks (node_rank honoured, endpoint host first), MIN:MAX with
// last call, spares, late joiners and scale-up through a reopened round.
#include <algorithm>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/rendezvous/rendezvous_test_util.h"

namespace anvil {
namespace {

using testing::AwaitEvent;
using testing::JoinAsync;
using testing::MakeNode;
using testing::NodeSpec;
using testing::RdzvOptions;
using testing::StartServer;

// Joins all nodes concurrently; returns rounds by host.
std::map<std::string, RendezvousRound> JoinAll(
    const std::vector<std::unique_ptr<RendezvousClient>>& nodes) {
  std::vector<std::future<absl::StatusOr<RendezvousRound>>> futures;
  for (const auto& n : nodes) futures.push_back(JoinAsync(n.get()));
  std::map<std::string, RendezvousRound> by_host;
  for (size_t i = 0; i < nodes.size(); ++i) {
    absl::StatusOr<RendezvousRound> r = futures[i].get();
    EXPECT_TRUE(r.ok()) << nodes[i]->node().host << ": " << r.status();
    if (r.ok()) by_host[nodes[i]->node().host] = *r;
  }
  return by_host;
}

TEST(RendezvousTest, TwoNodesFormOneRound) {
  auto server = StartServer(RdzvOptions(2, 2));
  std::vector<std::unique_ptr<RendezvousClient>> nodes;
  nodes.push_back(MakeNode(*server, {"node-b", "127.0.0.2", 3}));
  nodes.push_back(MakeNode(*server, {"node-a", "127.0.0.3", 2}));
  auto rounds = JoinAll(nodes);
  ASSERT_EQ(rounds.size(), 2u);
  const RendezvousRound& a = rounds["node-a"];
  const RendezvousRound& b = rounds["node-b"];
  EXPECT_EQ(a.round, 0);
  EXPECT_EQ(b.round, 0);
  EXPECT_EQ(a.group_world_size, 2);
  EXPECT_EQ(a.world_size, 5);
  // Neither is on the endpoint host (127.0.0.1): sorted by host.
  EXPECT_EQ(a.group_rank, 0);
  EXPECT_EQ(b.group_rank, 1);
  EXPECT_EQ(a.global_rank_offset, 0);
  EXPECT_EQ(b.global_rank_offset, 2);
  EXPECT_EQ(b.local_world_size, 3);
  ASSERT_EQ(b.rank_table.size(), 2u);
  EXPECT_EQ(b.rank_table[0].host, "node-a");
  EXPECT_EQ(b.rank_table[1].local_addr, "127.0.0.2");
  // MASTER_ADDR/PORT come from group rank 0 and agree on every node.
  EXPECT_EQ(a.master_addr, "127.0.0.3");
  EXPECT_EQ(b.master_addr, "127.0.0.3");
  EXPECT_GT(a.master_port, 0);
  EXPECT_EQ(a.master_port, b.master_port);
  std::string table = FormatRankTable(b);
  EXPECT_NE(table.find("group_rank 1  host node-b  addr 127.0.0.2  local ranks 0-2  global "
                       "ranks 2-4  (this node)"),
            std::string::npos)
      << table;
}

TEST(RendezvousTest, ThreeNodesEndpointHostGetsRankZeroRegardlessOfJoinOrder) {
  for (int order = 0; order < 2; ++order) {
    auto server = StartServer(RdzvOptions(3, 3));
    std::vector<NodeSpec> specs = {{"charlie", "127.0.0.4", 1},
                                   {"alpha", "127.0.0.2", 1},
                                   {"zulu", "127.0.0.1", 1}};  // the endpoint's address
    if (order == 1) std::reverse(specs.begin(), specs.end());
    std::vector<std::unique_ptr<RendezvousClient>> nodes;
    for (const NodeSpec& s : specs) nodes.push_back(MakeNode(*server, s));
    auto rounds = JoinAll(nodes);
    EXPECT_EQ(rounds["zulu"].group_rank, 0) << "order " << order;
    EXPECT_EQ(rounds["alpha"].group_rank, 1) << "order " << order;
    EXPECT_EQ(rounds["charlie"].group_rank, 2) << "order " << order;
    EXPECT_EQ(rounds["alpha"].master_addr, "127.0.0.1");
  }
}

TEST(RendezvousTest, RequestedNodeRanksAreHonoured) {
  auto server = StartServer(RdzvOptions(3, 3));
  std::vector<std::unique_ptr<RendezvousClient>> nodes;
  nodes.push_back(MakeNode(*server, {"zulu", "127.0.0.1", 1, 2}));  // endpoint host, asks for 2
  nodes.push_back(MakeNode(*server, {"alpha", "127.0.0.2", 1, 0}));
  nodes.push_back(MakeNode(*server, {"mike", "127.0.0.3", 1, 1}));
  auto rounds = JoinAll(nodes);
  EXPECT_EQ(rounds["zulu"].group_rank, 2);
  EXPECT_EQ(rounds["alpha"].group_rank, 0);
  EXPECT_EQ(rounds["mike"].group_rank, 1);
}

TEST(RendezvousTest, BadNodeRanksAreRefusedAtOnce) {
  auto server = StartServer(RdzvOptions(2, 2));
  auto out_of_range = MakeNode(*server, {"a", "", 1, 2});
  absl::StatusOr<RendezvousRound> r = out_of_range->Join();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_NE(r.status().message().find("--node_rank 2 is out of range"), std::string::npos)
      << r.status();
  auto first = MakeNode(*server, {"first", "", 1, 0});
  auto dup = MakeNode(*server, {"second", "", 1, 0});
  auto pending = JoinAsync(first.get());
  absl::SleepFor(absl::Milliseconds(200));
  absl::StatusOr<RendezvousRound> d = dup->Join();
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << d.status();
  EXPECT_NE(d.status().message().find("already claimed by first"), std::string::npos)
      << d.status();
  auto ok = MakeNode(*server, {"third", "", 1, 1});
  EXPECT_TRUE(ok->Join().ok());
  EXPECT_TRUE(pending.get().ok());
}

TEST(RendezvousTest, MinMaxCompletesAfterLastCall) {
  auto server = StartServer(RdzvOptions(2, 4, absl::Milliseconds(500)));
  std::vector<std::unique_ptr<RendezvousClient>> nodes;
  nodes.push_back(MakeNode(*server, {"a"}));
  nodes.push_back(MakeNode(*server, {"b"}));
  absl::Time start = absl::Now();
  auto rounds = JoinAll(nodes);
  absl::Duration took = absl::Now() - start;
  EXPECT_EQ(rounds["a"].group_world_size, 2);
  EXPECT_GE(took, absl::Milliseconds(450));
  EXPECT_LT(took, absl::Seconds(3));
}

TEST(RendezvousTest, MaxCompletesAtOnce) {
  auto server = StartServer(RdzvOptions(1, 3, absl::Seconds(20)));
  std::vector<std::unique_ptr<RendezvousClient>> nodes;
  for (const char* h : {"a", "b", "c"}) nodes.push_back(MakeNode(*server, {h}));
  absl::Time start = absl::Now();
  auto rounds = JoinAll(nodes);
  EXPECT_EQ(rounds["c"].group_world_size, 3);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

TEST(RendezvousTest, SparesWaitAndFillTheNextRound) {
  auto server = StartServer(RdzvOptions(2, 2));
  auto a = MakeNode(*server, {"a"});
  auto b = MakeNode(*server, {"b"});
  auto spare = MakeNode(*server, {"spare"});
  auto watch = a->Watch();
  ASSERT_TRUE(watch.ok()) << watch.status();
  auto fa = JoinAsync(a.get());
  auto fb = JoinAsync(b.get());
  ASSERT_TRUE(fa.get().ok());
  ASSERT_TRUE(fb.get().ok());
  auto fs = JoinAsync(spare.get());
  absl::StatusOr<RendezvousEvent> waiting =
      AwaitEvent(**watch, RendezvousEventType::kNodeWaiting, absl::Seconds(5));
  ASSERT_TRUE(waiting.ok()) << waiting.status();
  EXPECT_EQ(waiting->host, "spare");
  EXPECT_NE(waiting->reason.find("spare"), std::string::npos) << waiting->reason;
  EXPECT_EQ(fs.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  // a restarts: round 1 opens; spare + a fill it (max 2) at once.
  auto fa2 = JoinAsync(a.get());
  absl::StatusOr<RendezvousEvent> reopened =
      AwaitEvent(**watch, RendezvousEventType::kRoundReopened, absl::Seconds(5));
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(reopened->round, 1);
  absl::StatusOr<RendezvousRound> rs = fs.get();
  absl::StatusOr<RendezvousRound> ra = fa2.get();
  ASSERT_TRUE(rs.ok()) << rs.status();
  ASSERT_TRUE(ra.ok()) << ra.status();
  EXPECT_EQ(rs->round, 1);
  EXPECT_EQ(ra->round, 1);
  EXPECT_EQ(rs->group_world_size, 2);
}

TEST(RendezvousTest, LateJoinerIsAnnouncedAndAdmittedByRestart) {
  auto server = StartServer(RdzvOptions(1, 3, absl::Milliseconds(200)));
  auto a = MakeNode(*server, {"a"});
  auto b = MakeNode(*server, {"b"});
  auto late = MakeNode(*server, {"late"});
  auto fa = JoinAsync(a.get());
  auto fb = JoinAsync(b.get());
  ASSERT_TRUE(fa.get().ok());
  ASSERT_TRUE(fb.get().ok());
  auto watch = b->Watch();
  ASSERT_TRUE(watch.ok());
  absl::StatusOr<RendezvousEvent> snap = (*watch)->Next(absl::Seconds(5));
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->type, RendezvousEventType::kSnapshot);
  EXPECT_TRUE(snap->round_complete);
  EXPECT_EQ(snap->num_nodes, 2);

  auto fl = JoinAsync(late.get());
  absl::StatusOr<RendezvousEvent> w =
      AwaitEvent(**watch, RendezvousEventType::kNodeWaiting, absl::Seconds(5));
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->host, "late");
  EXPECT_EQ(w->num_waiting, 1);
  EXPECT_EQ(w->round, 0);
  // Both members restart (scale-up): round 1 has all three, complete at max.
  auto fa2 = JoinAsync(a.get());
  auto fb2 = JoinAsync(b.get());
  absl::StatusOr<RendezvousRound> rl = fl.get();
  ASSERT_TRUE(rl.ok()) << rl.status();
  EXPECT_EQ(rl->round, 1);
  EXPECT_EQ(rl->group_world_size, 3);
  EXPECT_EQ(fa2.get()->round, 1);
  EXPECT_EQ(fb2.get()->round, 1);
}

TEST(RendezvousTest, BriefAnswersCarryOnlyOwnEntryExceptForRankZero) {
  auto server = StartServer(RdzvOptions(3, 3));
  std::vector<std::unique_ptr<RendezvousClient>> nodes;
  for (const char* h : {"a", "b", "c"}) {
    RendezvousClientOptions o;
    o.endpoint = server->address();
    o.run_id = testing::kRunId;
    o.token = testing::kTestToken;
    o.want_rank_table = false;
    NodeInfo n = testing::HostNode(h);
    n.nproc = 4;
    nodes.push_back(*RendezvousClient::Create(o, n));
  }
  auto rounds = JoinAll(nodes);
  EXPECT_EQ(rounds["a"].rank_table.size(), 3u);  // group rank 0 prints the table
  ASSERT_EQ(rounds["c"].rank_table.size(), 1u);
  EXPECT_EQ(rounds["c"].rank_table[0].group_rank, 2);
  EXPECT_EQ(rounds["c"].global_rank_offset, 8);
  EXPECT_EQ(rounds["c"].local_world_size, 4);
  EXPECT_EQ(rounds["c"].world_size, 12);
}

TEST(RendezvousTest, NnodesTakenFromFirstJoinerWhenServerHasNone) {
  ServerOptions o;  // standalone server started without --nnodes
  auto server = StartServer(o);
  RendezvousClientOptions co;
  co.endpoint = server->address();
  co.run_id = "any";
  co.min_nodes = 2;
  co.max_nodes = 2;
  co.join_timeout = absl::Seconds(5);
  auto a = RendezvousClient::Create(co, testing::HostNode("a"));
  auto b = RendezvousClient::Create(co, testing::HostNode("b"));
  co.min_nodes = co.max_nodes = 3;
  auto c = RendezvousClient::Create(co, testing::HostNode("c"));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  auto fa = JoinAsync(a->get());
  absl::SleepFor(absl::Milliseconds(100));
  absl::StatusOr<RendezvousRound> rc = (*c)->Join();
  EXPECT_EQ(rc.status().code(), absl::StatusCode::kFailedPrecondition) << rc.status();
  EXPECT_NE(rc.status().message().find("--nnodes 3 but run 'any' uses --nnodes 2"),
            std::string::npos)
      << rc.status();
  EXPECT_TRUE((*b)->Join().ok());
  EXPECT_EQ(fa.get()->group_world_size, 2);
}

}  // namespace
}  // namespace anvil
