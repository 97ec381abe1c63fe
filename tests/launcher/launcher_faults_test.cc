// Bad input and faults, end to end: each must end the launcher with one clear
// error line and a non-zero exit within the stated timeout, leaving no
// process behind. Also: the Slurm / Kubernetes environment mapped to flags,
// checked through --dry_run.
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <filesystem>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/launcher/launcher_harness.h"

namespace anvil::launcher::testing {
namespace {

class LauncherFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/launcher_faults_", ::getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    port_ = FreePort();
  }
  void TearDown() override {
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<Process> Start(const std::vector<std::string>& args, const std::string& name,
                                 const std::map<std::string, std::string>& env = {}) {
    return std::make_unique<Process>(
        LauncherArgv({}, ANVIL_LAUNCHER, args),
        ProcessOptions::Log(absl::StrCat(dir_, "/", name, ".log"), env));
  }

  // Runs to completion; asserts a non-zero exit within `limit` and exactly one
  // "launcher: error:" line containing `want`.
  void ExpectOneLineError(const std::vector<std::string>& args, absl::string_view want, absl::Duration limit,
                          const std::map<std::string, std::string>& env = {}) {
    auto p = Start(args, "launcher", env);
    std::optional<int> code = p->Wait(limit + absl::Seconds(3));
    ASSERT_TRUE(code.has_value()) << "hung past " << limit << ":\n" << p->Output();
    EXPECT_NE(*code, 0);
    EXPECT_LE(p->took(), limit + absl::Seconds(1)) << p->Output();
    int error_lines = 0;
    std::string error;
    for (absl::string_view line : absl::StrSplit(p->Output(), '\n')) {
      if (absl::StartsWith(line, "launcher: error: ")) {
        ++error_lines;
        error = std::string(line);
      }
    }
    EXPECT_EQ(error_lines, 1) << p->Output();
    EXPECT_NE(error.find(std::string(want)), std::string::npos)
        << "want \"" << want << "\" in: " << p->Output();
  }

  std::string dir_;
  int port_ = 0;
};

TEST_F(LauncherFaults, UnknownAndMalformedFlags) {
  ExpectOneLineError({"--nproc_per_nod=2", "w"}, "unknown flag --nproc_per_nod", absl::Seconds(1));
  ExpectOneLineError({"--nnodes=two", "w"}, "--nnodes", absl::Seconds(1));
  ExpectOneLineError({"--standalone"}, "missing the training program", absl::Seconds(1));
}

TEST_F(LauncherFaults, MissingTrainingBinary) {
  ExpectOneLineError({"--standalone", "/no/such/train"}, "cannot find program '/no/such/train'", absl::Seconds(2));
}

TEST_F(LauncherFaults, UnreachableEndpoint) {
  // Nothing listens on port_; read_timeout bounds the first contact.
  ExpectOneLineError({"--nnodes=2", absl::StrCat("--rdzv_endpoint=127.0.0.1:", port_),
                      "--rdzv_conf=is_host=false,read_timeout=1.5,join_timeout=30", "/bin/true"},
                     "cannot reach", absl::Seconds(2));
}

TEST_F(LauncherFaults, PortAlreadyInUse) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  a.sin_port = htons(port_);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  ExpectOneLineError({"--nnodes=2", absl::StrCat("--rdzv_endpoint=127.0.0.1:", port_), "--rdzv_conf=is_host=true",
                      "/bin/true"},
                     "already in use", absl::Seconds(2));
  // Without is_host the launcher would join whoever holds the port, but a
  // program that does not answer as an anvil server is refused.
  ExpectOneLineError({"--nnodes=2", absl::StrCat("--rdzv_endpoint=127.0.0.1:", port_),
                      "--rdzv_conf=read_timeout=1", "/bin/true"},
                     "already in use", absl::Seconds(3));
  ::close(fd);
}

TEST_F(LauncherFaults, NeverCompletingRendezvousNamesWhatIsMissing) {
  ExpectOneLineError({"--nnodes=2", absl::StrCat("--rdzv_endpoint=127.0.0.1:", port_),
                      "--rdzv_conf=join_timeout=1.5", "/bin/true"},
                     "missing 1 node", absl::Seconds(3));
}

