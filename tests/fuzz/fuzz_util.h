// Helpers shared by the libFuzzer targets in this folder.
//
// Readers that take a path are fed through a per-process scratch folder in
// /dev/shm (tmpfs: no disk writes per input). Seeds: when ANVIL_FUZZ_SEEDS
// names a folder, LLVMFuzzerInitialize writes the target's seed inputs there
// (made by the project's own writers, so they follow the format as it is)
// and the process exits; run_fuzzer.sh then fuzzes from them.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace anvil::fuzz {

// $ANVIL_FUZZ_SCRATCH, else /dev/shm/anvil_fuzz_<pid>; created on first use.
inline const std::string& ScratchDir() {
  static const std::string dir = [] {
    const char* env = std::getenv("ANVIL_FUZZ_SCRATCH");
    std::string d = env != nullptr ? env : "/dev/shm/anvil_fuzz_" + std::to_string(::getpid());
    std::error_code ec;
    std::filesystem::create_directories(d, ec);
    if (ec) std::abort();
    return d;
  }();
  return dir;
}

inline void WriteBytes(const std::string& path, std::string_view bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) std::abort();
}

// The seed folder, or "" when this is a fuzzing run.
inline std::string SeedDir() {
  const char* d = std::getenv("ANVIL_FUZZ_SEEDS");
  return d != nullptr ? d : "";
}

// Writes seed `name` into `dir`.
inline void WriteSeed(const std::string& dir, const std::string& name, std::string_view bytes) {
  WriteBytes(dir + "/" + name, bytes);
}

}  // namespace anvil::fuzz
