#include "kernels/cpu/cpu_info.h"

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/dnnl_gemm.h"

namespace anvil::kernels::cpu {
namespace {

std::string CpuinfoField(const std::string& key) {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key, 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "";
}

bool HasFlag(const std::string& flag) {
  const std::string flags = absl::StrCat(" ", CpuinfoField("flags"), " ");
  return flags.find(absl::StrCat(" ", flag, " ")) != std::string::npos;
}

}  // namespace

std::string CpuModelName() {
  const std::string m = CpuinfoField("model name");
  return m.empty() ? "unknown CPU" : m;
}

bool CpuHasAvx512Bf16() { return HasFlag("avx512_bf16"); }
bool CpuHasAmxBf16() { return HasFlag("amx_bf16"); }

std::string CpuIsaSummary() {
  return absl::StrCat(CpuHasAvx512Subsets() ? "avx512" : "avx2",
                      CpuHasAvx512Bf16() ? " avx512_bf16" : "", CpuHasAmxBf16() ? " amx_bf16" : "",
                      ", oneDNN ", DnnlIsaName());
}

}  // namespace anvil::kernels::cpu
