// ElasticAgent implementation; see elastic_agent.h for the protocol.
// Store keys the agents share live under "anvil/agent/" in the run's
// namespace: restarts (job-wide count), failed/<round> (claimant node id),
// failed/<round>/{decision,report,exit_code}, done/<round>/<group_rank>.
#include "launcher/agent/elastic_agent.h"

#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/exit_codes.h"
#include "common/status_macros.h"
#include "launcher/agent/endpoint_host.h"
#include "launcher/agent/log_pump.h"
#include "launcher/agent/metrics_http.h"
#include "launcher/agent/progress_watch.h"
#include "launcher/agent/rendezvous_host.h"
#include "launcher/agent/root_cause.h"
#include "launcher/agent/signal_names.h"
#include "launcher/agent/signal_watcher.h"
#include "launcher/agent/worker_env.h"
#include "launcher/agent/worker_group.h"
#include "launcher/rendezvous/rendezvous_client.h"
#include "runtime/store/grpc_store.h"
#include "runtime/trainer/progress_file.h"

namespace anvil::launcher {
namespace {

bool IsTerminating(int s) { return s == SIGTERM || s == SIGINT || s == SIGHUP || s == SIGQUIT; }

std::string Key(absl::string_view suffix) { return absl::StrCat("anvil/agent/", suffix); }

// How a round ended for this node.
enum class Outcome { kSucceeded, kFailed, kRejoin, kPeerGaveUp, kSignal, kHung };

// The launcher's exit code when it gives up after a hang (timeout(1)'s).
constexpr int kExitHang = 124;

// A Join running on its own thread so that signals stay responsive while it
// blocks (up to join_timeout). Shared with the thread, which may outlive the
// agent's interest in it.
struct PendingJoin {
  absl::Mutex mu;
  bool done = false;
  absl::StatusOr<RendezvousRound> result = absl::UnknownError("not joined");
};

}  // namespace

class ElasticAgent::Impl {
 public:
  explicit Impl(AgentOptions o) : o_(std::move(o)), progress_(o_.hang_timeout) {}

  int Run();
  bool join_pending() const { return join_pending_; }

 private:
  absl::StatusOr<int> Setup();
  absl::StatusOr<int> Loop();
  // Join; returns a terminating signal number in `signo` when one came first.
  absl::StatusOr<RendezvousRound> JoinInterruptibly(int* signo);
  absl::Status StartWorkers();
  Outcome Monitor(int* signo);
  // Events since the last call, reduced to what this node must do.
  Outcome CheckMembership();
  absl::StatusOr<int> HandleFailure();
  absl::StatusOr<int> HandleHang();
  // The job-wide decision after a failure of this round: the first node to
  // claim it counts a restart (unless preempted) and records text, exit
  // code and "restart" / "give_up"; the others follow. Returns the exit
  // code when giving up, -1 to restart.
  absl::StatusOr<int> Decide(const std::string& text, int exit_code, bool preempted, bool save_failed);
  // What /metrics and /readyz show; called from the agent's thread.
  void Publish(const std::string& phase);
  // Returns true when the node should rejoin instead of finishing.
  absl::StatusOr<bool> ExitBarrier(int* signo);
  absl::StatusOr<int> FollowGiveUp(int64_t round);
  int Shutdown(int signo);
  void StopWorkers(int signo);
  void Cleanup();
  void Linger();
  void LeaveBounded();
  void Log(const std::string& msg) { WriteConsoleLine(2, absl::StrCat("[launcher ", o_.host, "] ", msg)); }
  std::string RankDir(int local_rank) const;

