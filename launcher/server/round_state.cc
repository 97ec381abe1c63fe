// RoundState: rendezvous rounds, rank assignment, liveness and events.
#include "launcher/server/round_state.h"

#include <algorithm>
#include <numeric>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace anvil {
namespace {

constexpr size_t kMaxNamed = 16;  // names listed in one error message

std::string NodeLabel(const proto::RdzvNode& n) {
  if (n.local_addr().empty() || n.local_addr() == n.host()) return n.host();
  return absl::StrCat(n.host(), " (", n.local_addr(), ")");
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string s = absl::StrJoin(names.begin(), names.begin() + std::min(names.size(), kMaxNamed),
                                ", ");
  if (names.size() > kMaxNamed) absl::StrAppend(&s, ", ... (", names.size(), " in all)");
  return s;
}

bool MatchesEndpoint(const proto::RdzvNode& n, const std::string& endpoint_host) {
  if (n.is_endpoint_host()) return true;
  if (endpoint_host.empty()) return false;
  return n.host() == endpoint_host || n.local_addr() == endpoint_host;
}

proto::RdzvEvent MakeEvent(proto::RdzvEvent::Type type, int64_t round) {
  proto::RdzvEvent e;
  e.set_type(type);
  e.set_round(round);
  e.set_group_rank(-1);
  return e;
}

}  // namespace

void RoundState::Outbox::Flush() {
  for (auto& [done, result] : answers) done(std::move(result));
  answers.clear();
}

RoundState::RoundState(DeadlineTimer* timer, std::string run_id,
                       const RendezvousSettings& settings, std::function<void()> on_new_job)
    : timer_(timer),
      run_id_(std::move(run_id)),
      settings_(settings),
      on_new_job_(std::move(on_new_job)) {
  absl::MutexLock lock(&mu_);
  min_nodes_ = settings.min_nodes;
  max_nodes_ = settings.max_nodes;
  absl::Duration period =
      std::clamp(settings_.heartbeat_timeout / 8, absl::Milliseconds(10), absl::Seconds(1));
  reaper_timer_ = timer_->Schedule(absl::Now() + period, [this] { Reap(); });
}

RoundState::~RoundState() { Shutdown(); }

std::string RoundState::SizeText() {
  if (min_nodes_ == max_nodes_) return absl::StrCat(min_nodes_);
  return absl::StrCat(min_nodes_, ":", max_nodes_);
}

absl::Status RoundState::ResolveSize(const proto::RdzvJoinRequest& req) {
  if (max_nodes_ == 0) {
    if (req.max_nodes() <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "run '", run_id_, "': the number of nodes is unknown; pass --nnodes to the launcher or "
          "to the rendezvous server"));
    }
    max_nodes_ = req.max_nodes();
    min_nodes_ = req.min_nodes() > 0 ? req.min_nodes() : req.max_nodes();
    if (min_nodes_ > max_nodes_) {
      int min = min_nodes_;
      min_nodes_ = max_nodes_ = 0;
      return absl::InvalidArgumentError(
          absl::StrCat("--nnodes ", min, ":", req.max_nodes(), " has MIN > MAX"));
    }
    return absl::OkStatus();
  }
  bool min_differs = req.min_nodes() > 0 && req.min_nodes() != min_nodes_;
  bool max_differs = req.max_nodes() > 0 && req.max_nodes() != max_nodes_;
  if (min_differs || max_differs) {
    std::string theirs = req.min_nodes() == req.max_nodes()
                             ? absl::StrCat(req.max_nodes())
                             : absl::StrCat(req.min_nodes(), ":", req.max_nodes());
    return absl::FailedPreconditionError(absl::StrCat(
        "node ", NodeLabel(req.node()), " was started with --nnodes ", theirs, " but run '",
        run_id_, "' uses --nnodes ", SizeText()));
  }
  return absl::OkStatus();
}

