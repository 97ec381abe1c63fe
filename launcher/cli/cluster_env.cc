// Slurm / Kubernetes environment mapping; see cluster_env.h.
#include "launcher/cli/cluster_env.h"

#include "absl/strings/string_view.h"
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "launcher/cli/hostlist.h"

namespace anvil::launcher {
namespace {

const std::string* Find(const std::map<std::string, std::string>& env, absl::string_view key) {
  auto it = env.find(std::string(key));
  return (it == env.end() || it->second.empty()) ? nullptr : &it->second;
}

absl::StatusOr<int> EnvInt(const std::map<std::string, std::string>& env, absl::string_view key) {
  const std::string* v = Find(env, key);
  int out = 0;
  if (v == nullptr || !absl::SimpleAtoi(*v, &out) || out < 0) {
    return absl::InvalidArgumentError(absl::StrCat(key, "=\"", v ? *v : "", "\" is not a count"));
  }
  return out;
}

absl::Status ApplySlurm(const std::map<std::string, std::string>& env,
                        const std::set<std::string>& given, LaunchConfig* c) {
  const std::string* job_id = Find(env, "SLURM_JOB_ID");
  if (job_id == nullptr) return absl::OkStatus();
  if (!given.contains("nnodes")) {
    absl::string_view key = Find(env, "SLURM_NNODES") ? "SLURM_NNODES" : "SLURM_JOB_NUM_NODES";
    if (Find(env, key)) {
      ASSIGN_OR_RETURN(int n, EnvInt(env, key));
      if (n < 1) return absl::InvalidArgumentError(absl::StrCat(key, " must be >= 1"));
      c->min_nodes = c->max_nodes = n;
      c->sources["nnodes"] = absl::StrCat("slurm ", key);
    }
  }
  if (!given.contains("node_rank") && Find(env, "SLURM_NODEID")) {
    ASSIGN_OR_RETURN(c->node_rank, EnvInt(env, "SLURM_NODEID"));
    c->sources["node_rank"] = "slurm SLURM_NODEID";
  }
  if (!given.contains("rdzv_id")) {
    c->rdzv_id = *job_id;
    c->sources["rdzv_id"] = "slurm SLURM_JOB_ID";
  }
  if (!given.contains("rdzv_endpoint") && !given.contains("master_addr")) {
    absl::string_view key = Find(env, "SLURM_JOB_NODELIST") ? "SLURM_JOB_NODELIST" : "SLURM_NODELIST";
    if (const std::string* list = Find(env, key)) {
      absl::StatusOr<std::vector<std::string>> hosts = ExpandHostlist(*list);
      if (!hosts.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(key, ": ", hosts.status().message()));
      }
      c->rdzv_endpoint = absl::StrCat(hosts->front(), ":", kDefaultRdzvPort);
      c->sources["rdzv_endpoint"] = absl::StrCat("slurm ", key, " (first host)");
    }
  }
  return absl::OkStatus();
}

absl::Status ApplyKubernetes(const std::map<std::string, std::string>& env,
                             const std::set<std::string>& given, LaunchConfig* c) {
  if (!given.contains("node_rank") && c->node_rank < 0 && Find(env, "JOB_COMPLETION_INDEX")) {
    ASSIGN_OR_RETURN(c->node_rank, EnvInt(env, "JOB_COMPLETION_INDEX"));
    c->sources["node_rank"] = "kubernetes JOB_COMPLETION_INDEX";
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyClusterEnv(const std::map<std::string, std::string>& env,
                             const std::set<std::string>& explicitly_set, LaunchConfig* config) {
  if (config->standalone) return absl::OkStatus();
  RETURN_IF_ERROR(ApplySlurm(env, explicitly_set, config));
  RETURN_IF_ERROR(ApplyKubernetes(env, explicitly_set, config));
  return absl::OkStatus();
}

}  // namespace anvil::launcher
