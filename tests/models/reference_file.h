// Reader for the parity reference files written by make_gpt_reference.py.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace anvil::testing {

struct RefTensor {
  std::vector<int64_t> shape;
  std::vector<float> f;    // dtype 0
  std::vector<int32_t> i;  // dtype 3
};

absl::StatusOr<std::map<std::string, RefTensor>> ReadReferenceFile(const std::string& path);

}  // namespace anvil::testing