absl::Status RoundState::CheckRankClaim(const proto::RdzvNode& node) {
  int r = node.requested_node_rank();
  if (r < 0) return absl::OkStatus();
  if (r >= max_nodes_) {
    return absl::InvalidArgumentError(absl::StrCat("node ", NodeLabel(node), ": --node_rank ", r,
                                                   " is out of range for --nnodes ", SizeText(),
                                                   " (must be < ", max_nodes_, ")"));
  }
  auto clash = [&](const proto::RdzvNode& other) {
    return other.node_id() != node.node_id() && other.requested_node_rank() == r;
  };
  for (const Joiner& j : joiners_) {
    if (clash(j.node)) {
      return absl::InvalidArgumentError(
          absl::StrCat("node ", NodeLabel(node), ": --node_rank ", r, " is already claimed by ",
                       NodeLabel(j.node), " (waiting to join round ", round_, ")"));
    }
  }
  if (complete_) {
    for (const Member& m : members_) {
      if (!m.left && clash(m.node)) {
        return absl::InvalidArgumentError(
            absl::StrCat("node ", NodeLabel(node), ": --node_rank ", r, " is already held by ",
                         NodeLabel(m.node), " in round ", round_));
      }
    }
  }
  return absl::OkStatus();
}

bool RoundState::IsMember(const std::string& node_id) {
  for (const Member& m : members_) {
    if (m.entry.node_id() == node_id && !m.left) return true;
  }
  return false;
}

bool RoundState::PreviousJobOver() {
  if (members_.empty() || !joiners_.empty()) return false;
  for (const Member& m : members_) {
    if (!m.left && alive_.contains(m.entry.node_id())) return false;
  }
  return true;
}

void RoundState::StartNewJob(const proto::RdzvNode& first) {
  int left = 0;
  for (const Member& m : members_) left += m.left;
  const std::string reason = absl::StrCat(
      "node ", NodeLabel(first), " starts a new job: the previous job of run '", run_id_,
      "' is over (", left, " of ", members_.size(), " node(s) left, ", members_.size() - left,
      " declared dead)");
  if (complete_) Reopen(reason);
  members_.clear();
  dead_.clear();
  min_nodes_ = settings_.min_nodes;  // the new job may bring its own --nnodes
  max_nodes_ = settings_.max_nodes;
  if (on_new_job_) on_new_job_();
}

void RoundState::Join(uint64_t call_id, const proto::RdzvJoinRequest& req, JoinCallback done) {
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    auto fail = [&](absl::Status s) { out.answers.emplace_back(std::move(done), std::move(s)); };
    const proto::RdzvNode& node = req.node();
    if (!shutdown_ && !node.node_id().empty() && PreviousJobOver()) StartNewJob(node);
    absl::Status valid;
    if (shutdown_) {
      valid = absl::UnavailableError("rendezvous server shutting down");
    } else if (node.node_id().empty()) {
      valid = absl::InvalidArgumentError("join request without a node_id");
    } else if (node.nproc() < 1) {
      valid = absl::InvalidArgumentError(
          absl::StrCat("node ", NodeLabel(node), ": nproc must be >= 1, got ", node.nproc()));
    } else {
      valid = ResolveSize(req);
      if (valid.ok()) valid = CheckRankClaim(node);
    }
    if (!valid.ok()) {
      fail(std::move(valid));
    } else {
      // A retried Join from the same node supersedes the earlier one.
      for (size_t i = 0; i < joiners_.size(); ++i) {
        if (joiners_[i].node.node_id() == node.node_id()) {
          out.answers.emplace_back(std::move(joiners_[i].done),
                                   absl::AbortedError("superseded by a newer Join from this node"));
          RemoveJoinerAt(i);
          break;
        }
      }
      dead_.erase(node.node_id());
      bool rejoining_member = complete_ && IsMember(node.node_id());
      if (rejoining_member) {
        Reopen(absl::StrCat("node ", NodeLabel(node), " joined again"));
      }
      Joiner j;
      j.call_id = call_id;
      j.node = node;
      j.endpoint_host = req.endpoint_host();
      j.want_rank_table = req.want_rank_table();
      j.done = std::move(done);
      j.joined_at = absl::Now();
      j.join_timeout = req.join_timeout_ms() > 0 ? absl::Milliseconds(req.join_timeout_ms())
                                                 : settings_.join_timeout;
      j.timer = timer_->Schedule(j.joined_at + j.join_timeout,
                                 [this, call_id] { OnJoinTimeout(call_id); });
      joiners_.push_back(std::move(j));
      if (complete_) {
        proto::RdzvEvent e = MakeEvent(proto::RdzvEvent::NODE_WAITING, round_);
        e.set_node_id(node.node_id());
        e.set_host(node.host());
        e.set_num_nodes(static_cast<int>(members_.size()));
        e.set_num_waiting(static_cast<int>(joiners_.size()));
        e.set_reason(static_cast<int>(members_.size()) < max_nodes_
                         ? "waiting for the next round (scale-up possible)"
                         : absl::StrCat("spare: round ", round_, " is full (max ", max_nodes_,
                                        " nodes)"));
        Emit(std::move(e));
      } else {
        MaybeComplete(out);
      }
    }
  }
  out.Flush();
}

