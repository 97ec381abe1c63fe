#include "runtime/trainer/stop_signal.h"

#include <csignal>

#include "runtime/collectives/stop_abort.h"

namespace anvil {
namespace {

volatile std::sig_atomic_t g_stop_signal = 0;

// Async-signal-safe: a flag, and a wake-up for the collectives' watchdog,
// which aborts a collective still blocked StopAbortDelay() later (a peer
// that stopped answering must not keep this process past its grace period).
void OnSignal(int sig) {
  g_stop_signal = sig;
  NotifyStopRequested(sig);
}

}  // namespace

void InstallStopHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool StopRequested() { return g_stop_signal != 0; }
int StopSignal() { return g_stop_signal; }

}  // namespace anvil