TEST_F(LauncherFaults, WrongTokenIsRefused) {
  auto host = Start({"--nnodes=2", absl::StrCat("--rdzv_endpoint=127.0.0.1:", port_), "--local_addr=127.0.0.1",
                     "--token=right", "--rdzv_conf=join_timeout=10", "/bin/true"},
                    "host");
  absl::SleepFor(absl::Milliseconds(300));
  ExpectOneLineError({"--nnodes=2", absl::StrCat("--rdzv_endpoint=127.0.0.1:", port_), "--local_addr=127.0.0.2",
                      "--token=wrong", "--rdzv_conf=join_timeout=10,read_timeout=3", "/bin/true"},
                     "token", absl::Seconds(4));
  host->Signal(SIGTERM);
  std::optional<int> code = host->Wait(absl::Seconds(3));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 128 + SIGTERM);
}

TEST_F(LauncherFaults, KilledLauncherTakesItsWorkersAlong) {
  auto p = Start({"--standalone", "--nproc_per_node=2", ANVIL_TEST_WORKER, "ignore_term", dir_}, "launcher");
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (WorkerPids(dir_).size() < 2 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  std::vector<pid_t> workers = WorkerPids(dir_);
  ASSERT_EQ(workers.size(), 2u) << p->Output();
  p->Signal(SIGKILL);
  ASSERT_TRUE(p->Wait(absl::Seconds(2)).has_value());
  absl::SleepFor(absl::Milliseconds(200));
  for (pid_t w : workers) EXPECT_FALSE(ProcessAlive(w)) << "worker " << w << " outlived a kill -9'd launcher";
}

TEST_F(LauncherFaults, StrayGrandchildrenAreCleanedUp) {
  // A worker that double-forks a daemon into its own session: the launcher,
  // a child subreaper, still finds and kills it on exit.
  const std::string pidfile = dir_ + "/pid_daemon";
  auto p = Start({"--standalone", "sh", "-c", absl::StrCat("setsid sleep 60 & echo $! > ", pidfile, "; exit 0")},
                 "launcher");
  std::optional<int> code = p->Wait(absl::Seconds(5));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << p->Output();
  absl::SleepFor(absl::Milliseconds(100));
  for (pid_t w : WorkerPids(dir_)) EXPECT_FALSE(ProcessAlive(w)) << "daemon " << w << " survived";
}

std::string DryRun(const std::map<std::string, std::string>& env, std::vector<std::string> args, const std::string& dir) {
  args.insert(args.begin(), "--dry_run");
  // Only the variables given: none inherited from wherever the test runs.
  std::vector<std::string> prefix = {"env", "-u", "SLURM_JOB_ID", "-u", "JOB_COMPLETION_INDEX"};
  for (const auto& [k, v] : env) prefix.push_back(absl::StrCat(k, "=", v));
  Process p(LauncherArgv(prefix, ANVIL_LAUNCHER, args), ProcessOptions::Log(dir + "/dry.log"));
  std::optional<int> code = p.Wait(absl::Seconds(5));
  EXPECT_TRUE(code.has_value() && *code == 0) << p.Output();
  return p.Output();
}

TEST_F(LauncherFaults, SlurmEnvironmentBecomesFlags) {
  std::string out = DryRun({{"SLURM_JOB_ID", "777"}, {"SLURM_NNODES", "4"}, {"SLURM_NODEID", "3"},
                            {"SLURM_JOB_NODELIST", "gpu[07-09,11],login"}},
                           {"--nproc_per_node=8", "train"}, dir_);
  EXPECT_NE(out.find("nnodes = 4:4"), std::string::npos) << out;
  EXPECT_NE(out.find("node_rank = 3"), std::string::npos) << out;
  EXPECT_NE(out.find("rdzv_id = 777"), std::string::npos) << out;
  EXPECT_NE(out.find("rdzv_endpoint = gpu07:29400"), std::string::npos) << out;
}

TEST_F(LauncherFaults, KubernetesEnvironmentBecomesFlags) {
  std::string out = DryRun({{"JOB_COMPLETION_INDEX", "2"}, {"PET_NNODES", "2:4"}, {"PET_NPROC_PER_NODE", "4"},
                            {"PET_RDZV_ENDPOINT", "train-0.train"}, {"PET_MAX_RESTARTS", "3"}},
                           {"train"}, dir_);
  EXPECT_NE(out.find("nnodes = 2:4"), std::string::npos) << out;
  EXPECT_NE(out.find("node_rank = 2"), std::string::npos) << out;
  EXPECT_NE(out.find("nproc_per_node = 4"), std::string::npos) << out;
  EXPECT_NE(out.find("rdzv_endpoint = train-0.train:29400"), std::string::npos) << out;
  EXPECT_NE(out.find("max_restarts = 3"), std::string::npos) << out;
}

}  // namespace
}  // namespace anvil::launcher::testing