void RoundState::CancelJoin(uint64_t call_id) {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < joiners_.size(); ++i) {
    if (joiners_[i].call_id == call_id) {
      RemoveJoinerAt(i);
      return;
    }
  }
}

void RoundState::RemoveJoinerAt(size_t index) {
  timer_->Cancel(joiners_[index].timer);
  joiners_.erase(joiners_.begin() + index);
  if (!complete_ && static_cast<int>(joiners_.size()) < min_nodes_ && last_call_timer_ != 0) {
    timer_->Cancel(last_call_timer_);
    last_call_timer_ = 0;
  }
}

void RoundState::MaybeComplete(Outbox& out) {
  if (complete_ || shutdown_ || max_nodes_ == 0) return;
  int n = static_cast<int>(joiners_.size());
  if (n >= max_nodes_ || (n >= min_nodes_ && settings_.last_call_timeout <= absl::ZeroDuration())) {
    Complete(out);
  } else if (n >= min_nodes_ && last_call_timer_ == 0) {
    last_call_timer_ =
        timer_->Schedule(absl::Now() + settings_.last_call_timeout, [this] { OnLastCall(); });
  }
}

void RoundState::OnLastCall() {
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    last_call_timer_ = 0;
    if (!complete_ && !shutdown_ && static_cast<int>(joiners_.size()) >= min_nodes_) Complete(out);
  }
  out.Flush();
}

