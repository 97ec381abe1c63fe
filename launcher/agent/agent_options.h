// AgentOptions: what the elastic agent needs, with every flag already
// resolved (launcher/cli builds it from a LaunchConfig). The agent knows
// nothing about flags, PET_* variables or Slurm.
// Invariants: nproc >= 1; 1 <= min_nodes <= max_nodes; argv non-empty;
// endpoint empty means "host a private server on 127.0.0.1, free port".
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "launcher/agent/log_options.h"

namespace anvil::launcher {

enum class HostMode {
  kAuto,    // host the server when the endpoint's address is this machine's
  kHost,    // rdzv_conf is_host=true: host it or fail
  kClient,  // rdzv_conf is_host=false: never host
};

struct AgentOptions {
  // Job.
  std::string run_id = "none";
  int min_nodes = 1;
  int max_nodes = 1;
  int nproc = 1;
  int node_rank = -1;
  std::string role = "default";
  std::string host;        // this node's name in logs and the rank table
  std::string local_addr;  // address peers and workers use for this node ("" = host)
  std::vector<std::string> argv;            // the worker program and its arguments
  std::map<std::string, std::string> base_env;  // environment workers inherit

  // Rendezvous and store.
  std::string endpoint;  // "host:port"
  // Static rendezvous: MASTER_ADDR/MASTER_PORT every worker gets, as given
  // (empty / 0: group rank 0's address and a free port of it).
  std::string master_addr;
  int master_port = 0;
  HostMode host_mode = HostMode::kAuto;
  std::string token;
  std::string tls_cert;  // server side (when hosting)
  std::string tls_key;
  std::string tls_ca;    // client side: CA that signed the server's cert
  absl::Duration join_timeout = absl::Seconds(600);
  absl::Duration last_call_timeout = absl::Seconds(30);
  absl::Duration read_timeout = absl::Seconds(60);  // short RPCs, first contact
  absl::Duration heartbeat_interval = absl::Seconds(5);
  absl::Duration heartbeat_timeout = absl::Seconds(30);

  // Faults.
  int max_restarts = 0;
  absl::Duration monitor_interval = absl::Milliseconds(100);
  absl::Duration grace_period = absl::Seconds(30);
  absl::Duration exit_barrier_timeout = absl::Seconds(300);
  std::vector<int> forward_signals;
  // Hang watchdog (progress_watch.h): zero is off.
  absl::Duration hang_timeout = absl::ZeroDuration();

  // The agent's HTTP endpoint (metrics_http.h); 0: off.
  int metrics_port = 0;

  // Logs: `log.log_dir` is the root; per-rank files go under
  // <log_dir>/<run_id>/attempt_<n>/<local_rank>/.
  LogOptions log;
};

}  // namespace anvil::launcher
