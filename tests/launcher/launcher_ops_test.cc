// Operations (issue 13): the agent's HTTP endpoint (/metrics in the
// Prometheus text format, /healthz, /readyz) read with an HTTP client while
// real `train` ranks run; the hang watchdog naming a rank that stopped
// making progress outside any collective (train's test-only hang hook) and
// restarting, then failing the job; the rendezvous server's standard gRPC
// health check; and the torchrun differences: --run_path, static
// --master-addr/--master-port reaching workers as given, exit 75 when the
// workers saved on SIGTERM (143 otherwise is covered by launcher_e2e_test).
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "launcher/agent/agent_status.h"
#include "launcher/agent/progress_watch.h"
#include "launcher/server/server.h"
#include "runtime/data/token_shard.h"
#include "runtime/trainer/progress_file.h"
#include "tests/launcher/launcher_harness.h"

namespace anvil::launcher::testing {
namespace {

// Parses Prometheus text: every sample's family has a TYPE line before it,
// names are valid, values are numbers. Returns "name{labels}" -> value.
std::map<std::string, double> ParsePrometheus(const std::string& text, std::string* error) {
  std::map<std::string, double> out;
  std::map<std::string, std::string> types;
  static const std::regex kSample(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$)");
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "# TYPE ")) {
      std::vector<std::string> f = absl::StrSplit(line.substr(7), ' ');
      if (f.size() != 2 || (f[1] != "gauge" && f[1] != "counter")) {
        *error = absl::StrCat("bad TYPE line: ", line);
        return {};
      }
      types[f[0]] = f[1];
      continue;
    }
    if (absl::StartsWith(line, "# HELP ")) continue;
    std::smatch m;
    const std::string l(line);
    double v = 0;
    if (!std::regex_match(l, m, kSample) || !absl::SimpleAtod(m[3].str(), &v)) {
      *error = absl::StrCat("bad sample line: ", line);
      return {};
    }
    if (!types.contains(m[1].str())) {
      *error = absl::StrCat("sample before its TYPE line: ", line);
      return {};
    }
    out[m[1].str() + m[2].str()] = v;
  }
  return out;
}

