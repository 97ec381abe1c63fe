// `launcher`: the torchrun-compatible entry point. Parses the command line
// (launcher/cli), then runs this node's elastic agent (launcher/agent).
// Exit codes: 0 success; 2 bad command line; 1 setup error; otherwise the
// job's (the root-cause worker's exit code, or 128 + signal).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpc/support/log.h"
#include "launcher/agent/elastic_agent.h"
#include "launcher/cli/agent_options_builder.h"
#include "launcher/cli/arg_parser.h"

namespace {
// gRPC's own log lines (e.g. a multi-line bind failure) would bury the one
// error line the launcher prints; they show only when GRPC_VERBOSITY is set.
void DropGrpcLog(gpr_log_func_args*) {}
}  // namespace

int main(int argc, char** argv) {
  using namespace anvil::launcher;
  if (std::getenv("GRPC_VERBOSITY") == nullptr) gpr_set_log_function(DropGrpcLog);
  std::vector<std::string> args(argv + 1, argv + argc);
  const EnvMap env = EnvFromEnviron();
  absl::StatusOr<ParsedArgs> parsed = ParseLauncherArgs(args, env);
  if (!parsed.ok()) {
    std::fprintf(stderr, "launcher: error: %s\n", std::string(parsed.status().message()).c_str());
    return 2;
  }
  if (parsed->help) {
    std::fputs(LauncherUsage().c_str(), stdout);
    return 0;
  }
  if (parsed->version) {
    std::puts("anvil launcher 0.1");
    return 0;
  }
  if (parsed->config.dry_run) {
    std::fputs(DescribeConfig(parsed->config).c_str(), stdout);
    return 0;
  }
  absl::StatusOr<AgentOptions> options = MakeAgentOptions(parsed->config, env);
  if (!options.ok()) {
    std::fprintf(stderr, "launcher: error: %s\n", std::string(options.status().message()).c_str());
    return 1;
  }
  // Heap-allocated and never destroyed: a Join interrupted by a signal may
  // still be running on its own thread; _exit skips static destructors too.
  auto* agent = new ElasticAgent(std::move(*options));
  const int code = agent->Run();
  std::fflush(stdout);
  std::fflush(stderr);
  ::_exit(code);
}
