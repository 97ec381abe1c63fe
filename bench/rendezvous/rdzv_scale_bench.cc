// rdzv_scale_bench: N simulated agents join one rendezvous round.
// The server runs in a forked child process (forked before the parent touches
// gRPC), so its RSS is measured alone. Agents are lightweight: one async
// Join call each on the gRPC callback client API, spread over `channels`
// channels (default: one channel, i.e. one TCP connection, per agent, as real
// agents on separate machines would have). No thread per agent.
// Reported: channel connect time, time from the first Join sent to the last
// answer (round complete), join latency p50/p99, server RSS before/peak, and
// the reference: the same N agents each doing one store Add at once (a bare
// burst of N RPCs on this machine), with the ratio round / reference.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "launcher/server/server.h"
#include "proto/rendezvous.grpc.pb.h"
#include "proto/store.grpc.pb.h"
#include "runtime/store/grpc_channel.h"

ABSL_FLAG(std::string, agents, "1000,5000", "Comma-separated agent counts.");
ABSL_FLAG(int, channels, 0, "Channels shared by the agents; 0: one per agent.");
ABSL_FLAG(int, nproc, 8, "nproc each simulated agent announces.");
ABSL_FLAG(bool, full_table, false,
          "Every agent asks for the full rank table (O(N^2) bytes); default: only group "
          "rank 0 gets it, the others their own entry.");

namespace {

constexpr char kRunId[] = "bench";
constexpr char kToken[] = "bench-token";

struct Child {
  pid_t pid = 0;
  int port = 0;
};

// Forks a server for `n` nodes; the child serves until SIGTERM.
Child ForkServer(int n) {
  int fds[2];
  if (pipe(fds) != 0) std::abort();
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    anvil::SilenceGrpcLogging();
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    anvil::ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.run_id = kRunId;
    o.token = kToken;
    o.rendezvous.min_nodes = o.rendezvous.max_nodes = n;
    o.rendezvous.join_timeout = absl::Seconds(120);
    o.rendezvous.heartbeat_timeout = absl::Seconds(120);
    anvil::RendezvousServer server;
    absl::StatusOr<int> port = server.Start(o);
    int p = port.ok() ? *port : 0;
    if (write(fds[1], &p, sizeof(p)) != sizeof(p)) _exit(1);
    close(fds[1]);
    int sig = 0;
    sigwait(&set, &sig);
    server.Shutdown();
    _exit(0);
  }
  close(fds[1]);
  Child c;
  c.pid = pid;
  if (read(fds[0], &c.port, sizeof(c.port)) != sizeof(c.port)) c.port = 0;
  close(fds[0]);
  return c;
}

// VmRSS / VmHWM of a process in MiB.
double ProcStatusMiB(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
      double kb = 0;
      if (parts.size() >= 2 && absl::SimpleAtod(parts[1], &kb)) return kb / 1024.0;
    }
  }
  return -1;
}

// Counts outstanding calls; Wait() returns when all answered.
class Latch {
 public:
  explicit Latch(int n) : left_(n) {}
  void CountDown() {
    absl::MutexLock lock(&mu_);
    --left_;
  }
  void Wait() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(+[](int* left) { return *left == 0; }, &left_));
  }

 private:
  absl::Mutex mu_;
  int left_;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

void Prepare(grpc::ClientContext& ctx) {
  ctx.AddMetadata(anvil::kRunIdMetadataKey, kRunId);
  ctx.AddMetadata(anvil::kTokenMetadataKey, kToken);
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(120)));
}

