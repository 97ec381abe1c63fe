// Helpers for rendezvous tests: a node (RendezvousClient) per call, joins
// run on threads, and a watcher that waits for a given event type.
#pragma once

#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "launcher/rendezvous/rendezvous_client.h"
#include "tests/store/test_server.h"

namespace anvil::testing {

inline constexpr char kRunId[] = "job-42";

struct NodeSpec {
  NodeSpec(std::string h, std::string addr = "", int n = 2, int rank = -1)
      : host(std::move(h)), local_addr(std::move(addr)), nproc(n), node_rank(rank) {}
  std::string host;
  std::string local_addr;
  int nproc;
  int node_rank;
};

inline NodeInfo HostNode(const std::string& host) {
  NodeInfo n;
  n.host = host;
  return n;
}

inline std::unique_ptr<RendezvousClient> MakeNode(const TestServer& server, const NodeSpec& spec,
                                                  absl::Duration join_timeout = absl::Seconds(10),
                                                  const std::string& token = kTestToken,
                                                  const std::string& run_id = kRunId) {
  RendezvousClientOptions o;
  o.endpoint = server.address();
  o.run_id = run_id;
  o.token = token;
  o.join_timeout = join_timeout;
  o.heartbeat_interval = absl::Milliseconds(100);
  o.rpc_timeout = absl::Seconds(5);
  NodeInfo n;
  n.host = spec.host;
  n.local_addr = spec.local_addr;
  n.nproc = spec.nproc;
  n.requested_node_rank = spec.node_rank;
  absl::StatusOr<std::unique_ptr<RendezvousClient>> c = RendezvousClient::Create(o, n);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *std::move(c) : nullptr;
}

inline std::future<absl::StatusOr<RendezvousRound>> JoinAsync(RendezvousClient* c) {
  return std::async(std::launch::async, [c] { return c->Join(); });
}

// Next event of `type`, skipping others; fails the test after `timeout`.
inline absl::StatusOr<RendezvousEvent> AwaitEvent(RendezvousWatch& w, RendezvousEventType type,
                                                  absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::StatusOr<RendezvousEvent> e = w.Next(deadline - absl::Now());
    if (!e.ok() || e->type == type) return e;
  }
}

inline ServerOptions RdzvOptions(int min_nodes, int max_nodes,
                                 absl::Duration last_call = absl::Milliseconds(300),
                                 absl::Duration heartbeat_timeout = absl::Seconds(10)) {
  ServerOptions o;
  o.token = kTestToken;
  o.run_id = kRunId;
  o.rendezvous.min_nodes = min_nodes;
  o.rendezvous.max_nodes = max_nodes;
  o.rendezvous.last_call_timeout = last_call;
  o.rendezvous.heartbeat_timeout = heartbeat_timeout;
  o.rendezvous.join_timeout = absl::Seconds(10);
  return o;
}

}  // namespace anvil::testing
