// How long a survivor takes to notice that its peer was SIGKILLed in the
// middle of a collective, over many kills at random moments (issue 14,
// item 2: 4 of ~300 kills used to take the whole timeout, because Gloo's TCP
// pair never woke a send that was queued on the socket when the connection
// closed; runtime/collectives/gloo/abortable_transport.h now aborts the
// group when any of its connections fails).
//
// Each trial starts N = 2 or 3 worker processes that all-reduce in a loop
// (alternating a 256 KiB and a 16 MiB buffer, so kills land both between
// and inside partly written sends), kills rank 1 after a random delay and
// times the first survivor's error. The group timeout is 20 s: a survivor
// that waits for it instead of noticing the closed connection is plainly
// visible. Every third trial broadcasts 16 MiB from rank 0 instead: a root
// only sends, which is where the lost wake-up showed most. The always-on
// variant runs 12 trials; ANVIL_STRESS=1 runs ANVIL_STRESS_KILLS (default
// 200) and prints the distribution.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/collectives/server_fixture.h"
#include "tests/common/process.h"

namespace anvil::testing {
namespace {

constexpr int kTimeoutMs = 20000;
// What "noticed at once" means on a loaded 2-core machine.
constexpr double kRecoveryBoundMs = 3000;

// ANVIL_COLLECTIVES_WORKER runs another build's worker (to measure an old
// build against a new one with the same harness).
std::string WorkerPath() {
  const char* w = std::getenv("ANVIL_COLLECTIVES_WORKER");
  return w != nullptr && *w != '\0' ? w : COLLECTIVES_WORKER_PATH;
}

class KillRecoveryTest : public LoopbackServerTest {
 protected:
  // One trial: milliseconds from the kill to the first survivor's error,
  // or a negative number when the trial could not be set up.
  double Trial(int n, int count, int delay_us, bool freeze_first, const std::string& op) {
    static int run = 0;
    const std::string run_id = absl::StrCat("kill", ++run, "_", getpid());
    std::vector<std::unique_ptr<Process>> workers;
    for (int r = 0; r < n; ++r) {
      ProcessOptions quiet;
      quiet.quiet = true;
      auto w = std::make_unique<Process>(
          WorkerPath(),
          std::vector<std::string>{"--store=" + address_, "--run_id=" + run_id,
                                   absl::StrCat("--rank=", r), absl::StrCat("--size=", n),
                                   "--scenario=victim", absl::StrCat("--timeout_ms=", kTimeoutMs),
                                   absl::StrCat("--count=", count), "--op=" + op},
          quiet);
      if (!w->started()) return -1;
      workers.push_back(std::move(w));
    }
    const absl::Time ready_deadline = absl::Now() + absl::Seconds(30);
    for (auto& w : workers) {
      std::optional<std::string> line = w->ReadLine(ready_deadline);
      if (!line.has_value() || *line != "READY") return -1;
    }
    absl::SleepFor(absl::Microseconds(delay_us));
    if (freeze_first) {
      // The peer stops reading and writing mid-collective, then dies: the
      // survivor's sends back up in its socket and stay queued in Gloo.
      ::kill(workers[1]->pid(), SIGSTOP);
      absl::SleepFor(absl::Milliseconds(30));
    }
    const absl::Time killed = absl::Now();
    workers[1]->Kill();
    std::optional<std::string> line =
        workers[0]->ReadLine(killed + absl::Milliseconds(kTimeoutMs) + absl::Seconds(10));
    const double ms = absl::ToDoubleMilliseconds(absl::Now() - killed);
    EXPECT_TRUE(line.has_value() && line->rfind("ERROR", 0) == 0) << line.value_or("(nothing)");
    return ms;
  }

  // Runs `kills` trials, prints the distribution and returns the times.
  std::vector<double> Run(int kills, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<double> times;
    for (int i = 0; i < kills; ++i) {
      const int n = 2 + static_cast<int>(rng() % 2);
      const int count = (i % 2 == 0) ? (1 << 16) : (1 << 22);
      const int delay_us = static_cast<int>(rng() % 300000);
      const bool freeze = i % 4 >= 2;
      // Every third trial rank 0 broadcasts: a root only sends, so it waits
      // in waitSend alone.
      const std::string op = i % 3 == 2 ? "broadcast" : "allreduce";
      const double ms = Trial(n, count, delay_us, freeze, op);
      if (ms < 0) {
        ADD_FAILURE() << "trial " << i << " could not be set up";
        continue;
      }
      if (ms > kRecoveryBoundMs) {
        std::printf("trial %d: N=%d %s count=%d delay %d us%s: %.0f ms\n", i, n, op.c_str(),
                    count, delay_us, freeze ? " (frozen first)" : "", ms);
      }
      times.push_back(ms);
    }
    std::vector<double> sorted = times;
    std::sort(sorted.begin(), sorted.end());
    auto pct = [&](double p) {
      return sorted.empty() ? 0.0 : sorted[std::min(sorted.size() - 1,
                                                    static_cast<size_t>(p * sorted.size()))];
    };
    const auto slow = std::count_if(sorted.begin(), sorted.end(),
                                    [](double ms) { return ms > kRecoveryBoundMs; });
    std::printf(
        "kill recovery over %zu kills: p50 %.0f ms, p90 %.0f ms, p99 %.0f ms, max %.0f ms; "
        "%ld above %.0f ms\n",
        sorted.size(), pct(0.5), pct(0.9), pct(0.99), sorted.empty() ? 0.0 : sorted.back(),
        static_cast<long>(slow), kRecoveryBoundMs);
    std::fflush(stdout);
    return times;
  }

};

TEST_F(KillRecoveryTest, SurvivorNoticesAKilledPeerAtOnce) {
  for (double ms : Run(12, 14)) EXPECT_LT(ms, kRecoveryBoundMs);
}

TEST_F(KillRecoveryTest, StressManyKillsAtRandomMoments) {
  const char* stress = std::getenv("ANVIL_STRESS");
  if (stress == nullptr || std::string(stress) != "1") GTEST_SKIP() << "set ANVIL_STRESS=1";
  int kills = 200;
  if (const char* k = std::getenv("ANVIL_STRESS_KILLS")) (void)absl::SimpleAtoi(k, &kills);
  for (double ms : Run(kills, 2024)) EXPECT_LT(ms, kRecoveryBoundMs);
}

}  // namespace
}  // namespace anvil::testing