void RunOne(int n, const Child& server, int num_channels, int nproc, bool full_table) {
  std::string address = absl::StrCat("127.0.0.1:", server.port);
  int nc = num_channels > 0 ? std::min(num_channels, n) : n;
  grpc::ChannelArguments args;
  // Distinct channels must not share one subchannel (one TCP connection).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  absl::Time t0 = absl::Now();
  for (int i = 0; i < nc; ++i) {
    channels.push_back(grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
    channels.back()->GetState(/*try_to_connect=*/true);
  }
  int connected = 0;
  for (auto& c : channels) {
    if (c->WaitForConnected(absl::ToChronoTime(absl::Now() + absl::Seconds(60)))) ++connected;
  }
  absl::Duration connect_time = absl::Now() - t0;
  std::vector<std::unique_ptr<anvil::proto::RendezvousService::Stub>> rdzv;
  std::vector<std::unique_ptr<anvil::proto::StoreService::Stub>> store;
  for (auto& c : channels) {
    rdzv.push_back(anvil::proto::RendezvousService::NewStub(c));
    store.push_back(anvil::proto::StoreService::NewStub(c));
  }
  double rss_before = ProcStatusMiB(server.pid, "VmRSS");

  // Reference: a burst of N bare store Adds.
  struct AddCall {
    grpc::ClientContext ctx;
    anvil::proto::StoreAddRequest req;
    anvil::proto::StoreAddResponse resp;
  };
  std::vector<std::unique_ptr<AddCall>> adds(n);
  Latch add_latch(n);
  std::atomic<int> add_errors{0};
  absl::Time r0 = absl::Now();
  for (int i = 0; i < n; ++i) {
    adds[i] = std::make_unique<AddCall>();
    Prepare(adds[i]->ctx);
    adds[i]->req.set_key("ref");
    adds[i]->req.set_delta(1);
    store[i % nc]->async()->Add(&adds[i]->ctx, &adds[i]->req, &adds[i]->resp,
                                [&, i](grpc::Status s) {
                                  if (!s.ok()) add_errors++;
                                  add_latch.CountDown();
                                });
  }
  add_latch.Wait();
  absl::Duration ref_time = absl::Now() - r0;

  // The round: N Joins at once.
  struct JoinCall {
    grpc::ClientContext ctx;
    anvil::proto::RdzvJoinRequest req;
    anvil::proto::RdzvJoinResponse resp;
    absl::Time sent, done;
    grpc::Status status;
  };
  std::vector<std::unique_ptr<JoinCall>> joins(n);
  for (int i = 0; i < n; ++i) {
    auto& j = joins[i];
    j = std::make_unique<JoinCall>();
    Prepare(j->ctx);
    anvil::proto::RdzvNode* node = j->req.mutable_node();
    node->set_node_id(absl::StrCat("sim-", i));
    node->set_host(absl::StrCat("sim-host-", i));
    node->set_local_addr(absl::StrCat("10.", i / 65536, ".", (i / 256) % 256, ".", i % 256));
    node->set_nproc(nproc);
    node->set_requested_node_rank(-1);
    node->set_master_port(29500);
    j->req.set_min_nodes(n);
    j->req.set_max_nodes(n);
    j->req.set_endpoint_host("127.0.0.1");
    j->req.set_want_rank_table(full_table);
  }
  Latch join_latch(n);
  absl::Time j0 = absl::Now();
  for (int i = 0; i < n; ++i) {
    JoinCall* j = joins[i].get();
    j->sent = absl::Now();
    rdzv[i % nc]->async()->Join(&j->ctx, &j->req, &j->resp, [j, &join_latch](grpc::Status s) {
      j->done = absl::Now();
      j->status = std::move(s);
      join_latch.CountDown();
    });
  }
  absl::Duration send_time = absl::Now() - j0;
  join_latch.Wait();
  absl::Time last = j0;
  std::vector<double> lat_ms;
  std::vector<char> seen(n, 0);
  int errors = 0, bad = 0;
  for (auto& j : joins) {
    if (!j->status.ok()) {
      if (errors++ == 0) std::fprintf(stderr, "join error: %s\n", j->status.error_message().c_str());
      continue;
    }
    last = std::max(last, j->done);
    lat_ms.push_back(absl::ToDoubleMilliseconds(j->done - j->sent));
    int r = j->resp.group_rank();
    if (r < 0 || r >= n || seen[r] || j->resp.group_world_size() != n ||
        j->resp.world_size() != n * nproc ||
        j->resp.rank_table_size() != (full_table || r == 0 ? n : 1)) {
      ++bad;
    } else {
      seen[r] = 1;
    }
  }
  absl::Duration round_time = last - j0;
  double rss_peak = ProcStatusMiB(server.pid, "VmHWM");
  double rss_after = ProcStatusMiB(server.pid, "VmRSS");
  std::printf(
      "agents %5d  channels %5d (connected %d in %.2f s)  rank table: %s\n"
      "  round complete     %8.3f s   (all %d Joins sent in %.3f s)  %s\n"
      "  join latency       p50 %8.1f ms   p99 %8.1f ms   max %8.1f ms\n"
      "  reference          %8.3f s   (%d concurrent store Adds)  round/reference %.1fx\n"
      "  server RSS         %8.1f MiB before, %.1f MiB after, peak %.1f MiB\n"
      "  checks             errors %d, bad answers %d, add errors %d\n",
      n, nc, connected, absl::ToDoubleSeconds(connect_time),
      full_table ? "full to every agent" : "full to group rank 0, own entry to others", absl::ToDoubleSeconds(round_time), n,
      absl::ToDoubleSeconds(send_time), n == 1000 ? (round_time < absl::Seconds(5) ? "[target < 5 s: met]" : "[target < 5 s: MISSED]") : "",
      Percentile(lat_ms, 0.5), Percentile(lat_ms, 0.99), Percentile(lat_ms, 1.0),
      absl::ToDoubleSeconds(ref_time), n, absl::ToDoubleSeconds(round_time) / absl::ToDoubleSeconds(ref_time),
      rss_before, rss_after, rss_peak, errors, bad, add_errors.load());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::vector<int> counts;
  for (absl::string_view s : absl::StrSplit(absl::GetFlag(FLAGS_agents), ',')) {
    int n = 0;
    if (absl::SimpleAtoi(s, &n) && n > 0) counts.push_back(n);
  }
  // Fork every server before this process initialises gRPC.
  std::vector<Child> servers;
  for (int n : counts) servers.push_back(ForkServer(n));
  anvil::SilenceGrpcLogging();
  std::printf("rdzv_scale_bench: %d cores; server in its own process; agents on the gRPC "
              "callback client API (no thread per agent)\n",
              static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
  for (size_t i = 0; i < counts.size(); ++i) {
    if (servers[i].port == 0) {
      std::fprintf(stderr, "server for %d agents failed to start\n", counts[i]);
      continue;
    }
    RunOne(counts[i], servers[i], absl::GetFlag(FLAGS_channels), absl::GetFlag(FLAGS_nproc),
           absl::GetFlag(FLAGS_full_table));
    kill(servers[i].pid, SIGTERM);
    waitpid(servers[i].pid, nullptr, 0);
  }
  return 0;
}
