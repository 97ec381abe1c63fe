// launcher_test_worker: the worker program the launcher end-to-end tests run.
// Modes (argv[1]), each writing what it saw into files under argv[2]:
//   env_store DIR          check the torchrun environment, meet every rank
//                          through the job's GrpcStore, write DIR/rank_<RANK>
//   fail_first DIR         the highest rank exits 7 (after writing a
//                          torchelastic error file) while
//                          TORCHELASTIC_RESTART_COUNT is 0; otherwise as env_store
//   preempt_first DIR      every rank exits 75 (saved on a stop signal) while
//                          TORCHELASTIC_RESTART_COUNT is 0; otherwise as env_store
//   save_fail_first DIR    rank 0 exits 3 (a checkpoint save failed) while
//                          TORCHELASTIC_RESTART_COUNT is 0; otherwise as env_store
//   until_world DIR N      write DIR/pid_<RANK>_<round>, then sleep until
//                          killed unless WORLD_SIZE == N (then exit 0)
//   trap_term DIR MS [CODE] on SIGTERM spend MS ms "checkpointing", write
//                          DIR/saved_<RANK> and exit CODE (default 0; 75 is
//                          train's "saved on a stop signal")
//   ignore_term DIR        ignore SIGTERM and sleep forever
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/store/grpc_store.h"

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

int EnvInt(const char* name) { return std::atoi(Env(name).c_str()); }

int Fail(const std::string& why) {
  std::fprintf(stderr, "test_worker: %s\n", why.c_str());
  return 1;
}

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

void SleepForever() {
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}

int EnvAndStore(const std::string& dir) {
  for (const char* v : {"RANK", "LOCAL_RANK", "GROUP_RANK", "GROUP_WORLD_SIZE", "ROLE_RANK", "ROLE_NAME",
                        "ROLE_WORLD_SIZE", "LOCAL_WORLD_SIZE", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                        "TORCHELASTIC_RESTART_COUNT", "TORCHELASTIC_MAX_RESTARTS", "TORCHELASTIC_RUN_ID",
                        "TORCHELASTIC_ERROR_FILE", "ANVIL_STORE_ADDR", "ANVIL_RUN_ID", "ANVIL_STORE_PREFIX"}) {
    if (Env(v).empty()) return Fail(absl::StrCat(v, " is not set"));
  }
  const int rank = EnvInt("RANK"), world = EnvInt("WORLD_SIZE"), local_world = EnvInt("LOCAL_WORLD_SIZE");
  if (rank < 0 || rank >= world) return Fail("RANK out of range");
  if (EnvInt("LOCAL_RANK") >= local_world) return Fail("LOCAL_RANK out of range");
  if (local_world > 1 && Env("OMP_NUM_THREADS") != "1") return Fail("OMP_NUM_THREADS is not 1");
  anvil::GrpcStoreOptions so;
  so.address = Env("ANVIL_STORE_ADDR");
  so.run_id = Env("ANVIL_RUN_ID");
  so.token = Env("ANVIL_TOKEN");
  so.tls.root_cert_path = Env("ANVIL_TLS_CA");
  so.connect_timeout = absl::Seconds(5);
  auto store = anvil::GrpcStore::Create(so);
  if (!store.ok()) return Fail(std::string(store.status().message()));
  const std::string prefix = Env("ANVIL_STORE_PREFIX");
  if (!(*store)->Set(absl::StrCat(prefix, "rank/", rank), Env("MASTER_PORT")).ok()) return Fail("store Set failed");
  std::vector<std::string> keys;
  for (int r = 0; r < world; ++r) keys.push_back(absl::StrCat(prefix, "rank/", r));
  auto values = (*store)->MultiGet(keys, absl::Seconds(10));
  if (!values.ok()) return Fail(absl::StrCat("store MultiGet: ", values.status().message()));
  for (const std::string& v : *values) {
    if (v != Env("MASTER_PORT")) return Fail("ranks disagree on MASTER_PORT");
  }
  auto count = (*store)->Add(absl::StrCat(prefix, "count"), 1);
  if (!count.ok()) return Fail("store Add failed");
  WriteFile(absl::StrCat(dir, "/rank_", rank),
            absl::StrCat("world=", world, " group=", Env("GROUP_RANK"), "/", Env("GROUP_WORLD_SIZE"),
                         " restart=", Env("TORCHELASTIC_RESTART_COUNT"), " local=", Env("LOCAL_RANK"),
                         " master=", Env("MASTER_ADDR"), ":", Env("MASTER_PORT"), "\n"));
  return 0;
}

volatile sig_atomic_t g_term = 0;
void OnTerm(int) { g_term = 1; }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return Fail("usage: launcher_test_worker MODE DIR [ARG]");
  const std::string mode = argv[1], dir = argv[2];
  const int rank = EnvInt("RANK");
  if (mode == "env_store") return EnvAndStore(dir);
  if (mode == "fail_first") {
    if (EnvInt("TORCHELASTIC_RESTART_COUNT") == 0 && rank == EnvInt("WORLD_SIZE") - 1) {
      WriteFile(Env("TORCHELASTIC_ERROR_FILE"),
                absl::StrCat(R"({"message": {"message": "ValueError: planned failure of rank )", rank,
                             R"(", "extraInfo": {"timestamp": ")", absl::ToUnixSeconds(absl::Now()), "\"}}}"));
      std::fprintf(stderr, "rank %d failing on purpose\n", rank);
      return 7;
    }
    return EnvAndStore(dir);
  }
  if (mode == "save_fail_first") {
    if (EnvInt("TORCHELASTIC_RESTART_COUNT") == 0 && rank == 0) {
      std::fprintf(stderr, "train: rank 0: checkpoint step_00000075 could not be saved\n");
      return 3;
    }
    return EnvAndStore(dir);
  }
  if (mode == "preempt_first") {
    if (EnvInt("TORCHELASTIC_RESTART_COUNT") == 0) return 75;
    return EnvAndStore(dir);
  }
  if (mode == "until_world" && argc > 3) {
    WriteFile(absl::StrCat(dir, "/pid_", rank, "_", Env("ANVIL_RDZV_ROUND")),
              absl::StrCat(getpid(), " ", absl::ToUnixMicros(absl::Now()), " ", Env("WORLD_SIZE"), "\n"));
    if (EnvInt("WORLD_SIZE") == std::atoi(argv[3])) return 0;
    SleepForever();
  }
  if (mode == "trap_term" && argc > 3) {
    signal(SIGTERM, OnTerm);
    WriteFile(absl::StrCat(dir, "/pid_", rank), absl::StrCat(getpid(), "\n"));
    while (!g_term) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const absl::Time t0 = absl::Now();
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(argv[3])));
    WriteFile(absl::StrCat(dir, "/saved_", rank), absl::StrCat(absl::ToInt64Milliseconds(absl::Now() - t0), "\n"));
    return argc > 4 ? std::atoi(argv[4]) : 0;
  }
  if (mode == "ignore_term") {
    signal(SIGTERM, SIG_IGN);
    WriteFile(absl::StrCat(dir, "/pid_", rank), absl::StrCat(getpid(), "\n"));
    SleepForever();
  }
  return Fail("unknown mode " + mode);
}
