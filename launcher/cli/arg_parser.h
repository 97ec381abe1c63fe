// The launcher's command line: torchrun-compatible flags parsed into a
// LaunchConfig. This file and arg_parser.cc hold the one table of launcher
// knobs (the CLI concept lives here rather than in ABSL_FLAG globals so it can
// be unit-tested with an explicit argv and environment).
// Precedence, highest first: a flag on the command line; its PET_<NAME>
// variable (Kubeflow / JobSet); values derived from Slurm or Kubernetes
// (cluster_env.h); the default. Flags accept dashes or underscores
// (--nproc-per-node == --nproc_per_node), "--flag=value" or "--flag value".
// The first argument that is not a flag (or the one after "--") is the
// training program; everything after it belongs to the program.
// Invariants: on success the returned config satisfies launch_config.h; on
// failure the status message is one line a user can act on.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "launcher/cli/launch_config.h"

namespace anvil::launcher {

using EnvMap = std::map<std::string, std::string>;

// The current process environment.
EnvMap EnvFromEnviron();

struct ParsedArgs {
  LaunchConfig config;
  bool help = false;     // --help / -h: print LauncherUsage() and exit 0
  bool version = false;  // --version
};

// `args` excludes argv[0].
absl::StatusOr<ParsedArgs> ParseLauncherArgs(const std::vector<std::string>& args, const EnvMap& env);

std::string LauncherUsage();

// Multi-line "key = value   (source)" dump for --dry_run.
std::string DescribeConfig(const LaunchConfig& config);

// "host:port" with IPv6 brackets handled; a missing port becomes `default_port`.
absl::StatusOr<std::pair<std::string, int>> SplitHostPort(absl::string_view endpoint, int default_port);

}  // namespace anvil::launcher
