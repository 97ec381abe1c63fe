// RendezvousClient: one launcher's view of the rendezvous service.
// Lifecycle: Create -> Join (blocks until a round including this node
// completes) -> heartbeats run on a background thread from the first
// successful Join until Leave or destruction -> Join again to take part in
// the next round (after a failure, a kRoundReopened or a kNodeWaiting event).
// Invariants: node_id() never changes for one client, so the server treats a
// re-join as the same node; calls are thread-safe; no call blocks longer than
// its stated timeout (Join: options.join_timeout, others: rpc_timeout).
//
// Rounds: the server completes a round at once when max_nodes joined, or
// last_call_timeout after min_nodes joined. A node arriving while a round is
// complete waits for the next one (watchers see kNodeWaiting); a joiner
// beyond max_nodes waits as a spare. A Join from a participant of the
// completed round reopens it (round + 1) and watchers see kRoundReopened.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "launcher/rendezvous/rendezvous_types.h"
#include "runtime/store/grpc_channel.h"

namespace anvil {

struct RendezvousClientOptions {
  std::string endpoint;  // "host[:port]" (--rdzv_endpoint; default port 29400)
  std::string run_id;    // --rdzv_id
  std::string token;     // shared secret; empty when the server has none
  ClientTlsOptions tls;
  // --nnodes as this launcher sees it; 0 = defer to the server. The server
  // refuses (FAILED_PRECONDITION) a join whose non-zero values disagree with
  // its own, so a misconfigured node fails fast instead of hanging.
  int min_nodes = 0;
  int max_nodes = 0;
  // Bound on Join. On expiry Join returns DEADLINE_EXCEEDED with the server's
  // account: how many joined (by host), how many are still missing, and which
  // node_ranks / previous-round members never arrived.
  absl::Duration join_timeout = absl::Seconds(600);
  // Heartbeat period. The server's heartbeat timeout (ServerOptions) decides
  // when a silent node is dead; keep this a few times smaller.
  absl::Duration heartbeat_interval = absl::Seconds(5);
  // Ask for the full rank table in every Join answer. Group rank 0 always
  // gets it (to print it once); with false the others get only their own
  // entry, which keeps a 5,000-node round from sending O(N^2) bytes.
  bool want_rank_table = true;
  // Deadline of the short calls (Heartbeat, Leave, opening a Watch).
  absl::Duration rpc_timeout = absl::Seconds(30);
};

struct WatchOptions {
  // Called on the watch's reader thread for every event, in order. When set,
  // Next() returns nothing (events go to the callback only).
  std::function<void(const RendezvousEvent&)> on_event;
  // Called once when the stream ends (server gone, Cancel, error).
  std::function<void(const absl::Status&)> on_end;
};

// A server-streaming subscription to membership changes of one run. Events
// are pushed by the server as they happen; the first is a kSnapshot.
class RendezvousWatch {
 public:
  virtual ~RendezvousWatch() = default;
  // Blocks until the next event or `timeout`. DEADLINE_EXCEEDED when none
  // came; the stream's final status (UNAVAILABLE, CANCELLED, ...) once it
  // ended and all buffered events were returned.
  virtual absl::StatusOr<RendezvousEvent> Next(absl::Duration timeout) = 0;
  // Ends the stream; Next() then returns CANCELLED. Idempotent.
  virtual void Cancel() = 0;
};

class RendezvousClient {
 public:
  // Validates options (non-empty endpoint, run_id; nproc >= 1) and builds
  // the channel. Does not contact the server.
  static absl::StatusOr<std::unique_ptr<RendezvousClient>> Create(RendezvousClientOptions options,
                                                                  NodeInfo node);
  // Stops the heartbeat thread and cancels watches; does not Leave.
  ~RendezvousClient();

  // Joins the next round and blocks until it completes with this node in it.
  // Errors: DEADLINE_EXCEEDED (join_timeout, names who is missing),
  // PERMISSION_DENIED (token / run id), INVALID_ARGUMENT (node_rank out of
  // range or taken), FAILED_PRECONDITION (nnodes disagree with the server),
  // UNAVAILABLE (server unreachable: "cannot reach rendezvous at host:port").
  absl::StatusOr<RendezvousRound> Join();

  // Tells the server this node is going away (job done or shutting down).
  // Stops heartbeats. Watchers see kNodeLeft; the round is not reopened.
  // Waits at most `timeout` for the server (zero: options.rpc_timeout), so
  // a node leaving after the server is gone is not held up longer.
  absl::Status Leave(absl::Duration timeout = absl::ZeroDuration());

  // Opens a watch stream for this run and returns once the server answered
  // it (the kSnapshot is the first event); PERMISSION_DENIED / UNAVAILABLE
  // otherwise. The watch shares the channel, so it may outlive the client.
  // Destroying it cancels the stream and joins its reader thread.
  absl::StatusOr<std::unique_ptr<RendezvousWatch>> Watch(WatchOptions options = {});

  // OK while heartbeats are acknowledged. NOT_FOUND once the server declared
  // this node dead (it must Join again); UNAVAILABLE while the server is
  // unreachable. OK before the first Join.
  absl::Status HeartbeatStatus() const;

  // The node as announced (node_id filled in by Create when it was empty).
  const NodeInfo& node() const;
  const std::string& node_id() const { return node().node_id; }
  const RendezvousClientOptions& options() const;
  // The last completed round returned by Join, if any.
  absl::StatusOr<RendezvousRound> last_round() const;

 private:
  struct Impl;
  explicit RendezvousClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace anvil
