// SignalWatcher: turns the launcher's signals into events its main loop can
// wait on (the self-pipe trick), so forwarding and shutdown happen on the
// agent's thread, never inside a signal handler.
// Invariants: at most one watcher exists per process; while it lives, the
// watched signals and SIGCHLD (used only to wake the loop when a worker
// exits) are caught by a handler that only write()s to a pipe; SIGPIPE is
// ignored; the destructor restores the previous dispositions. Wake() may be
// called from any thread (rendezvous watch callbacks use it).
#pragma once

#include <csignal>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace anvil::launcher {

class SignalWatcher {
 public:
  static absl::StatusOr<std::unique_ptr<SignalWatcher>> Install(const std::vector<int>& signals);
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  // Blocks until a signal arrives, Wake() is called, or `timeout` passes.
  // Returns the watched signals received (SIGCHLD is not reported), in order.
  std::vector<int> Wait(absl::Duration timeout);
  // Safe from any thread, even after the watcher is gone (then a no-op).
  static void Wake();

 private:
  explicit SignalWatcher(std::vector<int> signals);
  std::vector<int> signals_;
  std::vector<struct sigaction> previous_;
  struct sigaction previous_chld_;
  struct sigaction previous_pipe_;
};

}  // namespace anvil::launcher