class LauncherOps : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/launcher_ops_", ::getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<Process> Launch(std::vector<std::string> args, const std::vector<std::string>& program,
                                  const std::map<std::string, std::string>& env = {}) {
    args.insert(args.end(), program.begin(), program.end());
    return std::make_unique<Process>(LauncherArgv({}, ANVIL_LAUNCHER, args),
                                     ProcessOptions::Log(absl::StrCat(dir_, "/launcher.log"), env));
  }

  // A tiny GPT run of `train` on a synthetic token shard.
  std::vector<std::string> Train(const std::vector<std::string>& extra) {
    std::vector<uint32_t> tokens(30000);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<uint32_t>(i * 7 % 200);
    EXPECT_TRUE(WriteTokenShard(dir_ + "/train_0.bin", tokens).ok());
    std::vector<std::string> a = {ANVIL_TRAIN_BIN,      "--train_pattern=" + dir_ + "/train_*.bin",
                                  "--val_pattern=",     "--eval_every=0",
                                  "--n_layer=1",        "--n_head=2",
                                  "--n_embd=16",        "--max_seq_len=16",
                                  "--seq_len=16",       "--batch_size=2",
                                  "--steps=1000000",    "--log_every=1000",
                                  "--threads=1",        "--dist_timeout_s=120"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  std::string dir_;
};

TEST(PrometheusText, EveryFamilyTypedAndEverySampleParses) {
  AgentStatus s;
  s.host = "h\"1";
  s.run_id = "job";
  s.phase = "running";
  s.round = 2;
  s.restarts = 1;
  s.world_size = 2;
  s.started = absl::Now() - absl::Seconds(5);
  s.workers = {{0, 0, "running"}, {1, 1, "failed"}};
  RankProgress p;
  p.who = {1, 1, ""};
  ProgressSnapshot snap;
  snap.pid = 7;
  snap.step = 42;
  snap.items_per_s = 1234.5;
  snap.unit = "tokens";
  snap.collectives = 99;
  snap.checkpoint_step = 40;
  snap.checkpoint_unix_ms = absl::ToUnixMillis(absl::Now() - absl::Seconds(3));
  p.last = snap;
  p.last_change = p.last_heartbeat = absl::Now() - absl::Seconds(2);
  s.progress = {p};
  std::string error;
  const auto m = ParsePrometheus(FormatPrometheus(s, absl::Now()), &error);
  ASSERT_TRUE(error.empty()) << error;
  EXPECT_EQ(m.at("anvil_worker_step{rank=\"1\",local_rank=\"1\"}"), 42);
  EXPECT_EQ(m.at("anvil_restarts_total"), 1);
  EXPECT_EQ(m.at("anvil_workers{state=\"failed\"}"), 1);
  EXPECT_EQ(m.at("anvil_worker_throughput_per_second{rank=\"1\",local_rank=\"1\",unit=\"tokens\"}"), 1234.5);
  EXPECT_NEAR(m.at("anvil_worker_heartbeat_age_seconds{rank=\"1\",local_rank=\"1\"}"), 2, 0.5);
  EXPECT_NEAR(m.at("anvil_checkpoint_age_seconds{rank=\"1\",local_rank=\"1\"}"), 3, 0.5);
  EXPECT_EQ(m.at("anvil_agent_up{host=\"h\\\"1\",run_id=\"job\"}"), 1);  // quotes escaped
  EXPECT_EQ(m.at("anvil_agent_ready"), 0);  // a failed worker: not ready
}

TEST(ProgressWatchTest, NamesTheRankOutsideACollectiveNotTheOnesWaitingForIt) {
  const std::string dir = ::testing::TempDir();
  const std::string f0 = absl::StrCat(dir, "/progress_w0_", ::getpid()), f1 = absl::StrCat(dir, "/progress_w1_", ::getpid());
  ProgressWatch w(absl::Seconds(10));
  const absl::Time t0 = absl::Now();
  w.Reset({{0, 0, f0}, {1, 1, f1}}, t0);
  ProgressSnapshot a, b;
  a.pid = 10, a.step = 3, a.collectives = 12, a.in_collective = true, a.op = "allreduce", a.seq = 12, a.group = "pg";
  b.pid = 11, b.step = 3, b.collectives = 11, b.in_collective = false, b.op = "allreduce", b.seq = 11, b.group = "pg";
  ASSERT_TRUE(WriteProgressFile(f0, a).ok());
  ASSERT_TRUE(WriteProgressFile(f1, b).ok());
  w.Poll(t0);
  EXPECT_FALSE(w.CheckHang(t0 + absl::Seconds(9)).has_value());
  std::optional<std::string> hang = w.CheckHang(t0 + absl::Seconds(11));
  ASSERT_TRUE(hang.has_value());
  EXPECT_TRUE(absl::StartsWith(*hang, "rank 1 (local rank 1, pid 11)")) << *hang;
  EXPECT_NE(hang->find("outside any collective"), std::string::npos) << *hang;
  // Both past their limits: still the one outside a collective.
  EXPECT_TRUE(absl::StartsWith(*w.CheckHang(t0 + absl::Seconds(20)), "rank 1 ")) << *w.CheckHang(t0 + absl::Seconds(20));
  // Progress resets the clock; off means never.
  b.step = 4;
  ASSERT_TRUE(WriteProgressFile(f1, b).ok());
  w.Poll(t0 + absl::Seconds(11));
  EXPECT_FALSE(w.CheckHang(t0 + absl::Seconds(12)).has_value());  // rank 0 in a collective: 1.5 x
  EXPECT_TRUE(absl::StartsWith(*w.CheckHang(t0 + absl::Seconds(16)), "rank 0 ")) << *w.CheckHang(t0 + absl::Seconds(16));
  // Start-up (no step completed yet) is never judged.
  a.step = 0;
  ASSERT_TRUE(WriteProgressFile(f0, a).ok());
  w.Reset({{0, 0, f0}}, t0);
  w.Poll(t0);
  EXPECT_FALSE(w.CheckHang(t0 + absl::Hours(1)).has_value());
  ProgressWatch off(absl::ZeroDuration());
  off.Reset({{0, 0, f0}}, t0);
  off.Poll(t0);
  EXPECT_FALSE(off.CheckHang(t0 + absl::Hours(1)).has_value());
  std::filesystem::remove(f0);
  std::filesystem::remove(f1);
}

TEST(RdzvServerHealth, StandardGrpcHealthCheckAnswersServingWithoutAToken) {
  RendezvousServer server;
  ServerOptions so;
  so.host = "127.0.0.1";
  so.port = 0;
  so.token = "secret";  // the health service needs none
  absl::StatusOr<int> port = server.Start(so);
  ASSERT_TRUE(port.ok()) << port.status();
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", *port), grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  auto check = [&](const std::string& method, std::string* body) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1);  // HealthCheckRequest{service: ""}: zero bytes
    grpc::ByteBuffer response;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response,
                   [&](grpc::Status s) { done.set_value(std::move(s)); });
    grpc::Status st = done.get_future().get();
    std::vector<grpc::Slice> slices;
    if (st.ok() && response.Dump(&slices).ok()) {
      for (const grpc::Slice& s : slices) body->append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    return st;
  };
  std::string body;
  grpc::Status st = check("/grpc.health.v1.Health/Check", &body);
  ASSERT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
  // HealthCheckResponse{status: SERVING (1)}: field 1, varint 1.
  EXPECT_EQ(body, std::string("\x08\x01", 2));
  server.Shutdown();
}

