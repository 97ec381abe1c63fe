// --nproc_per_node resolution; see nproc.h.
#include "launcher/agent/nproc.h"

#include <sched.h>

#include <filesystem>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace anvil::launcher {

int CountVisibleGpus(const std::map<std::string, std::string>& env) {
  auto it = env.find("CUDA_VISIBLE_DEVICES");
  if (it != env.end()) {
    int n = 0;
    for (absl::string_view d : absl::StrSplit(it->second, ',', absl::SkipWhitespace())) {
      if (d == "-1") break;  // CUDA stops at the first invalid id
      ++n;
    }
    return n;
  }
  std::error_code ec;
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/driver/nvidia/gpus", ec)) {
    (void)e;
    ++n;
  }
  return n;
}

absl::StatusOr<int> ResolveNprocPerNode(const std::string& spec, const std::map<std::string, std::string>& env) {
  int n = 0;
  if (absl::SimpleAtoi(spec, &n)) {
    if (n >= 1) return n;
    return absl::InvalidArgumentError("--nproc_per_node must be >= 1");
  }
  auto cpus = [] {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
    return 1;
  };
  if (spec == "cpu") return cpus();
  const int gpus = CountVisibleGpus(env);
  if (spec == "gpu") {
    if (gpus == 0) return absl::FailedPreconditionError("--nproc_per_node=gpu but no GPU is visible");
    return gpus;
  }
  if (spec == "auto") return gpus > 0 ? gpus : cpus();
  return absl::InvalidArgumentError("--nproc_per_node: expected an integer, cpu, gpu or auto");
}

}  // namespace anvil::launcher
