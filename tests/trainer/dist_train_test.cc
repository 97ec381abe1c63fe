// `train` as real worker processes meeting through the gRPC store: a 2-rank
// run logs the same losses as one rank on the same global batch, and ranks
// with different configs fail fast with an error naming the field.
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "launcher/server/server.h"
#include "runtime/data/token_shard.h"
#include "tests/common/process.h"

namespace anvil {
namespace {

using testing::Process;
using testing::ProcessResult;

class DistTrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("anvil_dist_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    std::vector<uint32_t> t(30000);
    for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<uint32_t>((i * 31 + i / 7) % 200);
    ASSERT_TRUE(WriteTokenShard((dir_ / "train_0.bin").string(), t).ok());
    ServerOptions so;
    so.host = "127.0.0.1";
    so.port = 0;
    so.token = "secret";
    auto port = server_.Start(so);
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }
  void TearDown() override {
    server_.Shutdown();
    std::filesystem::remove_all(dir_);
  }
  std::vector<std::string> Args(int batch, std::vector<std::string> extra = {}) const {
    std::vector<std::string> a{"--train_pattern=" + (dir_ / "train_*.bin").string(),
                               "--val_pattern=", "--eval_every=0", "--n_layer=2", "--n_head=2",
                               "--n_embd=16", "--max_seq_len=16", "--seq_len=16",
                               "--batch_size=" + std::to_string(batch), "--steps=4",
                               "--log_every=1", "--threads=1", "--lr=0.01", "--warmup_steps=0",
                               "--dist_timeout_s=20"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  std::map<std::string, std::string> Env(int rank, int world, const std::string& attempt) const {
    return {{"RANK", std::to_string(rank)},
            {"WORLD_SIZE", std::to_string(world)},
            {"LOCAL_RANK", std::to_string(rank)},
            {"LOCAL_WORLD_SIZE", std::to_string(world)},
            {"ANVIL_STORE_ADDR", absl::StrCat("127.0.0.1:", port_)},
            {"ANVIL_RUN_ID", "dist_test"},
            {"ANVIL_TOKEN", "secret"},
            {"ANVIL_STORE_PREFIX", attempt + "/"}};
  }
  static std::vector<double> Losses(const std::string& out) {
    std::vector<double> losses;
    for (absl::string_view line : absl::StrSplit(out, '\n')) {
      const size_t at = line.find("| loss ");
      if (at == absl::string_view::npos) continue;
      double v = 0;
      EXPECT_TRUE(absl::SimpleAtod(line.substr(at + 7, 6), &v)) << line;
      losses.push_back(v);
    }
    return losses;
  }

  std::filesystem::path dir_;
  RendezvousServer server_;
  int port_ = 0;
};

TEST_F(DistTrainTest, TwoRanksLogTheLossesOfOneRankOnTheSameGlobalBatch) {
  ProcessResult one = testing::RunProcess(ANVIL_TRAIN_BIN, Args(4));
  ASSERT_EQ(one.exit_code, 0) << one.err;
  const std::vector<double> ref = Losses(one.out);
  ASSERT_EQ(ref.size(), 4u) << one.out;
  for (const char* strategy : {"FULL_SHARD", "NO_SHARD"}) {
    Process r0(ANVIL_TRAIN_BIN, Args(2, {absl::StrCat("--sharding=", strategy)}),
               Env(0, 2, strategy));
    Process r1(ANVIL_TRAIN_BIN, Args(2, {absl::StrCat("--sharding=", strategy)}),
               Env(1, 2, strategy));
    std::vector<ProcessResult> res = testing::RunAll({&r0, &r1}, 90);
    ASSERT_EQ(res[0].exit_code, 0) << res[0].err;
    ASSERT_EQ(res[1].exit_code, 0) << res[1].err;
    EXPECT_EQ(res[1].out, "");  // only rank 0 logs
    EXPECT_NE(res[0].out.find("2 rank(s), " + std::string(strategy)), std::string::npos) << res[0].out;
    const std::vector<double> got = Losses(res[0].out);
    ASSERT_EQ(got.size(), ref.size()) << res[0].out;
    for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(got[i], ref[i], 2e-4) << strategy << " step " << i;
  }
}

// Issue 14, item 3: when one rank's shard write fails, every rank stops at
// the same step boundary with the save's error (exit 3), none hangs.
TEST_F(DistTrainTest, FailedSaveOnOneRankStopsEveryRank) {
  const std::vector<std::string> extra{"--steps=40", "--checkpoint_every=2",
                                       "--checkpoint_dir=" + (dir_ / "ck").string()};
  std::map<std::string, std::string> e0 = Env(0, 2, "save_fail"), e1 = Env(1, 2, "save_fail");
  e0["ANVIL_CKPT_FAULT"] = e1["ANVIL_CKPT_FAULT"] = "disk_full@4:1";
  Process r0(ANVIL_TRAIN_BIN, Args(2, extra), e0);
  Process r1(ANVIL_TRAIN_BIN, Args(2, extra), e1);
  std::vector<ProcessResult> res = testing::RunAll({&r0, &r1}, 60);
  for (const ProcessResult& r : res) {
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.err.find("checkpoint step_00000004 could not be saved"), std::string::npos)
        << r.err;
  }
  EXPECT_EQ(res[0].out.find("step    40/40"), std::string::npos) << res[0].out;
  EXPECT_TRUE(std::filesystem::exists(dir_ / "ck" / "step_00000002"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "ck" / "step_00000004.tmp"));
}

TEST_F(DistTrainTest, MismatchedConfigsFailFastNamingTheField) {
  Process r0(ANVIL_TRAIN_BIN, Args(2), Env(0, 2, "mismatch"));
  Process r1(ANVIL_TRAIN_BIN, Args(2, {"--n_layer=3"}), Env(1, 2, "mismatch"));
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<ProcessResult> res = testing::RunAll({&r0, &r1}, 60);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(secs, 15);
  for (const ProcessResult& r : res) {
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("rank 1's config differs from rank 0's"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("n_layer"), std::string::npos) << r.err;
  }
}

TEST_F(DistTrainTest, MissingStoreAddressIsAClearError) {
  std::map<std::string, std::string> env = Env(0, 2, "x");
  env["ANVIL_STORE_ADDR"] = "";
  Process p(ANVIL_TRAIN_BIN, Args(2), env);
  ProcessResult r = p.Finish(30);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("ANVIL_STORE_ADDR is not set"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace anvil