  AgentOptions o_;
  std::unique_ptr<SignalWatcher> signals_;
  HostedRendezvous hosted_;
  std::unique_ptr<RendezvousClient> rdzv_;
  std::unique_ptr<GrpcStore> store_;
  std::unique_ptr<RendezvousWatch> watch_;
  std::unique_ptr<WorkerGroup> group_;
  std::string tmp_dir_;
  RendezvousRound round_;
  int64_t restart_count_ = 0;
  bool join_pending_ = false;
  bool left_ = false;
  ProgressWatch progress_;
  std::string hang_;  // the hang watchdog's finding in this round
  std::unique_ptr<MetricsHttpServer> http_;
  absl::Mutex status_mu_;
  AgentStatus status_ ABSL_GUARDED_BY(status_mu_);

  absl::Mutex mu_;
  std::deque<RendezvousEvent> events_ ABSL_GUARDED_BY(mu_);
  bool watch_ended_ ABSL_GUARDED_BY(mu_) = false;
  std::set<std::string> departed_ ABSL_GUARDED_BY(mu_);  // node ids seen leave or die
};

std::string ElasticAgent::Impl::RankDir(int local_rank) const {
  const std::string root = o_.log.log_dir.empty() ? tmp_dir_ : o_.log.log_dir;
  return absl::StrCat(root, "/", o_.run_id, "/attempt_", restart_count_, "/", local_rank);
}

int ElasticAgent::Impl::Run() {
  absl::StatusOr<int> code = Setup();
  if (code.ok()) code = Loop();
  if (!code.ok()) {
    WriteConsoleLine(2, absl::StrCat("launcher: error: ", code.status().message()));
    code = 1;
  }
  Cleanup();
  return *code;
}

absl::StatusOr<int> ElasticAgent::Impl::Setup() {
  BecomeSubreaper();
  std::vector<int> sigs = o_.forward_signals;
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGQUIT}) {
    if (std::find(sigs.begin(), sigs.end(), s) == sigs.end()) sigs.push_back(s);
  }
  // A program that does not exist is reported before any rendezvous.
  auto path = o_.base_env.find("PATH");
  RETURN_IF_ERROR(ResolveProgram(o_.argv.at(0), path == o_.base_env.end() ? "" : path->second).status());
  ASSIGN_OR_RETURN(signals_, SignalWatcher::Install(sigs));
  {
    absl::MutexLock l(&status_mu_);
    status_.host = o_.host;
    status_.run_id = o_.run_id;
    status_.started = absl::Now();
  }
  if (o_.metrics_port > 0) {
    ASSIGN_OR_RETURN(http_, MetricsHttpServer::Start("0.0.0.0", o_.metrics_port, [this] {
                       absl::MutexLock l(&status_mu_);
                       return status_;
                     }));
    Log(absl::StrCat("serving /metrics, /healthz and /readyz on port ", http_->port()));
  }
  char tmpl[] = "/tmp/anvil_launcher_XXXXXX";
  if (::mkdtemp(tmpl) != nullptr) tmp_dir_ = tmpl;
  ASSIGN_OR_RETURN(hosted_, SetUpRendezvous(o_));
  if (hosted_.server != nullptr) Log(absl::StrCat("hosting the rendezvous and store at ", hosted_.address));

  GrpcStoreOptions so;
  so.address = hosted_.address;
  so.run_id = o_.run_id;
  so.token = o_.token;
  so.tls.root_cert_path = o_.tls_ca;
  so.rpc_timeout = o_.read_timeout;
  so.connect_timeout = std::min(o_.read_timeout, o_.join_timeout);
  ASSIGN_OR_RETURN(store_, GrpcStore::Create(so));

  RendezvousClientOptions ro;
  ro.endpoint = hosted_.address;
  ro.run_id = o_.run_id;
  ro.token = o_.token;
  ro.tls.root_cert_path = o_.tls_ca;
  ro.min_nodes = o_.min_nodes;
  ro.max_nodes = o_.max_nodes;
  ro.join_timeout = o_.join_timeout;
  ro.heartbeat_interval = o_.heartbeat_interval;
  ro.rpc_timeout = o_.read_timeout;
  NodeInfo node;
  node.host = o_.host;
  // MASTER_ADDR is group rank 0's local_addr: make it something peers can
  // reach (loopback for a private single-node server).
  node.local_addr = !o_.local_addr.empty() ? o_.local_addr
                    : o_.endpoint.empty()  ? std::string("127.0.0.1")
                                           : LocalHostName();
  node.nproc = o_.nproc;
  node.requested_node_rank = o_.node_rank;
  node.is_endpoint_host = hosted_.server != nullptr;
  ASSIGN_OR_RETURN(rdzv_, RendezvousClient::Create(ro, node));
  return 0;
}

