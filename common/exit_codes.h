// Exit codes with a meaning shared by workers and the launcher.
#pragma once

namespace anvil {

// A worker stopped by a signal at a step boundary after saving a checkpoint
// (EX_TEMPFAIL): "preempted, resume me". The launcher restarts such a group
// without counting it against --max_restarts.
inline constexpr int kExitPreempted = 75;

// A worker stopped because a checkpoint save failed (--on_save_error=stop),
// after keeping every committed checkpoint. The launcher does not restart
// such a group: the restart would redo the steps since the last commit and
// most likely fail the same way (a full disk).
inline constexpr int kExitSaveFailed = 3;

// Bad input: one line on stderr names the flag or file.
inline constexpr int kExitBadInput = 2;

}  // namespace anvil
