// Exit codes with a meaning shared by workers and the launcher.
#pragma once

namespace anvil {

// A worker stopped by a signal at a step boundary after saving a checkpoint
// (EX_TEMPFAIL): "preempted, resume me". The launcher restarts such a group
// without counting it against --max_restarts.
inline constexpr int kExitPreempted = 75;

}  // namespace anvil