absl::StatusOr<RendezvousRound> ElasticAgent::Impl::JoinInterruptibly(int* signo) {
  *signo = 0;
  auto call = std::make_shared<PendingJoin>();
  RendezvousClient* client = rdzv_.get();
  join_pending_ = true;
  std::thread([call, client] {
    absl::StatusOr<RendezvousRound> r = client->Join();
    absl::MutexLock l(&call->mu);
    call->result = std::move(r);
    call->done = true;
    SignalWatcher::Wake();
  }).detach();
  for (;;) {
    for (int s : signals_->Wait(o_.monitor_interval)) {
      if (IsTerminating(s)) {
        *signo = s;
        return absl::CancelledError("interrupted");
      }
    }
    absl::MutexLock l(&call->mu);
    if (call->done) {
      join_pending_ = false;
      return call->result;
    }
  }
}

absl::Status ElasticAgent::Impl::StartWorkers() {
  std::vector<WorkerSpec> specs;
  std::vector<WatchedRank> watched;
  for (int lr = 0; lr < o_.nproc; ++lr) {
    WorkerEnvInputs in;
    in.base = o_.base_env;
    in.local_rank = lr;
    in.local_world_size = o_.nproc;
    in.global_rank_offset = round_.global_rank_offset;
    in.world_size = round_.world_size;
    in.group_rank = round_.group_rank;
    in.group_world_size = round_.group_world_size;
    in.role = o_.role;
    // Static rendezvous: the --master_addr/--master_port the user gave.
    in.master_addr = o_.master_addr.empty() ? round_.master_addr : o_.master_addr;
    in.master_port = o_.master_port > 0 ? o_.master_port : round_.master_port;
    in.restart_count = static_cast<int>(restart_count_);
    in.max_restarts = o_.max_restarts;
    in.run_id = o_.run_id;
    in.store_addr = hosted_.address;
    in.token = o_.token;
    in.tls_ca = o_.tls_ca;
    in.local_addr = o_.local_addr;
    in.round = round_.round;
    WorkerSpec s;
    s.local_rank = lr;
    s.rank = round_.global_rank_offset + lr;
    s.argv = o_.argv;
    s.label = absl::StrCat(o_.host, ":", s.rank);
    const std::string dir = RankDir(lr);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    s.error_file = in.error_file = absl::StrCat(dir, "/error.json");
    std::filesystem::remove(s.error_file, ec);  // a stale file from an earlier round
    if (!o_.log.log_dir.empty() || o_.log.redirects.For(lr) != kStdNone || o_.log.tee.For(lr) != kStdNone) {
      s.log_dir = dir;
    }
    std::map<std::string, std::string> env = BuildWorkerEnv(in);
    const std::string progress = absl::StrCat(dir, "/progress");
    std::filesystem::remove(progress, ec);
    env[kEnvProgressFile] = progress;
    watched.push_back({s.rank, lr, progress});
    s.env = EnvToList(env);
    specs.push_back(std::move(s));
  }
  progress_.Reset(std::move(watched), absl::Now());
  hang_.clear();
  group_ = std::make_unique<WorkerGroup>(o_.log);
  return group_->Start(std::move(specs));
}

void ElasticAgent::Impl::StopWorkers(int signo) {
  if (group_ == nullptr) return;
  group_->Stop(signo, o_.grace_period, [this] {
    for (int s : signals_->Wait(absl::ZeroDuration())) {
      if (IsTerminating(s)) return true;  // a second Ctrl-C: no more grace
    }
    return false;
  });
}

