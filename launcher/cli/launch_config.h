// LaunchConfig: everything one `launcher` invocation was asked to do, after
// flags, PET_* variables and the Slurm / Kubernetes environment were merged.
// Invariants (ParseLauncherArgs establishes them): 1 <= min_nodes <= max_nodes;
// rdzv_endpoint is "host:port" with a port (29400 when none was given) or
// empty only for a single-node run that hosts its own server on a free port;
// entrypoint is non-empty; durations are positive.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace anvil::launcher {

inline constexpr int kDefaultRdzvPort = 29400;

struct LaunchConfig {
  // Job shape.
  int min_nodes = 1;
  int max_nodes = 1;
  std::string nproc_per_node = "1";  // int | cpu | gpu | auto; resolved by the agent
  int node_rank = -1;                // -1: the rendezvous assigns one
  std::string role = "default";

  // Rendezvous.
  std::string rdzv_backend = "anvil";  // c10d / static / etcd-v2 are accepted as aliases
  std::string rdzv_endpoint;           // host:port
  std::string rdzv_id = "none";
  std::map<std::string, std::string> rdzv_conf;  // join_timeout, last_call_timeout, ...
  bool standalone = false;
  std::string local_addr;  // this node's address as peers should reach it
  std::string master_addr;  // static rendezvous only: becomes the endpoint host
  int master_port = -1;
  // Static rendezvous (--rdzv_backend=static, or an endpoint taken from
  // --master_addr/--master_port): workers get MASTER_ADDR/MASTER_PORT equal
  // to the endpoint's host and port, as torchrun's static backend gives.
  bool static_master = false;

  // Security: the job token is shared by every agent, worker and the server.
  std::string token;
  std::string token_file;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;

  // Fault handling.
  int max_restarts = 0;
  absl::Duration monitor_interval = absl::Milliseconds(100);
  absl::Duration grace_period = absl::Seconds(30);
  absl::Duration exit_barrier_timeout = absl::Seconds(300);
  std::vector<int> forward_signals;  // signal numbers; default TERM INT HUP USR1 USR2
  // A rank whose progress (step, collective) stands still this long is
  // named and the group restarted like a failure; zero: off.
  absl::Duration hang_timeout = absl::ZeroDuration();

  // Observability: the agent's HTTP endpoint (/metrics, /healthz, /readyz);
  // 0: off.
  int metrics_port = 0;

  // Logs.
  std::string log_dir;
  std::string redirects = "0";
  std::string tee = "0";
  std::string local_ranks_filter;  // "" = every local rank on the console

  // What to run.
  bool no_python = false;
  bool module = false;  // -m: entrypoint is a Python module
  // --run_path: the entrypoint is a file path, never looked up on PATH (a
  // bare name means ./name); a .py file runs with python3 even with
  // --no_python (torchrun's run_path takes precedence over --no-python).
  bool run_path = false;
  std::string entrypoint;
  std::vector<std::string> args;

  // Diagnostics: print the resolved config and exit.
  bool dry_run = false;

  // Where each value came from, for --dry_run and error messages:
  // "flag", "env PET_NNODES", "slurm", "kubernetes", "default".
  std::map<std::string, std::string> sources;
};

}  // namespace anvil::launcher
