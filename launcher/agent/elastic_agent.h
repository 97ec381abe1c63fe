// ElasticAgent: one node's launcher loop. Join a rendezvous round, start the
// local workers, watch them and the membership, and on a change stop the
// workers and go around again; finish through an exit barrier.
//
// Restarts. A worker failure stops the local group (signal, grace, SIGKILL),
// prints the root-cause report, and makes the first node that failed in the
// round (claimed with CompareSet in the store) count one job-wide restart.
// If that exceeds --max_restarts it records "give up" plus its report in the
// store and leaves; every other node reads that decision, prints the same
// report and exits with the same code. Otherwise it joins again, which
// reopens the round; the others see kRoundReopened, stop and rejoin.
// TORCHELASTIC_RESTART_COUNT is the job-wide count, so every rank agrees.
// Membership changes (a node waiting while the round has fewer than MAX,
// a node dead or gone) also restart through a new round but are not counted.
// Hangs (--hang_timeout, progress_watch.h): a local rank whose progress
// stands still is named, the node claims the round's failure and it is
// handled like a worker failure (exit code 124 when giving up); every node
// prints the claimant's report. Observability (--metrics_port,
// metrics_http.h): /metrics, /healthz, /readyz from an AgentStatus the loop
// publishes.
//
// Invariants: every way out of Run() stops and reaps the workers, kills any
// stray descendant, and leaves the rendezvous; a terminating signal
// (TERM/INT/HUP/QUIT) ends the launcher within the grace period plus a
// second; a waiting call never outlasts its stated timeout; setup errors are
// one "launcher: error: ..." line and exit code 1.
#pragma once

#include <memory>

#include "launcher/agent/agent_options.h"

namespace anvil::launcher {

class ElasticAgent {
 public:
  explicit ElasticAgent(AgentOptions options);
  ~ElasticAgent();

  // Runs the job; returns the launcher's exit code: 0 on success, the root
  // cause's exit code (128 + signal for a signal) when the job failed, 124
  // after a hang, 75 when the launcher was signalled and its workers saved
  // and exited 75, else 128 + signal when it was signalled, 1 on setup
  // errors.
  // Call once, on the main thread (workers are forked from it).
  int Run();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace anvil::launcher
