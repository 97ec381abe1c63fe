// LaunchConfig -> AgentOptions; see agent_options_builder.h.
#include "launcher/cli/agent_options_builder.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/status_macros.h"
#include "launcher/agent/endpoint_host.h"
#include "launcher/agent/nproc.h"

namespace anvil::launcher {
namespace {

// rdzv_conf values were validated by the parser; a bad one here is a bug.
absl::Duration ConfDuration(const LaunchConfig& c, const std::string& key, absl::Duration fallback) {
  auto it = c.rdzv_conf.find(key);
  if (it == c.rdzv_conf.end()) return fallback;
  double secs = 0;
  absl::Duration d;
  if (absl::SimpleAtod(it->second, &secs)) return absl::Seconds(secs);
  if (absl::ParseDuration(it->second, &d)) return d;
  return fallback;
}

}  // namespace

absl::StatusOr<AgentOptions> MakeAgentOptions(const LaunchConfig& c, const EnvMap& env) {
  AgentOptions o;
  o.run_id = c.rdzv_id;
  o.min_nodes = c.min_nodes;
  o.max_nodes = c.max_nodes;
  ASSIGN_OR_RETURN(o.nproc, ResolveNprocPerNode(c.nproc_per_node, env));
  o.node_rank = c.node_rank;
  o.role = c.role;
  o.host = ShortHostName();
  o.local_addr = c.local_addr;
  o.base_env = env;

  if (c.module) {
    o.argv = {"python3", "-u", "-m", c.entrypoint};
  } else if (c.run_path) {
    // A path, never a PATH lookup: "train" means ./train.
    const std::string path = c.entrypoint.find('/') == std::string::npos ? "./" + c.entrypoint : c.entrypoint;
    if (absl::EndsWith(path, ".py")) {
      o.argv = {"python3", "-u", path};
    } else {
      o.argv = {path};
    }
  } else if (!c.no_python && absl::EndsWith(c.entrypoint, ".py")) {
    o.argv = {"python3", "-u", c.entrypoint};
  } else {
    o.argv = {c.entrypoint};
  }
  o.argv.insert(o.argv.end(), c.args.begin(), c.args.end());

  o.endpoint = c.rdzv_endpoint;
  if (c.static_master) {
    ASSIGN_OR_RETURN(auto hp, SplitHostPort(c.rdzv_endpoint, kDefaultRdzvPort));
    o.master_addr = c.master_addr.empty() ? hp.first : c.master_addr;
    o.master_port = hp.second;
  }
  if (auto it = c.rdzv_conf.find("is_host"); it != c.rdzv_conf.end()) {
    bool is_host = false;
    if (absl::SimpleAtob(it->second, &is_host)) o.host_mode = is_host ? HostMode::kHost : HostMode::kClient;
  }
  o.token = c.token;
  o.tls_cert = c.tls_cert;
  o.tls_key = c.tls_key;
  o.tls_ca = c.tls_ca;
  o.join_timeout = ConfDuration(c, "join_timeout", o.join_timeout);
  o.join_timeout = ConfDuration(c, "timeout", o.join_timeout);  // older torchrun name
  o.last_call_timeout = ConfDuration(c, "last_call_timeout", o.last_call_timeout);
  o.read_timeout = ConfDuration(c, "read_timeout", o.read_timeout);
  o.heartbeat_interval = ConfDuration(c, "heartbeat_interval", o.heartbeat_interval);
  o.heartbeat_timeout = ConfDuration(c, "heartbeat_timeout", o.heartbeat_timeout);
  if (o.heartbeat_interval >= o.heartbeat_timeout) o.heartbeat_interval = o.heartbeat_timeout / 3;

  o.max_restarts = c.max_restarts;
  o.monitor_interval = c.monitor_interval;
  o.grace_period = c.grace_period;
  o.exit_barrier_timeout = c.exit_barrier_timeout;
  o.forward_signals = c.forward_signals;
  o.hang_timeout = c.hang_timeout;
  o.metrics_port = c.metrics_port;

  // "%h" becomes this node's host name, so nodes sharing a filesystem
  // (Slurm: logs/ on NFS) keep their per-rank files apart.
  o.log.log_dir = absl::StrReplaceAll(c.log_dir, {{"%h", o.host}});
  ASSIGN_OR_RETURN(o.log.redirects, ParseStdSpec(c.redirects));
  ASSIGN_OR_RETURN(o.log.tee, ParseStdSpec(c.tee));
  ASSIGN_OR_RETURN(o.log.console_ranks, ParseLocalRanksFilter(c.local_ranks_filter));
  return o;
}

}  // namespace anvil::launcher
