// `train` on a host whose name does not resolve (issue 13): Gloo used to
// bind to the host name and crash (SIGSEGV, empty stderr). Each rank runs
// in its own UTS namespace (`unshare -u`, needs root; skipped otherwise)
// with an unresolvable host name: on one node the ranks train over the
// loopback; across nodes without ANVIL_SOCKET_IFNAME or ANVIL_LOCAL_ADDR
// the rank exits 2 with one line saying what to set.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "launcher/server/server.h"
#include "runtime/data/token_shard.h"
#include "tests/common/process.h"

namespace anvil {
namespace {

using testing::Process;
using testing::ProcessResult;

constexpr char kUnshare[] = "/usr/bin/unshare";
constexpr char kNoSuchHost[] = "anvil-no-such-host.invalid";

class DistHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("/usr/bin/unshare -u /bin/true >/dev/null 2>&1") != 0) {
      GTEST_SKIP() << "unshare -u is not permitted here (needs root or user namespaces)";
    }
    dir_ = std::filesystem::temp_directory_path() / ("anvil_dist_host_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    std::vector<uint32_t> t(20000);
    for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<uint32_t>(i * 13 % 200);
    ASSERT_TRUE(WriteTokenShard((dir_ / "train_0.bin").string(), t).ok());
    ServerOptions so;
    so.host = "127.0.0.1";
    so.port = 0;
    auto port = server_.Start(so);
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }
  void TearDown() override {
    server_.Shutdown();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // `train` in a fresh UTS namespace whose host name does not resolve.
  std::unique_ptr<Process> Rank(int rank, int local_world, const std::string& run) {
    const std::vector<std::string> train{
        ANVIL_TRAIN_BIN,  "--train_pattern=" + (dir_ / "train_*.bin").string(),
        "--val_pattern=", "--eval_every=0",
        "--n_layer=1",    "--n_head=2",
        "--n_embd=16",    "--max_seq_len=16",
        "--seq_len=16",   "--batch_size=2",
        "--steps=2",      "--log_every=1",
        "--threads=1",    "--dist_timeout_s=30"};
    const std::string script =
        absl::StrCat("hostname ", kNoSuchHost, " && exec ", absl::StrJoin(train, " "));
    std::map<std::string, std::string> env{{"RANK", std::to_string(rank)},
                                           {"WORLD_SIZE", "2"},
                                           {"LOCAL_RANK", std::to_string(rank % local_world)},
                                           {"LOCAL_WORLD_SIZE", std::to_string(local_world)},
                                           {"ANVIL_STORE_ADDR", absl::StrCat("127.0.0.1:", port_)},
                                           {"ANVIL_RUN_ID", run},
                                           {"ANVIL_STORE_PREFIX", run + "/"}};
    return std::make_unique<Process>(kUnshare,
                                     std::vector<std::string>{"-u", "/bin/sh", "-c", script}, env);
  }

  std::filesystem::path dir_;
  RendezvousServer server_;
  int port_ = 0;
};

TEST_F(DistHostTest, OneNodeTrainsOverTheLoopback) {
  auto r0 = Rank(0, 2, "one_node");
  auto r1 = Rank(1, 2, "one_node");
  std::vector<ProcessResult> res = testing::RunAll({r0.get(), r1.get()}, 90);
  ASSERT_EQ(res[0].exit_code, 0) << res[0].err;
  ASSERT_EQ(res[1].exit_code, 0) << res[1].err;
  EXPECT_NE(res[0].out.find("step     2/2"), std::string::npos) << res[0].out;
  EXPECT_NE(res[0].err.find(absl::StrCat("'", kNoSuchHost, "' does not resolve")),
            std::string::npos)
      << res[0].err;
  EXPECT_NE(res[0].err.find("collectives use 127.0.0.1"), std::string::npos) << res[0].err;
}

TEST_F(DistHostTest, AcrossNodesItIsOneLineAndExitTwo) {
  auto r0 = Rank(0, 1, "two_nodes");
  ProcessResult res = r0->Finish(60);
  EXPECT_EQ(res.exit_code, 2) << res.err;
  EXPECT_NE(res.err.find("ANVIL_SOCKET_IFNAME"), std::string::npos) << res.err;
  EXPECT_NE(res.err.find(kNoSuchHost), std::string::npos) << res.err;
  EXPECT_EQ(res.err.find('\n'), res.err.size() - 1) << "one line expected: " << res.err;
}

}  // namespace
}  // namespace anvil
