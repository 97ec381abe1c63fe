// Collectives as real processes over loopback TCP, bootstrapped through the
// gRPC store of an in-process RendezvousServer: the reduced matrix for
// N = 1..4, hybrid sub-groups, and a peer killed with SIGKILL, which every
// survivor must report as an error within the group timeout.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/collectives/server_fixture.h"
#include "tests/common/process.h"

namespace anvil::testing {
namespace {

class ProcessTest : public LoopbackServerTest {
 protected:
  // Starts `n` workers; each gets its own run id so tests never share keys.
  std::vector<std::unique_ptr<Process>> Spawn(int n, const std::string& scenario, int timeout_ms,
                                              std::vector<std::string> extra = {}) {
    static int run = 0;
    const std::string run_id = absl::StrCat("run", ++run, "_", getpid());
    std::vector<std::unique_ptr<Process>> workers;
    for (int r = 0; r < n; ++r) {
      std::vector<std::string> args = {
          "--store=" + address_, "--run_id=" + run_id, absl::StrCat("--rank=", r),
          absl::StrCat("--size=", n), "--scenario=" + scenario,
          absl::StrCat("--timeout_ms=", timeout_ms)};
      args.insert(args.end(), extra.begin(), extra.end());
      ProcessOptions options;
      options.inherit_stderr = true;
      auto w = std::make_unique<Process>(COLLECTIVES_WORKER_PATH, args, options);
      EXPECT_TRUE(w->started());
      workers.push_back(std::move(w));
    }
    return workers;
  }

};

class ProcessMatrixTest : public ProcessTest, public ::testing::WithParamInterface<int> {};

TEST_P(ProcessMatrixTest, EveryCollectiveMatchesReference) {
  const int n = GetParam();
  auto workers = Spawn(n, "matrix", 20000);
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  for (int r = 0; r < n; ++r) {
    std::optional<std::string> line = workers[r]->ReadLine(deadline);
    ASSERT_TRUE(line.has_value()) << "rank " << r << " said nothing";
    EXPECT_EQ(*line, "OK") << "rank " << r;
  }
  for (int r = 0; r < n; ++r)
    EXPECT_EQ(workers[r]->Wait(deadline - absl::Now()), 0) << "rank " << r;
}

INSTANTIATE_TEST_SUITE_P(WorldSize, ProcessMatrixTest, ::testing::Values(1, 2, 3, 4),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return absl::StrCat("N", info.param);
                         });

TEST_F(ProcessTest, HybridSubgroups) {
  auto workers = Spawn(4, "hybrid", 10000, {"--local_size=2"});
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  for (int r = 0; r < 4; ++r) {
    std::optional<std::string> line = workers[r]->ReadLine(deadline);
    ASSERT_TRUE(line.has_value()) << "rank " << r;
    EXPECT_EQ(*line, "OK") << "rank " << r;
  }
}

// N ranks all-reduce in a loop; rank 1 is killed with SIGKILL. Every other
// rank must report an error within the group timeout (plus slack for
// process scheduling), not hang. With N = 4, rank 3 is not a ring neighbour
// of rank 1 and learns of the death only through the others.
class KilledPeerTest : public ProcessTest, public ::testing::WithParamInterface<int> {};

TEST_P(KilledPeerTest, SurvivorsFailWithinTimeout) {
  constexpr int kTimeoutMs = 3000;
  const int n = GetParam();
  auto workers = Spawn(n, "victim", kTimeoutMs);
  const absl::Time ready_deadline = absl::Now() + absl::Seconds(20);
  for (int r = 0; r < n; ++r) {
    std::optional<std::string> line = workers[r]->ReadLine(ready_deadline);
    ASSERT_TRUE(line.has_value()) << "rank " << r << " never got ready";
    ASSERT_EQ(*line, "READY") << "rank " << r;
  }
  absl::SleepFor(absl::Milliseconds(100));  // let them get into the loop
  const absl::Time killed = absl::Now();
  workers[1]->Kill();
  for (int r = 0; r < n; ++r) {
    if (r == 1) continue;
    std::optional<std::string> line =
        workers[r]->ReadLine(killed + absl::Milliseconds(kTimeoutMs) + absl::Seconds(2));
    ASSERT_TRUE(line.has_value()) << "rank " << r
                                  << " said nothing after its peer died; exit status "
                                  << workers[r]->Wait(absl::Seconds(1)).value_or(-1);
    const absl::Duration took = absl::Now() - killed;
    std::vector<std::string> parts = absl::StrSplit(*line, ' ');
    ASSERT_EQ(parts.size(), 3u) << *line;
    EXPECT_EQ(parts[0], "ERROR") << *line;
    EXPECT_TRUE(parts[1] == "UNAVAILABLE" || parts[1] == "DEADLINE_EXCEEDED") << *line;
    EXPECT_LE(took, absl::Milliseconds(kTimeoutMs) + absl::Seconds(1)) << "rank " << r;
    EXPECT_EQ(workers[r]->Wait(absl::Seconds(5)), 0) << "rank " << r;
  }
  EXPECT_EQ(workers[1]->Wait(absl::Seconds(5)), 128 + SIGKILL);
}

INSTANTIATE_TEST_SUITE_P(WorldSize, KilledPeerTest, ::testing::Values(3, 4),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return absl::StrCat("N", info.param);
                         });

}  // namespace
}  // namespace anvil::testing
