// The progress reporter thread; see progress_reporter.h.
#include "runtime/trainer/progress_reporter.h"

#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "runtime/collectives/collective_trace.h"
#include "runtime/trainer/progress_file.h"

namespace anvil {
namespace {

struct Reported {
  absl::Mutex mu;
  ProgressSnapshot s ABSL_GUARDED_BY(mu);
};

// Leaked: the thread may still run while static destructors do.
Reported& State() {
  static Reported* r = new Reported;
  return *r;
}

void Loop(std::string path) {
  ProgressSnapshot last;
  absl::Time last_write = absl::InfinitePast();
  for (;;) {
    ProgressSnapshot s;
    {
      absl::MutexLock l(&State().mu);
      s = State().s;
    }
    const CollectiveProgress c = CurrentCollective();
    s.pid = ::getpid();
    s.collectives = c.issued;
    s.in_collective = c.inside;
    s.group = c.group;
    s.op = c.op;
    s.seq = c.seq;
    s.bytes = c.bytes;
    const absl::Time now = absl::Now();
    const bool changed = !s.SameProgress(last) || s.checkpoint_step != last.checkpoint_step ||
                         s.items_per_s != last.items_per_s;
    if (changed || now - last_write >= absl::Seconds(1)) {
      s.written_unix_ms = absl::ToUnixMillis(now);
      // A failed write (disk full, directory gone) is retried next time.
      if (WriteProgressFile(path, s).ok()) {
        last = s;
        last_write = now;
      }
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
}

}  // namespace

void StartProgressReporter() {
  static const bool started = [] {
    const char* path = std::getenv(kEnvProgressFile);
    if (path == nullptr || *path == '\0') return false;
    std::thread(Loop, std::string(path)).detach();
    return true;
  }();
  (void)started;
}

void ReportStep(int64_t step, double items_per_s, const char* unit) {
  absl::MutexLock l(&State().mu);
  State().s.step = step;
  State().s.items_per_s = items_per_s;
  State().s.unit = unit;
}

void ReportCheckpoint(int64_t step) {
  absl::MutexLock l(&State().mu);
  State().s.checkpoint_step = step;
  State().s.checkpoint_unix_ms = absl::ToUnixMillis(absl::Now());
}

}  // namespace anvil
