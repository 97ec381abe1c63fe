// RoundState: the rendezvous state machine of one run, independent of gRPC
// transport (the service feeds it requests and relays its answers/events).
//
// States: round r is OPEN (collecting joiners) or COMPLETE (its members are
// running). OPEN -> COMPLETE when max_nodes joined (at once) or
// last_call_timeout after min_nodes joined. COMPLETE -> OPEN (r + 1) when a
// member joins again (restart / scale-up) or a member is declared dead.
// Joiners arriving while COMPLETE, and those beyond max_nodes, wait (as late
// joiners or spares) for the next round. A run id outlives its jobs: when
// every member of the last round has left (the job finished) or been
// declared dead (abandoned), the next joiner starts a new job under the same
// run id: the round is reopened if still COMPLETE, the old membership is
// forgotten and `on_new_job` runs (the run's store is emptied), so nothing
// of the previous job (restart counts, keys) leaks into the next.
//
// Invariants: each Join's callback runs exactly once (round, error or
// timeout) unless CancelJoin ran first; callbacks run without the state lock;
// events reach every subscriber in the order they happened; ranks of a
// completed round are 0..n-1, honour requested node_ranks that fit, and
// otherwise follow (endpoint host first, then host, local_addr, node_id).
// The DeadlineTimer must be stopped before a RoundState is destroyed.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "launcher/server/deadline_timer.h"
#include "launcher/server/server.h"
#include "proto/rendezvous.pb.h"

namespace anvil {

class RoundState {
 public:
  using JoinCallback = std::function<void(absl::StatusOr<proto::RdzvJoinResponse>)>;
  using EventSink = std::function<void(const proto::RdzvEvent&)>;

  // `on_new_job` runs under the state lock (so it must not call back into
  // this RoundState) when a joiner starts a new job; see the file comment.
  RoundState(DeadlineTimer* timer, std::string run_id, const RendezvousSettings& settings,
             std::function<void()> on_new_job = nullptr);
  ~RoundState();

  // `call_id` identifies this Join for CancelJoin; unique per server.
  void Join(uint64_t call_id, const proto::RdzvJoinRequest& request, JoinCallback done);
  // The client went away: forget the joiner, never call its callback.
  void CancelJoin(uint64_t call_id);
  absl::StatusOr<proto::RdzvHeartbeatResponse> Heartbeat(
      const proto::RdzvHeartbeatRequest& request);
  absl::Status Leave(const std::string& node_id);

  // Calls `sink` with a SNAPSHOT now and then with every event, under the
  // state lock (so it must only enqueue), until Unsubscribe returns.
  uint64_t Subscribe(EventSink sink);
  void Unsubscribe(uint64_t id);

  // Fails pending joins with UNAVAILABLE, sends SERVER_SHUTDOWN to
  // subscribers; later calls get UNAVAILABLE.
  void Shutdown();

  int64_t round();
  bool round_complete();
  int num_pending();

 private:
  struct Joiner {
    uint64_t call_id = 0;
    proto::RdzvNode node;
    std::string endpoint_host;
    bool want_rank_table = false;
    JoinCallback done;
    DeadlineTimer::TimerId timer = 0;
    absl::Time joined_at;
    absl::Duration join_timeout;
  };
  struct Member {
    proto::RdzvRankEntry entry;
    proto::RdzvNode node;
    bool left = false;
  };
  // Work to do once the lock is released.
  struct Outbox {
    std::vector<std::pair<JoinCallback, absl::StatusOr<proto::RdzvJoinResponse>>> answers;
    void Flush();
  };

  absl::Status ResolveSize(const proto::RdzvJoinRequest& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckRankClaim(const proto::RdzvNode& node) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool IsMember(const std::string& node_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Every member of the last completed round left or was declared dead.
  bool PreviousJobOver() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartNewJob(const proto::RdzvNode& first) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies the completion rule to the open round.
  void MaybeComplete(Outbox& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Complete(Outbox& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Reopen(const std::string& reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveJoinerAt(size_t index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnJoinTimeout(uint64_t call_id);
  void OnLastCall();
  void Reap();
  std::string MissingReport(const Joiner& who) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Emit(proto::RdzvEvent event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  proto::RdzvEvent Snapshot() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string SizeText() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  DeadlineTimer* const timer_;
  const std::string run_id_;
  const RendezvousSettings settings_;
  const std::function<void()> on_new_job_;

  absl::Mutex mu_;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  int min_nodes_ ABSL_GUARDED_BY(mu_) = 0;
  int max_nodes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t round_ ABSL_GUARDED_BY(mu_) = 0;
  bool complete_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Joiner> joiners_ ABSL_GUARDED_BY(mu_);  // arrival order
  // Members of round_ when complete_, else of round_ - 1 (for "missing").
  std::vector<Member> members_ ABSL_GUARDED_BY(mu_);
  // Last sign of life of every node that completed a Join (not dead/left).
  absl::flat_hash_map<std::string, absl::Time> alive_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::string> dead_ ABSL_GUARDED_BY(mu_);
  DeadlineTimer::TimerId last_call_timer_ ABSL_GUARDED_BY(mu_) = 0;
  DeadlineTimer::TimerId reaper_timer_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, EventSink> sinks_ ABSL_GUARDED_BY(mu_);
  uint64_t next_sink_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace anvil
