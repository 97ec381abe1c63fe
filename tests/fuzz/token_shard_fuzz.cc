// Fuzzes the llm.c-format token shard reader: the input is the file. Open
// either refuses it with a status or every token it hands out is below the
// vocabulary size.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "runtime/data/token_shard.h"
#include "tests/fuzz/fuzz_util.h"

namespace {
constexpr int kVocab = 300;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string seeds = anvil::fuzz::SeedDir();
  if (seeds.empty()) return 0;
  const std::vector<uint32_t> small = {1, 2, 3, 255, 299, 0, 7};
  if (!anvil::WriteTokenShard(seeds + "/u16.bin", small).ok()) std::abort();
  if (!anvil::WriteTokenShard(seeds + "/u32.bin", small, /*force_u32=*/true).ok()) std::abort();
  if (!anvil::WriteTokenShard(seeds + "/empty.bin", {}).ok()) std::abort();
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = anvil::fuzz::ScratchDir() + "/shard.bin";
  anvil::fuzz::WriteBytes(path, std::string_view(reinterpret_cast<const char*>(data), size));
  absl::StatusOr<anvil::TokenShard> shard = anvil::TokenShard::Open(path, kVocab);
  if (!shard.ok()) return 0;
  std::vector<int32_t> tokens(shard->size());
  if (!tokens.empty()) shard->Read(0, tokens.size(), tokens.data());
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= kVocab || (*shard)[i] != tokens[i]) std::abort();
  }
  return 0;
}
