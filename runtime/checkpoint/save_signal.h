// An extra "save and stop" signal besides SIGTERM/SIGINT (stop_signal.h):
// Slurm's `--signal=USR1@120` and similar schedulers warn with SIGUSR1/2.
// The handler only sets a flag; the trainer treats it exactly like SIGTERM
// (finish the step, save, exit with kExitStopped).
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace anvil::ckpt {

// "USR1", "SIGUSR1", "usr2", "10", ... -> the signal number
// (common/signal_names.h); KILL and STOP cannot be caught.
absl::StatusOr<int> ParseSignalName(const std::string& name);
void InstallSaveSignal(int signo);
// The configured signal number once it arrived, else 0.
int SaveSignalReceived();

}  // namespace anvil::ckpt
