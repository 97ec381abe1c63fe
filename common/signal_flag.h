// SignalFlag: signals whose arrival is only recorded, for code that polls
// (the trainer's clean stop on SIGTERM/SIGINT, the checkpoint's save
// signal). Invariants: the handler touches only lock-free atomics and the
// optional `notify` function, which must itself be async-signal-safe.
// Flags live for the whole process. Catching a signal that another flag
// already catches moves it to the new flag (the later sigaction wins).
#pragma once

#include <atomic>
#include <vector>

namespace anvil {

class SignalFlag {
 public:
  using Notify = void (*)(int signo);

  // Installs SA_RESTART handlers for `signals` that record the signal and
  // then call `notify` (when non-null).
  static const SignalFlag& Catch(const std::vector<int>& signals, Notify notify = nullptr);

  // The last of its signals that arrived; 0 while none has.
  int received() const { return received_.load(std::memory_order_acquire); }

 private:
  explicit SignalFlag(Notify notify) : notify_(notify) {}
  static void OnSignal(int signo);

  mutable std::atomic<int> received_{0};
  const Notify notify_;
};

}  // namespace anvil
