// Root-cause reports: which worker failed first, where, how, and why.
// A report names the rank, local rank, host, pid, attempt, exit code or
// signal, the worker's TORCHELASTIC_ERROR_FILE (torchelastic JSON: the
// message, its timestamp and traceback; raw text otherwise) and the last
// lines of its stderr, so "error_file: <N/A>" never needs to be the answer.
// Invariant: the chosen root cause is the failure with the earliest error-file
// timestamp when any worker wrote one, else the earliest observed exit.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace anvil::launcher {

struct FailureReport {
  int rank = 0;
  int local_rank = 0;
  std::string host;
  pid_t pid = 0;
  int attempt = 0;  // TORCHELASTIC_RESTART_COUNT of the failed run
  int exit_code = -1;
  int signal = 0;
  absl::Time exit_time;
  std::string error_file;          // path given to the worker
  std::string error_message;       // from the error file, "" when none
  std::string error_traceback;     // from the error file, "" when none
  absl::Time error_time = absl::InfiniteFuture();  // from the error file
  std::vector<std::string> stderr_tail;
};

// Reads a worker's error file into `report` (no-op when it does not exist).
void ReadErrorFile(FailureReport* report);

// Index of the root cause in `failures` (-1 when empty).
int PickRootCause(const std::vector<FailureReport>& failures);

// "exit code 3" / "signal SIGSEGV (11)".
std::string DescribeExit(int exit_code, int signal);

// The multi-line report printed by the agent (and stored for other nodes).
std::string FormatFailureReport(const FailureReport& report, int total_failures);

}  // namespace anvil::launcher
