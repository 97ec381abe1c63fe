// The trainer's stop flag over common/signal_flag.h; the flag's notifier
// wakes the collectives' stop-abort watchdog, which aborts a collective
// still blocked StopAbortDelay() later (a peer that stopped answering must
// not keep this process past its grace period).
#include "runtime/trainer/stop_signal.h"

#include <atomic>
#include <csignal>

#include "common/signal_flag.h"
#include "runtime/collectives/stop_abort.h"

namespace anvil {
namespace {

std::atomic<const SignalFlag*> g_stop{nullptr};

}  // namespace

void InstallStopHandlers() {
  static const SignalFlag& flag = SignalFlag::Catch({SIGINT, SIGTERM}, NotifyStopRequested);
  g_stop.store(&flag, std::memory_order_release);
}

bool StopRequested() { return StopSignal() != 0; }

int StopSignal() {
  const SignalFlag* flag = g_stop.load(std::memory_order_acquire);
  return flag == nullptr ? 0 : flag->received();
}

}  // namespace anvil