Outcome ElasticAgent::Impl::CheckMembership() {
  std::deque<RendezvousEvent> events;
  {
    absl::MutexLock l(&mu_);
    events.swap(events_);
  }
  std::set<std::string> members;
  for (const RankTableEntry& e : round_.rank_table) members.insert(e.node_id);
  Outcome out = Outcome::kSucceeded;  // "nothing to do"
  for (const RendezvousEvent& ev : events) {
    const bool member = members.contains(ev.node_id) && ev.node_id != rdzv_->node_id();
    switch (ev.type) {
      case RendezvousEventType::kRoundReopened:
        if (ev.round > round_.round) {
          Log(absl::StrCat("round ", round_.round, " reopened (", ev.reason, "); restarting workers"));
          // A node that failed (or saw a hang) recorded its report before
          // reopening the round: every node names the cause.
          absl::StatusOr<std::string> report =
              store_->Get(Key(absl::StrCat("failed/", round_.round, "/report")), absl::Milliseconds(200));
          if (report.ok()) Log(absl::StrCat("the failure reported in round ", round_.round, ":\n", *report));
          return Outcome::kRejoin;
        }
        break;
      case RendezvousEventType::kNodeDead:
        if (member) {
          Log(absl::StrCat(FormatEvent(ev), "; restarting workers"));
          return Outcome::kRejoin;
        }
        break;
      case RendezvousEventType::kNodeWaiting:
        if (round_.group_world_size < o_.max_nodes) {
          Log(absl::StrCat("node ", ev.host, " is waiting to join; restarting to admit it"));
          return Outcome::kRejoin;
        }
        break;
      case RendezvousEventType::kNodeLeft: {
        if (!member) break;
        absl::StatusOr<std::string> decision =
            store_->Get(Key(absl::StrCat("failed/", round_.round, "/decision")), absl::Milliseconds(200));
        if (decision.ok() && *decision == "give_up") return Outcome::kPeerGaveUp;
        absl::StatusOr<std::string> done =
            store_->Get(Key(absl::StrCat("done/", round_.round, "/", ev.group_rank)), absl::Milliseconds(200));
        if (done.ok()) break;  // it finished; we are just slower
        Log(absl::StrCat("node ", ev.host, " (group rank ", ev.group_rank, ") left; restarting workers"));
        return Outcome::kRejoin;
      }
      case RendezvousEventType::kServerShutdown:
        Log("the rendezvous server is shutting down");
        out = Outcome::kPeerGaveUp;
        break;
      default:
        break;
    }
  }
  return out;
}

Outcome ElasticAgent::Impl::Monitor(int* signo) {
  absl::Time server_lost_since = absl::InfiniteFuture();
  for (;;) {
    for (int s : signals_->Wait(o_.monitor_interval)) {
      if (IsTerminating(s)) {
        *signo = s;
        return Outcome::kSignal;
      }
      if (std::find(o_.forward_signals.begin(), o_.forward_signals.end(), s) != o_.forward_signals.end()) {
        Log(absl::StrCat("forwarding ", SignalName(s), " to workers"));
        group_->Signal(s);
      }
    }
    switch (group_->Poll()) {
      case GroupState::kFailed:
        return Outcome::kFailed;
      case GroupState::kSucceeded:
        return Outcome::kSucceeded;
      case GroupState::kRunning:
        break;
    }
    const absl::Time now = absl::Now();
    progress_.Poll(now);
    Publish("running");
    if (std::optional<std::string> hang = progress_.CheckHang(now)) {
      hang_ = *hang;
      return Outcome::kHung;
    }
    Outcome m = CheckMembership();
    if (m != Outcome::kSucceeded) return m;
    absl::Status hb = rdzv_->HeartbeatStatus();
    if (hb.code() == absl::StatusCode::kNotFound) {
      Log("the rendezvous declared this node dead; rejoining");
      return Outcome::kRejoin;
    }
    if (hb.ok()) {
      server_lost_since = absl::InfiniteFuture();
    } else if (server_lost_since == absl::InfiniteFuture()) {
      server_lost_since = absl::Now();
    } else if (absl::Now() - server_lost_since > o_.read_timeout) {
      Log(absl::StrCat("lost the rendezvous server for ", absl::FormatDuration(o_.read_timeout), ": ",
                       hb.message()));
      return Outcome::kPeerGaveUp;
    }
  }
}

