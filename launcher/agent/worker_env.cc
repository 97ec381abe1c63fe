// Worker environment construction; see worker_env.h.
#include "launcher/agent/worker_env.h"

#include "absl/strings/str_cat.h"

namespace anvil::launcher {

std::map<std::string, std::string> BuildWorkerEnv(const WorkerEnvInputs& in) {
  std::map<std::string, std::string> env = in.base;
  const int rank = in.global_rank_offset + in.local_rank;
  env["RANK"] = absl::StrCat(rank);
  env["LOCAL_RANK"] = absl::StrCat(in.local_rank);
  env["GROUP_RANK"] = absl::StrCat(in.group_rank);
  env["GROUP_WORLD_SIZE"] = absl::StrCat(in.group_world_size);
  // One role per job: role ranks equal global ranks.
  env["ROLE_RANK"] = absl::StrCat(rank);
  env["ROLE_NAME"] = in.role;
  env["ROLE_WORLD_SIZE"] = absl::StrCat(in.world_size);
  env["LOCAL_WORLD_SIZE"] = absl::StrCat(in.local_world_size);
  env["WORLD_SIZE"] = absl::StrCat(in.world_size);
  env["MASTER_ADDR"] = in.master_addr;
  env["MASTER_PORT"] = absl::StrCat(in.master_port);
  env["TORCHELASTIC_RESTART_COUNT"] = absl::StrCat(in.restart_count);
  env["TORCHELASTIC_MAX_RESTARTS"] = absl::StrCat(in.max_restarts);
  env["TORCHELASTIC_RUN_ID"] = in.run_id;
  env["TORCHELASTIC_USE_AGENT_STORE"] = "False";
  env["TORCHELASTIC_ERROR_FILE"] = in.error_file;
  if (in.local_world_size > 1) env.emplace("OMP_NUM_THREADS", "1");  // keeps a user value
  env.emplace("PYTHONUNBUFFERED", "1");
  env[kEnvStoreAddr] = in.store_addr;
  env[kEnvRunId] = in.run_id;
  env[kEnvRound] = absl::StrCat(in.round);
  env[kEnvStorePrefix] = absl::StrCat("attempt_", in.restart_count, "/round_", in.round, "/");
  if (!in.token.empty()) {
    env[kEnvToken] = in.token;
  } else {
    env.erase(kEnvToken);
  }
  if (!in.tls_ca.empty()) env[kEnvTlsCa] = in.tls_ca;
  if (!in.local_addr.empty()) env[kEnvLocalAddr] = in.local_addr;
  return env;
}

std::vector<std::string> EnvToList(const std::map<std::string, std::string>& env) {
  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [k, v] : env) out.push_back(absl::StrCat(k, "=", v));
  return out;
}

}  // namespace anvil::launcher
