// End to end through the launcher: 2 ranks (FULL_SHARD) checkpointing every
// few steps; one worker is SIGKILLed at a random step; the launcher restarts
// the group (--max_restarts), the workers resume from the newest valid
// checkpoint, and the final parameters and optimizer state equal an
// uninterrupted run's bit for bit. The 2-rank checkpoint then resumes in a
// single process (resharded to NO_SHARD). And deterministically: rank 1 dies
// half-way through its shard file while rank 0 waits to commit; the restart
// skips the partial save and still ends equal.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "runtime/checkpoint/checkpoint_dir.h"
#include "runtime/data/token_shard.h"
#include "tests/checkpoint/thread_job.h"
#include "tests/common/process.h"

namespace anvil {
namespace {

namespace fs = std::filesystem;
using testing::Process;
using testing::ProcessOptions;

constexpr int kSteps = 30;

class LauncherResumeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new fs::path(fs::temp_directory_path() /
                         ("anvil_launcher_resume_" + std::to_string(getpid())));
    fs::remove_all(*root_);
    fs::create_directories(*root_);
    std::vector<uint32_t> t(60000);
    for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<uint32_t>((i * 7 + i / 13) % 200);
    ASSERT_TRUE(WriteTokenShard((*root_ / "train_0.bin").string(), t).ok());
    Process ref(ANVIL_LAUNCHER_BIN, LauncherArgs("ref"),
                ProcessOptions::Log((*root_ / "ref.log").string(), {}));
    ASSERT_EQ(ref.Wait(absl::Seconds(120)), 0) << ref.Output();
    want_ = new std::map<std::string, std::vector<float>>(testing::ReadCheckpoint(Final("ref")));
    ASSERT_FALSE(want_->empty());
  }
  static void TearDownTestSuite() {
    if (std::getenv("ANVIL_KEEP_TEST_DIR") == nullptr) fs::remove_all(*root_);
    delete root_;
    delete want_;
  }

  static std::vector<std::string> TrainArgs(const std::string& ckpt) {
    return {"--train_pattern=" + (*root_ / "train_*.bin").string(),
            "--val_pattern=",
            "--eval_every=0",
            "--n_layer=2",
            "--n_head=2",
            "--n_embd=64",
            "--max_seq_len=64",
            "--seq_len=64",
            "--batch_size=4",
            "--steps=" + std::to_string(kSteps),
            "--log_every=1",
            "--threads=1",
            "--sharding=FULL_SHARD",
            "--checkpoint_every=4",
            "--keep_last=2",
            "--dist_timeout_s=30",
            "--checkpoint_dir=" + (*root_ / ckpt).string()};
  }
  static std::vector<std::string> LauncherArgs(const std::string& ckpt) {
    std::vector<std::string> a{"--standalone", "--nproc_per_node=2", "--max_restarts=1",
                               "--monitor_interval=0.05", ANVIL_TRAIN_BIN};
    for (const std::string& s : TrainArgs(ckpt)) a.push_back(s);
    return a;
  }
  static std::string Final(const std::string& ckpt) {
    return (*root_ / ckpt / ckpt::StepDirName(kSteps)).string();
  }
  static void ExpectEqualsReference(const std::string& ckpt) {
    const auto got = testing::ReadCheckpoint(Final(ckpt));
    ASSERT_EQ(got.size(), want_->size());
    for (const auto& [name, values] : *want_) {
      EXPECT_EQ(std::memcmp(values.data(), got.at(name).data(), values.size() * 4), 0) << name;
    }
  }

  static fs::path* root_;
  static std::map<std::string, std::vector<float>>* want_;
};

fs::path* LauncherResumeTest::root_ = nullptr;
std::map<std::string, std::vector<float>>* LauncherResumeTest::want_ = nullptr;

TEST_F(LauncherResumeTest, KilledWorkerIsRestartedAndTheRunEndsBitForBitEqual) {
  std::random_device rd;
  std::mt19937 rng(rd());
  const int kill_at = std::uniform_int_distribution<int>(6, 20)(rng);
  const int victim_index = std::uniform_int_distribution<int>(0, 1)(rng);
  Process job(ANVIL_LAUNCHER_BIN, LauncherArgs("job"),
              ProcessOptions::Log((*root_ / "job.log").string(), {}));
  // At a random step after the first commit (before it, the restart would
  // rightly start from scratch, which is not what this test is about).
  ASSERT_TRUE(job.WaitForText("checkpoint step_00000004 committed", absl::Seconds(60)))
      << job.Output();
  ASSERT_TRUE(job.WaitForText(absl::StrFormat("step %5d/", kill_at), absl::Seconds(60)))
      << job.Output();
  std::vector<pid_t> workers = job.Children("train");
  ASSERT_EQ(workers.size(), 2u) << job.Output();
  ASSERT_EQ(::kill(workers[victim_index], SIGKILL), 0);
  const int rc = job.Wait(absl::Seconds(120)).value_or(-1);
  const std::string out = job.Output();
  ASSERT_EQ(rc, 0) << out;
  SCOPED_TRACE(absl::StrFormat("killed worker %d of 2 after step %d", victim_index, kill_at));
  EXPECT_NE(out.find("restarting the job"), std::string::npos) << out;
  EXPECT_NE(out.find("resumed from " + (*root_ / "job").string() + "/step_"), std::string::npos)
      << out;
  ExpectEqualsReference("job");

  // The same checkpoint continues in one process, resharded.
  std::vector<std::string> args = TrainArgs("job");
  args.push_back("--sharding=NO_SHARD");
  args.push_back("--steps=" + std::to_string(kSteps + 2));
  Process single(ANVIL_TRAIN_BIN, args, ProcessOptions::Log((*root_ / "single.log").string(), {}));
  ASSERT_EQ(single.Wait(absl::Seconds(60)), 0) << single.Output();
  EXPECT_NE(single.Output().find(
                "step_00000030 (saved by 2 rank(s) FULL_SHARD, loaded by 1 rank(s) NO_SHARD)"),
            std::string::npos)
      << single.Output();
  EXPECT_TRUE(fs::exists(*root_ / "job" / ckpt::StepDirName(kSteps + 2) / "manifest.pb"));
}

TEST_F(LauncherResumeTest, RankOneDyingMidShardFileIsRecoveredByTheRestart) {
  Process job(ANVIL_LAUNCHER_BIN, LauncherArgs("fault"),
              ProcessOptions::Log((*root_ / "fault.log").string(),
                                  {{"ANVIL_CKPT_FAULT", "shard_write@8:1"}}));
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(job.Wait(absl::Seconds(120)), 0) << job.Output();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string out = job.Output();
  EXPECT_NE(out.find("ANVIL_CKPT_FAULT: killing rank 1 at shard_write (step 8)"), std::string::npos)
      << out;
  // The dead rank's partial step_8.tmp is removed by rank 0 when that save
  // fails, or else skipped and removed by the resume.
  EXPECT_FALSE(fs::exists(*root_ / "fault" / "step_00000008.tmp")) << out;
  EXPECT_NE(out.find("resumed from " + (*root_ / "fault").string() + "/step_00000004"),
            std::string::npos)
      << out;
  ExpectEqualsReference("fault");
  // Rank 0's writer gave up waiting for the dead rank instead of holding the
  // old attempt until the store timeout (30 s here).
  EXPECT_LT(s, 25.0) << out;
}

}  // namespace
}  // namespace anvil