absl::StatusOr<int> ElasticAgent::Impl::FollowGiveUp(int64_t round) {
  const std::string base = Key(absl::StrCat("failed/", round));
  absl::StatusOr<std::string> report = store_->Get(absl::StrCat(base, "/report"), absl::Seconds(2));
  absl::StatusOr<std::string> code_text = store_->Get(absl::StrCat(base, "/exit_code"), absl::Seconds(2));
  int code = 1;
  if (code_text.ok()) absl::SimpleAtoi(*code_text, &code);
  Log(absl::StrCat("job failed on another node; giving up\n",
                   report.ok() ? *report : std::string("(its report is unavailable)")));
  return code;
}

absl::StatusOr<int> ElasticAgent::Impl::HandleFailure() {
  // The failures seen before we stopped the group are the real ones.
  std::vector<WorkerExit> failed;
  for (const WorkerExit& e : group_->exits()) {
    if (!e.ok()) failed.push_back(e);
  }
  StopWorkers(SIGTERM);
  std::vector<FailureReport> reports;
  for (const WorkerExit& e : failed) {
    FailureReport r;
    r.rank = e.rank;
    r.local_rank = e.local_rank;
    r.host = o_.host;
    r.pid = e.pid;
    r.attempt = static_cast<int>(restart_count_);
    r.exit_code = e.exit_code;
    r.signal = e.signal;
    r.exit_time = e.time;
    r.error_file = group_->spec(e.local_rank).error_file;
    r.stderr_tail = group_->StderrTail(e.local_rank);
    ReadErrorFile(&r);
    reports.push_back(std::move(r));
  }
  const FailureReport& root = reports[PickRootCause(reports)];
  const std::string text = FormatFailureReport(root, static_cast<int>(reports.size()));
  const int exit_code = root.signal > 0 ? 128 + root.signal : (root.exit_code > 0 ? root.exit_code : 1);
  Log(absl::StrCat("worker group failed in round ", round_.round, "\n", text));
  // Workers that checkpointed on a stop signal and exited 75 (preempted)
  // are restarted to resume, without using up --max_restarts.
  const bool preempted =
      std::all_of(failed.begin(), failed.end(),
                  [](const WorkerExit& e) { return e.signal == 0 && e.exit_code == kExitPreempted; });
  // A worker whose checkpoint save failed kept every committed checkpoint
  // and stopped; a restart would redo the steps since the last commit and
  // most likely fail the same way (a full disk), so it is not restarted.
  const bool save_failed =
      std::any_of(failed.begin(), failed.end(),
                  [](const WorkerExit& e) { return e.signal == 0 && e.exit_code == kExitSaveFailed; });
  return Decide(text, exit_code, preempted, save_failed);
}

absl::StatusOr<int> ElasticAgent::Impl::HandleHang() {
  // Claim the round's failure before the grace period: the ranks on other
  // nodes that wait in a collective for the hung one stall too, and their
  // agents must not name them first.
  ASSIGN_OR_RETURN(std::string claimant, store_->CompareSet(Key(absl::StrCat("failed/", round_.round)), "",
                                                            rdzv_->node_id()));
  if (claimant == rdzv_->node_id()) {
    Log(absl::StrCat("hang watchdog: ", hang_, "; stopping the worker group"));
  } else {
    Log("hang watchdog: local workers stalled too, after another node reported this round's failure; "
        "stopping the worker group");
  }
  StopWorkers(SIGTERM);
  return Decide(absl::StrCat("hang in round ", round_.round, " on ", o_.host, ": ", hang_), kExitHang,
                /*preempted=*/false, /*save_failed=*/false);
}

