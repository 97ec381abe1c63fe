// Turns a parsed LaunchConfig into the agent's AgentOptions: resolves
// --nproc_per_node, the rdzv_conf timeouts, is_host, the log routing and the
// worker command line (a *.py entrypoint runs under python3 -u, -m as a
// module, unless --no_python).
// Invariant: the agent receives only resolved values (no flag strings).
#pragma once

#include "absl/status/statusor.h"
#include "launcher/agent/agent_options.h"
#include "launcher/cli/arg_parser.h"
#include "launcher/cli/launch_config.h"

namespace anvil::launcher {

absl::StatusOr<AgentOptions> MakeAgentOptions(const LaunchConfig& config, const EnvMap& env);

}  // namespace anvil::launcher
