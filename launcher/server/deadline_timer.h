// DeadlineTimer: one thread that runs callbacks at given times. The server
// uses it for every timeout (store waits, join timeouts, last call, the
// heartbeat reaper), so thousands of pending deadlines cost one thread.
// Invariants: a callback runs at most once, on the timer thread, with no
// timer lock held (it may Schedule or Cancel); after Cancel(id) returns true
// the callback will not run; after Stop() returns no callback runs.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace anvil {

class DeadlineTimer {
 public:
  using TimerId = uint64_t;

  DeadlineTimer();
  ~DeadlineTimer();  // Stop()
  DeadlineTimer(const DeadlineTimer&) = delete;
  DeadlineTimer& operator=(const DeadlineTimer&) = delete;

  // Runs `fn` at `when` (at once if in the past). Returns an id for Cancel;
  // never 0. After Stop(), returns 0 and drops `fn`.
  TimerId Schedule(absl::Time when, std::function<void()> fn);
  // True when the callback was pending and now never runs.
  bool Cancel(TimerId id);
  // Drops pending callbacks and joins the thread (waits for a running one).
  void Stop();

 private:
  void Loop();

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  TimerId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::pair<absl::Time, TimerId>, std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<TimerId, absl::Time> when_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace anvil