void RoundState::Complete(Outbox& out) {
  if (last_call_timer_ != 0) {
    timer_->Cancel(last_call_timer_);
    last_call_timer_ = 0;
  }
  int n = std::min(static_cast<int>(joiners_.size()), max_nodes_);
  // The first n joiners (arrival order) form the round; the rest stay spares.
  std::vector<Joiner> chosen(std::make_move_iterator(joiners_.begin()),
                             std::make_move_iterator(joiners_.begin() + n));
  joiners_.erase(joiners_.begin(), joiners_.begin() + n);

  // Rank assignment: requested ranks that fit, then the stable order.
  std::vector<int> rank_of(n, -1);
  std::vector<int> holder(n, -1);
  for (int i = 0; i < n; ++i) {
    int r = chosen[i].node.requested_node_rank();
    if (r >= 0 && r < n && holder[r] < 0) {
      holder[r] = i;
      rank_of[i] = r;
    }
  }
  std::vector<int> rest;
  for (int i = 0; i < n; ++i) {
    if (rank_of[i] < 0) rest.push_back(i);
  }
  std::sort(rest.begin(), rest.end(), [&](int a, int b) {
    const Joiner& x = chosen[a];
    const Joiner& y = chosen[b];
    bool ex = MatchesEndpoint(x.node, x.endpoint_host);
    bool ey = MatchesEndpoint(y.node, y.endpoint_host);
    if (ex != ey) return ex;
    return std::tie(x.node.host(), x.node.local_addr(), x.node.node_id()) <
           std::tie(y.node.host(), y.node.local_addr(), y.node.node_id());
  });
  size_t next = 0;
  for (int r = 0; r < n; ++r) {
    if (holder[r] < 0) {
      holder[r] = rest[next++];
      rank_of[holder[r]] = r;
    }
  }

  members_.clear();
  int offset = 0;
  absl::Time now = absl::Now();
  for (int r = 0; r < n; ++r) {
    const Joiner& j = chosen[holder[r]];
    Member m;
    m.node = j.node;
    m.entry.set_group_rank(r);
    m.entry.set_node_id(j.node.node_id());
    m.entry.set_host(j.node.host());
    m.entry.set_local_addr(j.node.local_addr().empty() ? j.node.host() : j.node.local_addr());
    m.entry.set_local_world_size(j.node.nproc());
    m.entry.set_global_rank_offset(offset);
    offset += j.node.nproc();
    members_.push_back(std::move(m));
    alive_[j.node.node_id()] = now;
  }
  complete_ = true;

  // Answers share one full table; a node that did not ask for it (and is
  // not group rank 0) gets only its own entry.
  proto::RdzvJoinResponse brief;
  brief.set_round(round_);
  brief.set_group_world_size(n);
  brief.set_world_size(offset);
  brief.set_master_addr(members_[0].entry.local_addr());
  brief.set_master_port(members_[0].node.master_port());
  std::optional<proto::RdzvJoinResponse> full;
  for (int i = 0; i < n; ++i) {
    timer_->Cancel(chosen[i].timer);
    int r = rank_of[i];
    proto::RdzvJoinResponse resp;
    if (chosen[i].want_rank_table || r == 0) {
      if (!full) {
        full = brief;
        for (const Member& m : members_) *full->add_rank_table() = m.entry;
      }
      resp = *full;
    } else {
      resp = brief;
      *resp.add_rank_table() = members_[r].entry;
    }
    resp.set_group_rank(r);
    out.answers.emplace_back(std::move(chosen[i].done), std::move(resp));
  }

  proto::RdzvEvent e = MakeEvent(proto::RdzvEvent::ROUND_COMPLETE, round_);
  e.set_round_complete(true);
  e.set_num_nodes(n);
  e.set_num_waiting(static_cast<int>(joiners_.size()));
  Emit(std::move(e));
  for (const Joiner& spare : joiners_) {
    proto::RdzvEvent w = MakeEvent(proto::RdzvEvent::NODE_WAITING, round_);
    w.set_node_id(spare.node.node_id());
    w.set_host(spare.node.host());
    w.set_num_nodes(n);
    w.set_num_waiting(static_cast<int>(joiners_.size()));
    w.set_reason(absl::StrCat("spare: round ", round_, " is full (max ", max_nodes_, " nodes)"));
    Emit(std::move(w));
  }
}

void RoundState::Reopen(const std::string& reason) {
  ++round_;
  complete_ = false;
  proto::RdzvEvent e = MakeEvent(proto::RdzvEvent::ROUND_REOPENED, round_);
  e.set_num_waiting(static_cast<int>(joiners_.size()));
  e.set_reason(reason);
  Emit(std::move(e));
}

void RoundState::OnJoinTimeout(uint64_t call_id) {
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < joiners_.size(); ++i) {
      if (joiners_[i].call_id != call_id) continue;
      std::string report = MissingReport(joiners_[i]);
      out.answers.emplace_back(std::move(joiners_[i].done),
                               absl::DeadlineExceededError(std::move(report)));
      RemoveJoinerAt(i);
      break;
    }
  }
  out.Flush();
}