absl::StatusOr<int> ElasticAgent::Impl::Decide(const std::string& text, int exit_code, bool preempted,
                                               bool save_failed) {
  const std::string base = Key(absl::StrCat("failed/", round_.round));
  ASSIGN_OR_RETURN(std::string claimant, store_->CompareSet(base, "", rdzv_->node_id()));
  std::string decision;
  if (claimant == rdzv_->node_id()) {
    ASSIGN_OR_RETURN(int64_t count, store_->Add(Key("restarts"), 1));
    ASSIGN_OR_RETURN(int64_t preemptions, store_->Add(Key("preemptions"), preempted ? 1 : 0));
    count -= preemptions;
    decision = save_failed || (!preempted && count > o_.max_restarts) ? "give_up" : "restart";
    if (preempted) {
      Log("workers saved and exited on a stop signal (exit 75); restarting to resume "
          "(not counted against --max_restarts)");
    }
    std::vector<std::string> keys = {absl::StrCat(base, "/report"), absl::StrCat(base, "/exit_code"),
                                     absl::StrCat(base, "/decision")};
    std::vector<std::string> values = {text, absl::StrCat(exit_code), decision};
    RETURN_IF_ERROR(store_->MultiSet(keys, values));
    if (decision == "give_up") {
      if (save_failed) {
        Log("giving up without a restart: a checkpoint save failed (exit 3); a restart would "
            "redo the steps since the newest committed checkpoint. Fix the cause (free disk "
            "space?) and run the same command again to resume from it");
      } else {
        Log(absl::StrCat("giving up: ", o_.max_restarts, " restart",
                         o_.max_restarts == 1 ? "" : "s", " allowed (--max_restarts) and used"));
      }
      return exit_code;
    }
    if (!preempted) {
      Log(absl::StrCat("restarting the job (restart ", count, " of ", o_.max_restarts, ")"));
    }
    return -1;
  }
  ASSIGN_OR_RETURN(decision, store_->Get(absl::StrCat(base, "/decision"), o_.read_timeout));
  if (decision == "give_up") return FollowGiveUp(round_.round);
  // Another node reported this round's failure first: its report is the
  // one every node prints (a hang is named where it was seen).
  absl::StatusOr<std::string> report = store_->Get(absl::StrCat(base, "/report"), absl::Seconds(2));
  if (report.ok() && *report != text) Log(absl::StrCat("another node reported the failure first:\n", *report));
  return -1;
}

absl::StatusOr<bool> ElasticAgent::Impl::ExitBarrier(int* signo) {
  RETURN_IF_ERROR(store_->Set(Key(absl::StrCat("done/", round_.round, "/", round_.group_rank)), "1"));
  std::vector<std::string> keys;
  for (int g = 0; g < round_.group_world_size; ++g) keys.push_back(Key(absl::StrCat("done/", round_.round, "/", g)));
  const absl::Time deadline = absl::Now() + o_.exit_barrier_timeout;
  while (absl::Now() < deadline) {
    absl::Status st = store_->Wait(keys, std::min(absl::Milliseconds(250), deadline - absl::Now()));
    if (st.ok()) return false;
    if (st.code() != absl::StatusCode::kDeadlineExceeded) {
      Log(absl::StrCat("exit barrier: ", st.message()));
      return false;
    }
    for (int s : signals_->Wait(absl::ZeroDuration())) {
      if (IsTerminating(s)) {
        *signo = s;
        return false;
      }
    }
    Outcome m = CheckMembership();
    if (m == Outcome::kRejoin) return true;
    if (m == Outcome::kPeerGaveUp) return false;
  }
  Log(absl::StrCat("exit barrier timed out after ", absl::FormatDuration(o_.exit_barrier_timeout),
                   " (--exit_barrier_timeout); other nodes are still running"));
  return false;
}

