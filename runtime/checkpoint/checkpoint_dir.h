// The checkpoint directory: names of its entries and what state each is in.
//
//   <dir>/step_00000100/             committed (has manifest.pb; the rename
//                                    from .tmp is the commit point)
//   <dir>/step_00000200.tmp/         a save in progress, or one that died
//   <dir>/step_00000050.deleting/    retention removing it (no longer a checkpoint)
//   <dir>/step_00000300.corrupt-<ms>/ failed verification, set aside, kept
//   <dir>/latest                     "step_00000100\n", replaced atomically
//
// Invariant: only `step_<N>` directories are checkpoints; every other suffix
// marks something that is not (and is never resumed from).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace anvil::ckpt {

enum class EntryState { kCommitted, kPartial, kDeleting, kSetAside };

struct DirEntry {
  int64_t step = 0;
  std::string name;  // relative to the checkpoint directory
  EntryState state = EntryState::kCommitted;
};

inline constexpr char kLatestName[] = "latest";

std::string StepDirName(int64_t step);
std::string TmpDirName(int64_t step);

// Every recognised entry, newest step first (committed before other states
// of the same step). A missing directory is an empty list.
std::vector<DirEntry> ListCheckpointDir(const std::string& dir);

// The committed entries only, newest first.
std::vector<DirEntry> CommittedCheckpoints(const std::string& dir);

absl::Status WriteLatest(const std::string& dir, const std::string& name);
// The name `latest` points to; NotFound when there is none.
absl::StatusOr<std::string> ReadLatest(const std::string& dir);

}  // namespace anvil::ckpt
