// Stop-abort implementation: an eventfd wakes the watchdog from the signal
// handler; while a stop is pending the watchdog checks its groups every
// 100 ms.
#include "runtime/collectives/stop_abort.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "runtime/collectives/gloo/abortable_transport.h"

namespace anvil {
namespace {

std::atomic<int> g_stop_signo{0};
std::atomic<int64_t> g_stop_ns{0};
std::atomic<int> g_wake_fd{-1};

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // steady_clock's clock on Linux
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct Watchdog {
  std::mutex mu;
  std::vector<std::weak_ptr<collectives_internal::AbortState>> groups;

  void Check(int64_t now_ns) {
    const int signo = g_stop_signo.load(std::memory_order_acquire);
    const int64_t stop_ns = g_stop_ns.load(std::memory_order_acquire);
    const int64_t delay_ns = absl::ToInt64Nanoseconds(StopAbortDelay());
    std::lock_guard<std::mutex> lock(mu);
    auto dead = [](const std::weak_ptr<collectives_internal::AbortState>& g) {
      return g.expired();
    };
    groups.erase(std::remove_if(groups.begin(), groups.end(), dead), groups.end());
    for (const auto& weak : groups) {
      std::shared_ptr<collectives_internal::AbortState> g = weak.lock();
      if (g == nullptr) continue;
      const int64_t started = g->op_started_ns();
      if (started == 0 || now_ns - std::max(started, stop_ns) < delay_ns) continue;
      g->Abort(absl::StrFormat(
          "aborted: stop requested (signal %d) while blocked in a collective for %.1f s", signo,
          (now_ns - started) / 1e9));
    }
  }

  void Loop(int fd) {
    while (true) {
      const bool stopping = g_stop_signo.load(std::memory_order_acquire) != 0;
      pollfd p{fd, POLLIN, 0};
      ::poll(&p, 1, stopping ? 100 : -1);
      uint64_t drained;
      while (::read(fd, &drained, sizeof(drained)) > 0) {
      }
      if (g_stop_signo.load(std::memory_order_acquire) != 0) Check(MonotonicNs());
    }
  }
};

Watchdog& TheWatchdog() {
  // Leaked: the thread outlives static destruction.
  static Watchdog* w = [] {
    auto* dog = new Watchdog;
    const int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) {
      std::perror("stop-abort watchdog: eventfd");
      return dog;
    }
    g_wake_fd.store(fd, std::memory_order_release);
    std::thread([dog, fd] { dog->Loop(fd); }).detach();
    return dog;
  }();
  return *w;
}

}  // namespace

void NotifyStopRequested(int signo) noexcept {
  if (g_stop_signo.load(std::memory_order_acquire) != 0) return;  // the first request counts
  g_stop_ns.store(MonotonicNs(), std::memory_order_release);
  g_stop_signo.store(signo, std::memory_order_release);
  const int fd = g_wake_fd.load(std::memory_order_acquire);
  if (fd < 0) return;
  const int saved_errno = errno;
  const uint64_t one = 1;
  (void)!::write(fd, &one, sizeof(one));
  errno = saved_errno;
}

absl::Duration StopAbortDelay() {
  static const absl::Duration delay = [] {
    const char* v = std::getenv("ANVIL_STOP_ABORT_S");
    double s = 0;
    if (v != nullptr && absl::SimpleAtod(v, &s) && s > 0) return absl::Seconds(s);
    if (v != nullptr && *v != '\0') {
      std::fprintf(stderr, "ANVIL_STOP_ABORT_S='%s' is not a positive number; using 10\n", v);
    }
    return absl::Seconds(10);
  }();
  return delay;
}

namespace collectives_internal {

void WatchForStop(std::weak_ptr<AbortState> group) {
  (void)StopAbortDelay();  // reports a bad value now rather than at the stop
  Watchdog& dog = TheWatchdog();
  std::lock_guard<std::mutex> lock(dog.mu);
  dog.groups.push_back(std::move(group));
}

}  // namespace collectives_internal
}  // namespace anvil