absl::StatusOr<int> ElasticAgent::Impl::Loop() {
  for (;;) {
    int signo = 0;
    Publish("joining");
    absl::StatusOr<RendezvousRound> round = JoinInterruptibly(&signo);
    if (signo != 0) return Shutdown(signo);
    if (!round.ok()) return round.status();
    round_ = *round;
    if (watch_ == nullptr) {
      WatchOptions wo;
      wo.on_event = [this](const RendezvousEvent& ev) {
        absl::MutexLock l(&mu_);
        events_.push_back(ev);
        if (ev.type == RendezvousEventType::kNodeLeft || ev.type == RendezvousEventType::kNodeDead) {
          departed_.insert(ev.node_id);
        }
        SignalWatcher::Wake();
      };
      wo.on_end = [this](const absl::Status&) {
        absl::MutexLock l(&mu_);
        watch_ended_ = true;
        SignalWatcher::Wake();
      };
      ASSIGN_OR_RETURN(watch_, rdzv_->Watch(std::move(wo)));
    }
    {
      // Events about earlier rounds are history now.
      absl::MutexLock l(&mu_);
      std::erase_if(events_, [&](const RendezvousEvent& ev) {
        return ev.round < round_.round || ev.type == RendezvousEventType::kSnapshot ||
               ev.type == RendezvousEventType::kRoundComplete ||
               (ev.type == RendezvousEventType::kRoundReopened && ev.round <= round_.round);
      });
    }
    ASSIGN_OR_RETURN(restart_count_, store_->Add(Key("restarts"), 0));
    if (round_.group_rank == 0) {
      Log(std::string(absl::StripTrailingAsciiWhitespace(FormatRankTable(round_))));
    } else {
      Log(absl::StrCat("joined round ", round_.round, " as group rank ", round_.group_rank, " of ",
                       round_.group_world_size, " (world size ", round_.world_size, ")"));
    }
    absl::Status started = StartWorkers();
    if (!started.ok()) {
      // A program that cannot start will not start on a retry either.
      const std::string base = Key(absl::StrCat("failed/", round_.round));
      absl::StatusOr<std::string> c = store_->CompareSet(base, "", rdzv_->node_id());
      if (c.ok() && *c == rdzv_->node_id()) {
        store_->MultiSet({absl::StrCat(base, "/report"), absl::StrCat(base, "/exit_code"),
                          absl::StrCat(base, "/decision")},
                         {absl::StrCat("on ", o_.host, ": ", started.message()), "1", "give_up"})
            .IgnoreError();
      }
      return started;
    }
    Outcome out = Monitor(&signo);
    switch (out) {
      case Outcome::kSignal:
        return Shutdown(signo);
      case Outcome::kRejoin:
        StopWorkers(SIGTERM);
        continue;
      case Outcome::kPeerGaveUp:
        StopWorkers(SIGTERM);
        return FollowGiveUp(round_.round);
      case Outcome::kFailed: {
        ASSIGN_OR_RETURN(int code, HandleFailure());
        if (code >= 0) return code;
        continue;
      }
      case Outcome::kHung: {
        ASSIGN_OR_RETURN(int code, HandleHang());
        if (code >= 0) return code;
        continue;
      }
      case Outcome::kSucceeded: {
        StopWorkers(SIGTERM);  // all exited; this drains their logs
        Publish("finished");
        Log(absl::StrCat("workers finished in round ", round_.round));
        ASSIGN_OR_RETURN(bool rejoin, ExitBarrier(&signo));
        if (signo != 0) return Shutdown(signo);
        if (rejoin) continue;
        return 0;
      }
    }
  }
}

