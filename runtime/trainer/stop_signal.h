// Clean stop on SIGINT/SIGTERM: the handler only sets a flag; the training
// loop checks it at step boundaries, so a step is never cut in half. When a
// collective stays blocked (a peer stopped answering), the collectives'
// stop-abort (runtime/collectives/stop_abort.h) aborts it after
// ANVIL_STOP_ABORT_S, so the process still exits within the grace period.
#pragma once

#include "common/exit_codes.h"

namespace anvil {

// Installs handlers for SIGINT and SIGTERM. Idempotent.
void InstallStopHandlers();
bool StopRequested();
int StopSignal();  // the signal that asked to stop, 0 if none

// Exit code of a run stopped by a signal at a step boundary (EX_TEMPFAIL):
// the launcher can tell "preempted, resume me" from success and failure.
inline constexpr int kExitStopped = kExitPreempted;

}  // namespace anvil
