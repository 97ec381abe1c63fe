// Stop-abort: a process asked to stop (SIGTERM/SIGINT) must end within the
// launcher's grace period even when it is blocked in a collective whose peer
// no longer answers (stopped, hung, or partitioned away without a closed
// connection). The training loop stops cleanly at a step boundary when it
// can; a collective that stays blocked StopAbortDelay() after the stop
// request aborts its group instead, so its Work fails and the process exits.
// Invariants: NotifyStopRequested is async-signal-safe (atomic stores and
// one write(2)); it never aborts anything itself. Only groups that are in a
// collective are aborted, and only after the delay, counted from the later
// of the stop request and the collective's start: a group that finishes its
// step normally is never touched. One watchdog thread per process, started
// by the first group that registers; it sleeps unless a stop was requested.
#pragma once

#include <memory>

#include "absl/time/time.h"

namespace anvil {

namespace collectives_internal {
class AbortState;
}  // namespace collectives_internal

// Called from a SIGTERM/SIGINT handler (runtime/trainer/stop_signal.cc).
void NotifyStopRequested(int signo) noexcept;

// ANVIL_STOP_ABORT_S (seconds, > 0; default 10: a third of the launcher's
// default 30 s grace period). Read once.
absl::Duration StopAbortDelay();

namespace collectives_internal {
// Watches `group` (until it is destroyed) for the stop-abort rule above.
void WatchForStop(std::weak_ptr<AbortState> group);
}  // namespace collectives_internal

}  // namespace anvil
