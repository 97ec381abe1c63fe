// launcher_bench: launcher start-up and failure-detection timings on loopback.
//  1. Time from all launchers started to all workers running, 2 and 4 nodes
//     (nproc 2 each, distinct 127.0.0.x addresses), median of several runs,
//     against a reference measured in the same run: fork/exec of the same
//     number of workers directly, with no launcher and no rendezvous.
//  2. Failure detection: kill -9 of one of 3 agents (nnodes 2:3) to the
//     survivors' workers running again, against the heartbeat timeout.
//     Target: within heartbeat timeout + 1 s.
// Not a test: it prints numbers. Usage: launcher_bench [runs]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/launcher/launcher_harness.h"

namespace {

using anvil::launcher::testing::FreePort;
using anvil::launcher::testing::LauncherArgv;
using anvil::launcher::testing::Process;
using anvil::launcher::testing::ProcessOptions;
using anvil::launcher::testing::ReadFile;

// Latest start timestamp among files DIR/start_*_<round>, or nullopt until
// `count` of them exist.
std::optional<int64_t> LatestStart(const std::string& dir, int count, const std::string& round_suffix) {
  int n = 0;
  int64_t latest = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("start_", 0) != 0) continue;
    if (!round_suffix.empty() && name.substr(name.rfind('_')) != round_suffix) continue;
    std::istringstream in(ReadFile(e.path().string()));
    long long pid = 0, us = 0;
    if (!(in >> pid >> us)) return std::nullopt;  // still being written
    latest = std::max<int64_t>(latest, us);
    ++n;
  }
  if (n < count) return std::nullopt;
  return latest;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Reference: fork/exec `workers` bench workers directly.
double DirectSpawnMs(const std::string& dir, int workers) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const int64_t t0 = absl::ToUnixMicros(absl::Now());
  std::vector<pid_t> pids;
  for (int r = 0; r < workers; ++r) {
    pid_t p = ::fork();
    if (p == 0) {
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("ANVIL_RDZV_ROUND", "0", 1);
      ::execl(ANVIL_BENCH_WORKER, ANVIL_BENCH_WORKER, "exit", dir.c_str(), nullptr);
      ::_exit(127);
    }
    pids.push_back(p);
  }
  for (pid_t p : pids) ::waitpid(p, nullptr, 0);
  std::optional<int64_t> latest = LatestStart(dir, workers, "");
  return latest ? (*latest - t0) / 1000.0 : -1;
}

double LaunchMs(const std::string& dir, int nodes, int nproc) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const int port = FreePort();
  const int64_t t0 = absl::ToUnixMicros(absl::Now());
  std::vector<std::unique_ptr<Process>> procs;
  for (int n = 0; n < nodes; ++n) {
    procs.push_back(std::make_unique<Process>(
        LauncherArgv({}, ANVIL_LAUNCHER, std::vector<std::string>{absl::StrCat("--nnodes=", nodes), absl::StrCat("--nproc_per_node=", nproc),
                                 absl::StrCat("--rdzv_endpoint=127.0.0.1:", port), "--rdzv_id=bench",
                                 absl::StrCat("--local_addr=127.0.0.", n + 1), "--rdzv_conf=join_timeout=20",
                                 ANVIL_BENCH_WORKER, "exit", dir}),
        ProcessOptions::Log(absl::StrCat(dir, "/node", n, ".log"))));
  }
  for (auto& p : procs) {
    if (!p->Wait(absl::Seconds(30)).has_value()) return -1;
  }
  std::optional<int64_t> latest = LatestStart(dir, nodes * nproc, "");
  return latest ? (*latest - t0) / 1000.0 : -1;
}

// kill -9 of one of three agents; returns ms from the kill to the last
// survivor worker running in the new round.
double FailureDetectionMs(const std::string& dir, absl::Duration heartbeat_timeout) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const int port = FreePort();
  const std::string conf =
      absl::StrCat("--rdzv_conf=join_timeout=20,last_call_timeout=0.1,heartbeat_timeout=",
                   absl::ToDoubleSeconds(heartbeat_timeout),
                   ",heartbeat_interval=", absl::ToDoubleSeconds(heartbeat_timeout) / 4);
  std::vector<std::unique_ptr<Process>> procs;
  for (int n = 0; n < 3; ++n) {
    procs.push_back(std::make_unique<Process>(
        LauncherArgv({}, ANVIL_LAUNCHER, std::vector<std::string>{"--nnodes=2:3", absl::StrCat("--rdzv_endpoint=127.0.0.1:", port), "--rdzv_id=bench",
                                 absl::StrCat("--local_addr=127.0.0.", n + 1), conf, "--monitor_interval=0.02",
                                 "--grace_period=1", ANVIL_BENCH_WORKER, "hold", dir, "2"}),
        ProcessOptions::Log(absl::StrCat(dir, "/node", n, ".log"))));
  }
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (!LatestStart(dir, 3, "").has_value() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  // The round-0 files exist; the survivors' next round has a higher number.
  const int64_t killed = absl::ToUnixMicros(absl::Now());
  procs[2]->Signal(SIGKILL);
  procs[2]->Wait(absl::Seconds(5));
  for (int n = 0; n < 2; ++n) {
    if (!procs[n]->Wait(absl::Seconds(20)).has_value()) return -1;
  }
  int64_t latest = 0;
  int found = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("start_", 0) != 0) continue;
    std::istringstream in(ReadFile(e.path().string()));
    long long pid = 0, us = 0, world = 0;
    if (in >> pid >> us >> world && world == 2) {
      latest = std::max<int64_t>(latest, us);
      ++found;
    }
  }
  return found >= 2 ? (latest - killed) / 1000.0 : -1;
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  const std::string dir = absl::StrCat("/tmp/launcher_bench_", ::getpid());
  std::printf("launcher start-up: all launchers started -> all workers running (median of %d)\n", runs);
  for (int nodes : {2, 4}) {
    const int nproc = 2;
    std::vector<double> launched, direct;
    for (int i = 0; i < runs; ++i) {
      launched.push_back(LaunchMs(dir, nodes, nproc));
      direct.push_back(DirectSpawnMs(dir, nodes * nproc));
    }
    const double l = Median(launched), d = Median(direct);
    std::printf("  %d nodes x %d workers: launcher %.1f ms, direct fork/exec %.2f ms (ratio %.1fx)\n", nodes, nproc,
                l, d, d > 0 ? l / d : 0.0);
  }
  std::printf("failure detection: kill -9 of 1 of 3 agents -> survivors' workers running again\n");
  for (absl::Duration hb : {absl::Seconds(1), absl::Seconds(2)}) {
    std::vector<double> ms;
    for (int i = 0; i < std::min(runs, 3); ++i) ms.push_back(FailureDetectionMs(dir, hb));
    const double m = Median(ms);
    const double target = absl::ToDoubleMilliseconds(hb) + 1000;
    std::printf("  heartbeat timeout %.0f ms: %.0f ms (target <= %.0f ms: %s; ratio to timeout %.2f)\n",
                absl::ToDoubleMilliseconds(hb), m, target, m > 0 && m <= target ? "met" : "MISSED",
                m / absl::ToDoubleMilliseconds(hb));
  }
  std::filesystem::remove_all(dir);
  return 0;
}