void ElasticAgent::Impl::Publish(const std::string& phase) {
  if (http_ == nullptr) return;
  absl::MutexLock l(&status_mu_);
  status_.phase = phase;
  status_.round = round_.round;
  status_.group_rank = round_.group_rank;
  status_.group_world_size = round_.group_world_size;
  status_.world_size = round_.world_size;
  status_.restarts = restart_count_;
  status_.workers.clear();
  if (group_ != nullptr) {
    for (int i = 0; i < group_->size(); ++i) {
      AgentStatus::Worker w;
      w.rank = group_->spec(i).rank;
      w.local_rank = group_->spec(i).local_rank;
      w.state = "running";
      for (const WorkerExit& e : group_->exits()) {
        if (e.local_rank == w.local_rank) w.state = e.ok() ? "succeeded" : "failed";
      }
      status_.workers.push_back(w);
    }
  }
  status_.progress = progress_.ranks();
}

int ElasticAgent::Impl::Shutdown(int signo) {
  const bool forward =
      std::find(o_.forward_signals.begin(), o_.forward_signals.end(), signo) != o_.forward_signals.end();
  Publish("stopping");
  if (group_ != nullptr) {
    Log(absl::StrCat("received ", SignalName(signo), "; stopping workers (grace ",
                     absl::FormatDuration(o_.grace_period), ")"));
    StopWorkers(forward ? signo : SIGTERM);
    // Workers that saved and exited 75 on the stop make the launcher exit
    // 75 too, so a scheduler (or a script) sees "preempted, resubmit to
    // resume" rather than a plain 128 + SIGTERM.
    const std::vector<WorkerExit>& exits = group_->exits();
    const bool saved =
        !exits.empty() &&
        std::all_of(exits.begin(), exits.end(),
                    [](const WorkerExit& e) { return e.signal == 0 && (e.exit_code == kExitPreempted || e.exit_code == 0); }) &&
        std::any_of(exits.begin(), exits.end(), [](const WorkerExit& e) { return e.exit_code == kExitPreempted; });
    if (saved) {
      Log(absl::StrCat("workers saved and exited on ", SignalName(signo), "; exit code ", kExitPreempted));
      return kExitPreempted;
    }
  } else {
    Log(absl::StrCat("received ", SignalName(signo), "; exiting"));
  }
  return 128 + signo;
}

void ElasticAgent::Impl::Linger() {
  // The host's server must outlive the other nodes' last calls (their exit
  // barrier, their reading of a give-up decision, their Leave). Wait until
  // every other member of the round has left, at most a few seconds.
  if (hosted_.server == nullptr || round_.group_world_size <= 1) return;
  const absl::Time deadline = absl::Now() + absl::Seconds(3);
  while (absl::Now() < deadline) {
    bool all_gone = true;
    {
      absl::MutexLock l(&mu_);
      for (const RankTableEntry& e : round_.rank_table) {
        if (e.node_id != rdzv_->node_id() && !departed_.contains(e.node_id)) all_gone = false;
      }
    }
    if (all_gone) return;
    signals_->Wait(absl::Milliseconds(20));
  }
}

void ElasticAgent::Impl::LeaveBounded() {
  // Leave is a courtesy: with the server already gone it would wait for its
  // whole RPC deadline, so it gets a short one.
  if (rdzv_ == nullptr || left_) return;
  left_ = true;
  rdzv_->Leave(absl::Seconds(2)).IgnoreError();
}

void ElasticAgent::Impl::Cleanup() {
  if (group_ != nullptr) group_->Stop(SIGKILL, absl::ZeroDuration());
  KillStrayChildren({});
  LeaveBounded();
  Linger();
  if (watch_ != nullptr) watch_->Cancel();
  if (hosted_.server != nullptr) hosted_.server->Shutdown();
  if (!tmp_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(tmp_dir_, ec);
  }
  // Last: /healthz answers for as long as the agent lives.
  if (http_ != nullptr) http_->Stop();
}

ElasticAgent::ElasticAgent(AgentOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

ElasticAgent::~ElasticAgent() {
  // A Join thread still blocked in the client must not find it destroyed;
  // the process is about to exit anyway.
  if (impl_ != nullptr && impl_->join_pending()) (void)impl_.release();
}

int ElasticAgent::Run() { return impl_->Run(); }

}  // namespace anvil::launcher
