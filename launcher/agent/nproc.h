// --nproc_per_node resolution: an integer as given; "gpu" the visible GPUs
// (CUDA_VISIBLE_DEVICES when set, else /proc/driver/nvidia/gpus); "cpu" the
// CPUs this process may run on; "auto" GPUs when there are any, else CPUs.
// Invariant: the result is >= 1, or an error that says why ("gpu" with no GPU).
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace anvil::launcher {

int CountVisibleGpus(const std::map<std::string, std::string>& env);
absl::StatusOr<int> ResolveNprocPerNode(const std::string& spec, const std::map<std::string, std::string>& env);

}  // namespace anvil::launcher
