// Cluster environments mapped onto launcher settings the user did not give.
// Slurm (SLURM_JOB_ID set): nnodes <- SLURM_NNODES / SLURM_JOB_NUM_NODES,
// node_rank <- SLURM_NODEID, rdzv_id <- SLURM_JOB_ID, rdzv_endpoint <- first
// host of SLURM_JOB_NODELIST (hostlist.h) on port 29400.
// Kubernetes: node_rank <- JOB_COMPLETION_INDEX (Indexed Job); the PET_*
// variables are read by arg_parser like flags, before this runs.
// Invariant: a setting named in `explicitly_set` (from a flag or PET_*) is
// never overridden; every value applied is recorded in config->sources.
#pragma once

#include <map>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "launcher/cli/launch_config.h"

namespace anvil::launcher {

absl::Status ApplyClusterEnv(const std::map<std::string, std::string>& env,
                             const std::set<std::string>& explicitly_set, LaunchConfig* config);

}  // namespace anvil::launcher
