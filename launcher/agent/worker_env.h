// The environment every worker starts with: the launcher's own environment,
// then the torchrun variables, then this project's ANVIL_* variables (how a
// worker reaches the job's gRPC store).
// Invariants: RANK = global_rank_offset + LOCAL_RANK; every torchrun variable
// is set for every worker (none inherited from the launcher's environment);
// OMP_NUM_THREADS=1 is added only when local_world_size > 1 and it is unset.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace anvil::launcher {

// Variables this project's workers read to reach the store.
inline constexpr char kEnvStoreAddr[] = "ANVIL_STORE_ADDR";      // host:port of the store service
inline constexpr char kEnvRunId[] = "ANVIL_RUN_ID";              // the store namespace (= rdzv id)
inline constexpr char kEnvToken[] = "ANVIL_TOKEN";               // shared secret for the store
inline constexpr char kEnvTlsCa[] = "ANVIL_TLS_CA";              // CA file when TLS is on
inline constexpr char kEnvLocalAddr[] = "ANVIL_LOCAL_ADDR";      // --local_addr: this node's address for collectives
inline constexpr char kEnvStorePrefix[] = "ANVIL_STORE_PREFIX";  // key prefix unique to this attempt
inline constexpr char kEnvRound[] = "ANVIL_RDZV_ROUND";          // rendezvous round of this attempt

struct WorkerEnvInputs {
  std::map<std::string, std::string> base;  // the launcher's environment
  int local_rank = 0;
  int local_world_size = 1;
  int global_rank_offset = 0;  // RANK of local rank 0
  int world_size = 1;
  int group_rank = 0;
  int group_world_size = 1;
  std::string role = "default";
  std::string master_addr;
  int master_port = 0;
  int restart_count = 0;
  int max_restarts = 0;
  std::string run_id;
  std::string error_file;
  std::string store_addr;
  std::string token;
  std::string tls_ca;
  std::string local_addr;  // --local_addr ("": not given; a user's ANVIL_LOCAL_ADDR stays)
  long long round = 0;
};

std::map<std::string, std::string> BuildWorkerEnv(const WorkerEnvInputs& in);
std::vector<std::string> EnvToList(const std::map<std::string, std::string>& env);

}  // namespace anvil::launcher