std::string RoundState::MissingReport(const Joiner& who) {
  std::string head = absl::StrCat("rendezvous for run '", run_id_, "' did not complete within ",
                                  absl::FormatDuration(who.join_timeout), ": ");
  if (complete_) {
    return absl::StrCat(head, "round ", round_, " is running with ", members_.size(),
                        " node(s) (--nnodes ", SizeText(), ") and was not reopened; node ",
                        NodeLabel(who.node), " waited as ",
                        static_cast<int>(members_.size()) >= max_nodes_ ? "a spare"
                                                                        : "a late joiner",
                        " for the next round");
  }
  std::vector<std::string> joined;
  std::set<std::string> joined_ids;
  std::set<int> claimed;
  bool all_requested = true;
  for (const Joiner& j : joiners_) {
    joined.push_back(NodeLabel(j.node));
    joined_ids.insert(j.node.node_id());
    if (j.node.requested_node_rank() >= 0) {
      claimed.insert(j.node.requested_node_rank());
    } else {
      all_requested = false;
    }
  }
  int n = static_cast<int>(joiners_.size());
  std::string s = absl::StrCat(head, "round ", round_, " has ", n, " of ", min_nodes_,
                               min_nodes_ == max_nodes_ ? "" : absl::StrCat(" (max ", max_nodes_, ")"),
                               " node(s)");
  if (!joined.empty()) absl::StrAppend(&s, " [joined: ", JoinNames(joined), "]");
  absl::StrAppend(&s, "; missing ", std::max(0, min_nodes_ - n), " node(s)");
  if (all_requested && n > 0) {
    std::vector<std::string> ranks;
    for (int r = 0; r < min_nodes_; ++r) {
      if (!claimed.count(r)) ranks.push_back(absl::StrCat(r));
    }
    if (!ranks.empty()) absl::StrAppend(&s, "; no node with --node_rank ", JoinNames(ranks));
  }
  std::vector<std::string> not_back, dead;
  for (const Member& m : members_) {
    if (m.left || joined_ids.count(m.entry.node_id())) continue;
    auto d = dead_.find(m.entry.node_id());
    if (d != dead_.end()) {
      dead.push_back(absl::StrCat(NodeLabel(m.node), " (", d->second, ")"));
    } else {
      not_back.push_back(NodeLabel(m.node));
    }
  }
  if (!dead.empty()) {
    absl::StrAppend(&s, "; dead since round ", round_ - 1, ": ", JoinNames(dead));
  }
  if (!not_back.empty()) {
    absl::StrAppend(&s, "; members of round ", round_ - 1, " that have not joined again: ",
                    JoinNames(not_back));
  }
  return s;
}

absl::StatusOr<proto::RdzvHeartbeatResponse> RoundState::Heartbeat(
    const proto::RdzvHeartbeatRequest& req) {
  absl::MutexLock lock(&mu_);
  if (shutdown_) return absl::UnavailableError("rendezvous server shutting down");
  auto d = dead_.find(req.node_id());
  if (d != dead_.end()) {
    return absl::NotFoundError(absl::StrCat("node ", req.node_id(), " was declared dead (",
                                            d->second, "); it must join again"));
  }
  auto it = alive_.find(req.node_id());
  if (it == alive_.end()) {
    return absl::NotFoundError(
        absl::StrCat("node ", req.node_id(), " is not part of run '", run_id_, "'"));
  }
  it->second = absl::Now();
  proto::RdzvHeartbeatResponse resp;
  resp.set_round(round_);
  resp.set_round_complete(complete_);
  resp.set_num_waiting(complete_ ? static_cast<int>(joiners_.size()) : 0);
  return resp;
}

absl::Status RoundState::Leave(const std::string& node_id) {
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return absl::UnavailableError("rendezvous server shutting down");
    bool known = alive_.erase(node_id) > 0;
    dead_.erase(node_id);
    std::string host;
    for (size_t i = 0; i < joiners_.size(); ++i) {
      if (joiners_[i].node.node_id() == node_id) {
        host = joiners_[i].node.host();
        out.answers.emplace_back(std::move(joiners_[i].done),
                                 absl::CancelledError("node left the rendezvous"));
        RemoveJoinerAt(i);
        known = true;
        break;
      }
    }
    int group_rank = -1;
    for (Member& m : members_) {
      if (m.entry.node_id() == node_id && !m.left) {
        m.left = true;
        host = m.entry.host();
        if (complete_) group_rank = m.entry.group_rank();
      }
    }
    if (known) {
      proto::RdzvEvent e = MakeEvent(proto::RdzvEvent::NODE_LEFT, round_);
      e.set_node_id(node_id);
      e.set_host(host);
      e.set_group_rank(group_rank);
      e.set_reason("left the rendezvous");
      Emit(std::move(e));
    }
  }
  out.Flush();
  return absl::OkStatus();
}

