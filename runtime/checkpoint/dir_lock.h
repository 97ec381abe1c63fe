// CheckpointDirLock: a checkpoint directory belongs to one job at a time.
//
// Rank 0 holds an advisory lock (flock) on <dir>/owner for as long as the
// job's CheckpointWriter lives, and writes the owner record into it: run
// id, host, pid, the process's start time and when it took the lock. A
// second job that opens the same directory is refused with one line naming
// the owner. The kernel drops the flock when its process dies, so a lock
// that can be taken over a leftover record is stale (the owner is gone): it
// is taken over with a note. On one host a record whose process is still
// alive (same pid and start time) also counts as held, for filesystems
// where flock is advisory only. Every other rank then checks that it sees
// rank 0's record in its own view of the directory (one shared directory).
// A clean release removes the record.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace anvil::ckpt {

inline constexpr char kOwnerFileName[] = "owner";

class CheckpointDirLock {
 public:
  // Takes the lock of `dir` (which must exist) for `run_id` (may be empty).
  // FailedPrecondition naming the owner when a live job holds it; `note`
  // receives one line when a stale lock was taken over.
  static absl::StatusOr<std::unique_ptr<CheckpointDirLock>> Acquire(const std::string& dir,
                                                                     const std::string& run_id,
                                                                     std::string* note);
  ~CheckpointDirLock();
  CheckpointDirLock(const CheckpointDirLock&) = delete;
  CheckpointDirLock& operator=(const CheckpointDirLock&) = delete;

  // The owner record as written (and as every rank must read it back).
  const std::string& record() const { return record_; }

 private:
  CheckpointDirLock(std::string path, int fd, std::string record)
      : path_(std::move(path)), fd_(fd), record_(std::move(record)) {}
  std::string path_;
  int fd_ = -1;
  std::string record_;
};

// A non-zero rank's check: `dir`'s owner record reads `expected` (rank 0's).
absl::Status CheckDirOwner(const std::string& dir, const std::string& expected);

}  // namespace anvil::ckpt
