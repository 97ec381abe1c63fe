// What CPU this is, for benchmark headers and Device::Describe: the model
// name from /proc/cpuinfo and the bf16-relevant instruction sets it has.
#pragma once

#include <string>

namespace anvil::kernels::cpu {

std::string CpuModelName();
bool CpuHasAvx512Bf16();
bool CpuHasAmxBf16();
// e.g. "avx512 avx512_bf16, oneDNN avx512_core_bf16" (what bf16 GEMMs use).
std::string CpuIsaSummary();

}  // namespace anvil::kernels::cpu