void RoundState::Reap() {
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return;
    absl::Time now = absl::Now();
    std::set<std::string> pending;
    for (const Joiner& j : joiners_) pending.insert(j.node.node_id());
    std::vector<std::string> died;
    for (const auto& [id, last] : alive_) {
      if (!pending.count(id) && now - last > settings_.heartbeat_timeout) died.push_back(id);
    }
    std::sort(died.begin(), died.end());
    std::string reopen_because;
    for (const std::string& id : died) {
      alive_.erase(id);
      std::string reason =
          absl::StrCat("no heartbeat for ", absl::FormatDuration(settings_.heartbeat_timeout));
      dead_[id] = reason;
      proto::RdzvEvent e = MakeEvent(proto::RdzvEvent::NODE_DEAD, round_);
      e.set_node_id(id);
      e.set_reason(reason);
      for (const Member& m : members_) {
        if (m.entry.node_id() != id || m.left) continue;
        e.set_host(m.entry.host());
        if (complete_) {
          e.set_group_rank(m.entry.group_rank());
          if (reopen_because.empty()) {
            reopen_because = absl::StrCat("node ", NodeLabel(m.node), " died (", reason, ")");
          }
        }
      }
      Emit(std::move(e));
    }
    if (!reopen_because.empty()) {
      Reopen(reopen_because);
      MaybeComplete(out);  // spares already waiting may fill the new round
    }
    absl::Duration period =
        std::clamp(settings_.heartbeat_timeout / 8, absl::Milliseconds(10), absl::Seconds(1));
    reaper_timer_ = timer_->Schedule(now + period, [this] { Reap(); });
  }
  out.Flush();
}

proto::RdzvEvent RoundState::Snapshot() {
  proto::RdzvEvent e = MakeEvent(proto::RdzvEvent::SNAPSHOT, round_);
  e.set_round_complete(complete_);
  e.set_num_nodes(complete_ ? static_cast<int>(members_.size()) : 0);
  e.set_num_waiting(static_cast<int>(joiners_.size()));
  return e;
}

void RoundState::Emit(proto::RdzvEvent event) {
  for (auto& [id, sink] : sinks_) sink(event);
}

uint64_t RoundState::Subscribe(EventSink sink) {
  absl::MutexLock lock(&mu_);
  uint64_t id = next_sink_++;
  sink(Snapshot());
  if (shutdown_) {
    sink(MakeEvent(proto::RdzvEvent::SERVER_SHUTDOWN, round_));
    return id;
  }
  sinks_.emplace(id, std::move(sink));
  return id;
}

void RoundState::Unsubscribe(uint64_t id) {
  absl::MutexLock lock(&mu_);
  sinks_.erase(id);
}

void RoundState::Shutdown() {
  Outbox out;
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return;
    shutdown_ = true;
    timer_->Cancel(reaper_timer_);
    timer_->Cancel(last_call_timer_);
    for (Joiner& j : joiners_) {
      timer_->Cancel(j.timer);
      out.answers.emplace_back(std::move(j.done),
                               absl::UnavailableError("rendezvous server shutting down"));
    }
    joiners_.clear();
    Emit(MakeEvent(proto::RdzvEvent::SERVER_SHUTDOWN, round_));
    sinks_.clear();
  }
  out.Flush();
}

int64_t RoundState::round() {
  absl::MutexLock lock(&mu_);
  return round_;
}

bool RoundState::round_complete() {
  absl::MutexLock lock(&mu_);
  return complete_;
}

int RoundState::num_pending() {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(joiners_.size());
}

}  // namespace anvil
