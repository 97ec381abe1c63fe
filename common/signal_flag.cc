// SignalFlag implementation: a table from signal number to flag, read by
// the one handler.
#include "common/signal_flag.h"

#include <csignal>

namespace anvil {
namespace {

std::atomic<const SignalFlag*> g_flags[NSIG];

}  // namespace

void SignalFlag::OnSignal(int signo) {
  if (signo <= 0 || signo >= NSIG) return;
  const SignalFlag* flag = g_flags[signo].load(std::memory_order_acquire);
  if (flag == nullptr) return;
  flag->received_.store(signo, std::memory_order_release);
  if (flag->notify_ != nullptr) flag->notify_(signo);
}

const SignalFlag& SignalFlag::Catch(const std::vector<int>& signals, Notify notify) {
  const SignalFlag* flag = new SignalFlag(notify);  // lives for the process
  for (int signo : signals) {
    if (signo <= 0 || signo >= NSIG) continue;
    g_flags[signo].store(flag, std::memory_order_release);
    struct sigaction sa {};
    sa.sa_handler = OnSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(signo, &sa, nullptr);
  }
  return *flag;
}

}  // namespace anvil
