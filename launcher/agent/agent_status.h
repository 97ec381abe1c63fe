// AgentStatus: a copy of what the agent knows about its job, taken by the
// agent's loop and read by its HTTP endpoint (metrics_http.h) on another
// thread, rendered as Prometheus text by FormatPrometheus.
// Invariants: a plain value (copied under the publisher's lock); workers
// and progress list the local ranks of the current attempt only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "launcher/agent/progress_watch.h"

namespace anvil::launcher {

struct AgentStatus {
  std::string host;
  std::string run_id;
  // "starting", "joining", "running", "stopping", "finished".
  std::string phase = "starting";
  int64_t round = -1;
  int group_rank = -1;
  int group_world_size = 0;
  int world_size = 0;
  int64_t restarts = 0;  // job-wide restarts so far (TORCHELASTIC_RESTART_COUNT)
  absl::Time started;

  struct Worker {
    int rank = 0;
    int local_rank = 0;
    std::string state;  // "running", "succeeded", "failed"
  };
  std::vector<Worker> workers;
  std::vector<RankProgress> progress;

  // /readyz: the rendezvous round is complete and every local worker runs.
  bool ready() const;
};

// The Prometheus text exposition format (version 0.0.4): HELP and TYPE
// lines before each family, one sample a line, labels quoted and escaped.
std::string FormatPrometheus(const AgentStatus& status, absl::Time now);

}  // namespace anvil::launcher
