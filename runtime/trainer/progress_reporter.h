// The worker's side of the launcher's hang watchdog and /metrics: a thread
// that, when the launcher named a file in ANVIL_PROGRESS_FILE, writes this
// process's ProgressSnapshot (progress_file.h) there: the trainer's step,
// throughput and last checkpoint (Report* below) and the collective the
// process is in (CurrentCollective()). It samples every 200 ms and writes
// when anything changed, and at least once a second (the heartbeat).
// Invariants: Report* are cheap (a mutex and a few stores) and safe before
// or without StartProgressReporter; the thread never blocks training.
#pragma once

#include <cstdint>
#include <string>

namespace anvil {

// Starts the thread when ANVIL_PROGRESS_FILE is set; idempotent.
void StartProgressReporter();
void ReportStep(int64_t step, double items_per_s, const char* unit);
void ReportCheckpoint(int64_t step);

}  // namespace anvil
