// Fault injection for the checkpoint writer: ANVIL_CKPT_FAULT=<point>[@<step>][:<rank>]
// makes the process SIGKILL itself (exactly what `kill -9` does) when it
// reaches the named point of a save, so tests can hit each phase of the
// commit protocol exactly. Unset (the normal case) costs one cached lookup.
//
// Points, in the order a save passes them:
//   snapshot         main thread, half-way through copying the shard to host memory
//   shard_write      writer thread, half-way through writing its data file
//   before_manifest  rank 0, every data file fsynced, no manifest yet
//   before_rename    rank 0, manifest fsynced, directory still step_<N>.tmp
//   before_latest    rank 0, renamed to step_<N>, `latest` not yet updated
//   retention        rank 0, an old checkpoint renamed to .deleting and one of
//                    its files removed
// One point fails instead of killing:
//   disk_full        from the given step on (every later step too), writing
//                    a data file fails with ENOSPC half-way through, as on a
//                    full disk
#pragma once

#include <cstdint>
#include <string_view>

namespace anvil::ckpt {

// Kills the process if ANVIL_CKPT_FAULT names `point` (and the step and rank
// match when given).
void MaybeFault(std::string_view point, int64_t step, int rank);

// True when ANVIL_CKPT_FAULT=disk_full[@<first step>][:<rank>] applies to a
// save of `step` on `rank`.
bool DiskFullInjected(int64_t step, int rank);

}  // namespace anvil::ckpt
