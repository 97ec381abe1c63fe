// The save signal over common/signal_names.h and common/signal_flag.h. Like
// SIGTERM, it also wakes the collectives' stop-abort (a blocked collective
// cannot reach the save anyway).
#include "runtime/checkpoint/save_signal.h"

#include <atomic>
#include <csignal>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/signal_flag.h"
#include "common/signal_names.h"
#include "runtime/collectives/stop_abort.h"

namespace anvil::ckpt {
namespace {

std::atomic<const SignalFlag*> g_save{nullptr};

}  // namespace

absl::StatusOr<int> ParseSignalName(const std::string& name) {
  absl::StatusOr<int> signo = ParseSignal(name);
  if (!signo.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--save_signal: ", signo.status().message(),
                                                   " (e.g. USR1, USR2 or a number)"));
  }
  if (*signo == SIGKILL || *signo == SIGSTOP) {
    return absl::InvalidArgumentError(
        absl::StrCat("--save_signal: ", SignalName(*signo), " cannot be caught"));
  }
  return *signo;
}

void InstallSaveSignal(int signo) {
  g_save.store(&SignalFlag::Catch({signo}, NotifyStopRequested), std::memory_order_release);
}

int SaveSignalReceived() {
  const SignalFlag* flag = g_save.load(std::memory_order_acquire);
  return flag == nullptr ? 0 : flag->received();
}

}  // namespace anvil::ckpt
