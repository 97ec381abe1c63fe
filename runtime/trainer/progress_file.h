// ProgressSnapshot: what a worker tells its launcher about its progress, as
// one line of "key=value" text in a file the launcher names
// (ANVIL_PROGRESS_FILE). A file, not the store: updating it costs no RPC
// and no peer, it survives a store that is slow or gone, the agent reads
// it with one read(2) per poll, and `cat` shows it. The worker rewrites it
// whole (write a temporary, rename), so a reader sees either the old or the
// new line, never half of one.
// Invariants: Format and Parse round-trip every field; unknown keys are
// ignored (old agents read new workers); a missing file or a line without
// "pid=" parses as NotFound.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace anvil {

inline constexpr char kEnvProgressFile[] = "ANVIL_PROGRESS_FILE";

struct ProgressSnapshot {
  int64_t pid = 0;
  int64_t step = 0;            // optimizer steps done
  double items_per_s = 0;      // the last step's throughput, job-wide
  std::string unit;            // "tokens", "images"
  uint64_t collectives = 0;    // collectives begun, over all groups
  bool in_collective = false;  // inside one now
  std::string group, op;       // the current (or last) collective
  uint64_t seq = 0;            // its sequence number in its group
  uint64_t bytes = 0;
  int64_t checkpoint_step = -1;      // the last checkpoint snapshot taken (-1: none)
  int64_t checkpoint_unix_ms = 0;
  int64_t written_unix_ms = 0;       // when this line was written (heartbeat)

  // The fields that say "progress": a change in any of them is progress.
  bool SameProgress(const ProgressSnapshot& o) const {
    return step == o.step && collectives == o.collectives && in_collective == o.in_collective;
  }
  // "step 3, in collective #57 allreduce 4.0 KB of group 'pg'" or
  // "step 3, outside any collective (last: #57 allreduce ...)".
  std::string Where() const;
};

std::string FormatProgress(const ProgressSnapshot& s);
absl::StatusOr<ProgressSnapshot> ParseProgress(const std::string& line);

// Whole-file write through a temporary and rename(2).
absl::Status WriteProgressFile(const std::string& path, const ProgressSnapshot& s);
absl::StatusOr<ProgressSnapshot> ReadProgressFile(const std::string& path);

}  // namespace anvil