TEST_F(LauncherOps, MetricsHealthAndReadinessWhileTrainingThenExit75OnSigterm) {
  const int port = FreePort();
  auto p = Launch({"--standalone", "--nproc_per_node=2", absl::StrCat("--metrics_port=", port), "--grace_period=30"},
                  Train({"--checkpoint_dir=" + dir_ + "/ck", "--checkpoint_every=5"}));
  ASSERT_TRUE(p->WaitForText("serving /metrics", absl::Seconds(20))) << p->Output();
  httplib::Client http("127.0.0.1", port);
  http.set_connection_timeout(5);
  http.set_read_timeout(5);
  auto healthz = http.Get("/healthz");
  ASSERT_TRUE(healthz) << "no answer from /healthz";
  EXPECT_EQ(healthz->status, 200);
  // Wait for both ranks to report a few steps and a checkpoint.
  std::map<std::string, double> m;
  std::string text;
  const absl::Time deadline = absl::Now() + absl::Seconds(90);
  for (;;) {
    auto res = http.Get("/metrics");
    ASSERT_TRUE(res) << "no answer from /metrics";
    ASSERT_EQ(res->status, 200);
    EXPECT_NE(res->get_header_value("Content-Type").find("text/plain; version=0.0.4"), std::string::npos);
    std::string error;
    text = res->body;
    m = ParsePrometheus(text, &error);
    ASSERT_TRUE(error.empty()) << error << "\n" << text;
    const auto s0 = m.find("anvil_worker_step{rank=\"0\",local_rank=\"0\"}");
    const auto s1 = m.find("anvil_worker_step{rank=\"1\",local_rank=\"1\"}");
    if (s0 != m.end() && s1 != m.end() && s0->second >= 6 && s1->second >= 6 &&
        m.contains("anvil_checkpoint_age_seconds{rank=\"0\",local_rank=\"0\"}")) {
      break;
    }
    ASSERT_LT(absl::Now(), deadline) << "no progress in /metrics:\n" << text << p->Output();
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_EQ(m["anvil_workers{state=\"running\"}"], 2) << text;
  EXPECT_EQ(m["anvil_world_size"], 2) << text;
  EXPECT_EQ(m["anvil_restarts_total"], 0) << text;
  EXPECT_GT(m["anvil_worker_throughput_per_second{rank=\"0\",local_rank=\"0\",unit=\"tokens\"}"], 0) << text;
  EXPECT_LT(m["anvil_worker_heartbeat_age_seconds{rank=\"1\",local_rank=\"1\"}"], 5) << text;
  EXPECT_GT(m["anvil_worker_collectives_total{rank=\"1\",local_rank=\"1\"}"], 0) << text;
  EXPECT_GE(m["anvil_checkpoint_step{rank=\"0\",local_rank=\"0\"}"], 5) << text;
  auto readyz = http.Get("/readyz");
  ASSERT_TRUE(readyz);
  EXPECT_EQ(readyz->status, 200) << readyz->body;

  // SIGTERM: the workers save and exit 75, and so does the launcher.
  p->Signal(SIGTERM);
  std::optional<int> code = p->Wait(absl::Seconds(40));
  ASSERT_TRUE(code.has_value()) << p->Output();
  EXPECT_EQ(*code, 75) << p->Output();
  EXPECT_NE(p->Output().find("workers saved and exited on SIGTERM; exit code 75"), std::string::npos) << p->Output();
}

TEST_F(LauncherOps, HangWatchdogNamesTheStuckRankRestartsAndThenFails) {
  const absl::Time t0 = absl::Now();
  auto p = Launch({"--standalone", "--nproc_per_node=2", "--hang_timeout=2", "--grace_period=2", "--max_restarts=1",
                   "--monitor_interval=0.1"},
                  Train({}), {{"ANVIL_TEST_ONLY_HANG_AT", "1:3"}, {"ANVIL_STOP_ABORT_S", "1"}});
  std::optional<int> code = p->Wait(absl::Seconds(100));
  ASSERT_TRUE(code.has_value()) << p->Output();
  const std::string out = p->Output();
  std::printf("hang: launcher exited %d after %.1f s\n", *code, absl::ToDoubleSeconds(absl::Now() - t0));
  EXPECT_EQ(*code, 124) << out;
  // Rank 1 is named (twice: once per attempt), outside any collective;
  // rank 0, blocked in a collective waiting for it, is not.
  size_t named = 0;
  for (size_t at = 0; (at = out.find("hang watchdog: rank 1 (local rank 1", at)) != std::string::npos; ++at) ++named;
  EXPECT_EQ(named, 2u) << out;
  EXPECT_NE(out.find("step 3, outside any collective"), std::string::npos) << out;
  EXPECT_EQ(out.find("hang watchdog: rank 0"), std::string::npos) << out;
  EXPECT_NE(out.find("restarting the job (restart 1 of 1)"), std::string::npos) << out;
  EXPECT_NE(out.find("giving up"), std::string::npos) << out;
}

// Two nodes (launchers on 127.0.0.1 and 127.0.0.2), one rank each: rank 1
// hangs outside any collective; rank 0, on the other node, stalls in a
// collective waiting for it. Both nodes name rank 1 and exit 124.
TEST_F(LauncherOps, HangIsNamedOnEveryNode) {
  const int port = FreePort();
  std::vector<std::unique_ptr<Process>> nodes;
  for (int n = 0; n < 2; ++n) {
    std::vector<std::string> args = {"--nnodes=2", absl::StrCat("--rdzv-endpoint=127.0.0.1:", port), "--rdzv_id=hang2",
                                     absl::StrCat("--local_addr=127.0.0.", n + 1), absl::StrCat("--node_rank=", n),
                                     "--hang_timeout=2", "--grace_period=2", "--max_restarts=0",
                                     "--monitor_interval=0.1",
                                     "--rdzv_conf=join_timeout=30,last_call_timeout=0.5,read_timeout=5,"
                                     "heartbeat_interval=0.2,heartbeat_timeout=3"};
    for (const std::string& a : Train({})) args.push_back(a);
    nodes.push_back(std::make_unique<Process>(
        LauncherArgv({}, ANVIL_LAUNCHER, args),
        ProcessOptions::Log(absl::StrCat(dir_, "/node", n, ".log"),
                            {{"ANVIL_TEST_ONLY_HANG_AT", "1:3"}, {"ANVIL_STOP_ABORT_S", "1"}})));
  }
  for (int n = 0; n < 2; ++n) {
    std::optional<int> code = nodes[n]->Wait(absl::Seconds(100));
    ASSERT_TRUE(code.has_value()) << nodes[n]->Output();
    EXPECT_EQ(*code, 124) << "node " << n << ":\n" << nodes[n]->Output();
    EXPECT_NE(nodes[n]->Output().find("rank 1 (local rank 0"), std::string::npos) << nodes[n]->Output();
    EXPECT_NE(nodes[n]->Output().find("step 3, outside any collective"), std::string::npos) << nodes[n]->Output();
    EXPECT_EQ(nodes[n]->Output().find("hang watchdog: rank 0"), std::string::npos) << nodes[n]->Output();
  }
}

TEST_F(LauncherOps, StaticMasterAddrAndPortReachWorkersAsGiven) {
  const int port = FreePort();
  auto p = Launch({"--nnodes=1", "--nproc-per-node=2", "--master-addr=127.0.0.1", absl::StrCat("--master-port=", port),
                   "--rdzv_id=static"},
                  {ANVIL_TEST_WORKER, "env_store", dir_});
  std::optional<int> code = p->Wait(absl::Seconds(30));
  ASSERT_TRUE(code.has_value()) << p->Output();
  ASSERT_EQ(*code, 0) << p->Output();
  for (int r = 0; r < 2; ++r) {
    EXPECT_NE(ReadFile(absl::StrCat(dir_, "/rank_", r)).find(absl::StrCat(" master=127.0.0.1:", port, "\n")),
              std::string::npos)
        << ReadFile(absl::StrCat(dir_, "/rank_", r));
  }
}

TEST_F(LauncherOps, RunPathRunsThePathAndNeverLooksItUpOnPath) {
  auto ok = Launch({"--standalone", "--run-path"}, {ANVIL_TEST_WORKER, "env_store", dir_});
  std::optional<int> code = ok->Wait(absl::Seconds(30));
  ASSERT_TRUE(code.has_value()) << ok->Output();
  EXPECT_EQ(*code, 0) << ok->Output();
  EXPECT_FALSE(ReadFile(dir_ + "/rank_0").empty());
  // `true` is on PATH, but --run_path means ./true, which does not exist.
  auto bare = Launch({"--standalone", "--run_path"}, {"true"});
  code = bare->Wait(absl::Seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 1) << bare->Output();
  EXPECT_NE(bare->Output().find("./true"), std::string::npos) << bare->Output();
  auto path = Launch({"--standalone"}, {"true"});
  code = path->Wait(absl::Seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << path->Output();
}

TEST_F(LauncherOps, SigtermWhenWorkersSavedAndExited75ExitsWith75) {
  auto p = Launch({"--standalone", "--nproc_per_node=2", "--grace_period=5", "--monitor_interval=0.05"},
                  {ANVIL_TEST_WORKER, "trap_term", dir_, "100", "75"});
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (WorkerPids(dir_).size() < 2 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_EQ(WorkerPids(dir_).size(), 2u) << p->Output();
  p->Signal(SIGTERM);
  std::optional<int> code = p->Wait(absl::Seconds(10));
  ASSERT_TRUE(code.has_value()) << p->Output();
  EXPECT_EQ(*code, 75) << p->Output();
}

}  // namespace
}  // namespace anvil::launcher::testing
