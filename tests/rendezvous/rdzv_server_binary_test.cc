// The standalone rdzv_server binary: serves launchers, exits 0 on SIGTERM,
// and a port already in use is one clear stderr line with a non-zero exit.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/rendezvous/rendezvous_test_util.h"

namespace anvil {
namespace {

// Runs a shell command; returns exit status and combined stderr.
int RunCapture(const std::string& cmd, std::string& out) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(RdzvServerBinaryTest, PortInUseIsOneLineAndNonZeroExit) {
  auto taken = testing::StartServer(ServerOptions{});
  std::string out;
  int rc = RunCapture(absl::StrCat(RDZV_SERVER_BIN, " --host=127.0.0.1 --port=", taken->port),
                      out);
  EXPECT_EQ(rc, 2);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_NE(out.find("already in use"), std::string::npos) << out;
}

TEST(RdzvServerBinaryTest, BadFlagsAreOneLine) {
  std::string out;
  EXPECT_EQ(RunCapture(absl::StrCat(RDZV_SERVER_BIN, " --nnodes=4:2"), out), 1);
  EXPECT_NE(out.find("--nnodes=4:2"), std::string::npos) << out;
}

TEST(RdzvServerBinaryTest, ServesLaunchersAndStopsOnSigterm) {
  int out_pipe[2];
  ASSERT_EQ(pipe(out_pipe), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    close(out_pipe[0]);
    execl(RDZV_SERVER_BIN, RDZV_SERVER_BIN, "--host=127.0.0.1", "--port=0", "--nnodes=2",
          "--rdzv-id=job-42", "--last-call-timeout=0", nullptr);
    _exit(127);
  }
  close(out_pipe[1]);
  // "rdzv_server: listening on 127.0.0.1:<port> ..."
  std::string line;
  char c;
  while (read(out_pipe[0], &c, 1) == 1 && c != '\n') line.push_back(c);
  close(out_pipe[0]);
  size_t colon = line.find("127.0.0.1:");
  ASSERT_NE(colon, std::string::npos) << line;
  std::string port_text = line.substr(colon + 10, line.find(' ', colon) - colon - 10);
  testing::TestServer remote;
  ASSERT_TRUE(absl::SimpleAtoi(port_text, &remote.port)) << line;

  auto a = testing::MakeNode(remote, {"a"}, absl::Seconds(5), "");
  auto b = testing::MakeNode(remote, {"b"}, absl::Seconds(5), "");
  auto fa = testing::JoinAsync(a.get());
  absl::StatusOr<RendezvousRound> rb = b->Join();
  ASSERT_TRUE(rb.ok()) << rb.status();
  EXPECT_EQ(rb->group_world_size, 2);
  EXPECT_TRUE(fa.get().ok());

  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace anvil
