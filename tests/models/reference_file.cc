#include "tests/models/reference_file.h"

#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace anvil::testing {

absl::StatusOr<std::map<std::string, RefTensor>> ReadReferenceFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  char magic[8];
  uint32_t count = 0;
  in.read(magic, 8);
  in.read(reinterpret_cast<char*>(&count), 4);
  if (!in || std::memcmp(magic, "ANVREF01", 8) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": bad magic"));
  }
  std::map<std::string, RefTensor> out;
  for (uint32_t r = 0; r < count; ++r) {
    uint32_t name_len = 0, ndim = 0;
    uint8_t dtype = 0;
    in.read(reinterpret_cast<char*>(&name_len), 4);
    std::string name(name_len, '\0');
    in.read(name.data(), name_len);
    in.read(reinterpret_cast<char*>(&dtype), 1);
    in.read(reinterpret_cast<char*>(&ndim), 4);
    RefTensor t;
    t.shape.resize(ndim);
    in.read(reinterpret_cast<char*>(t.shape.data()), 8 * ndim);
    size_t n = 1;
    for (int64_t d : t.shape) n *= static_cast<size_t>(d);
    if (dtype == 0) {
      t.f.resize(n);
      in.read(reinterpret_cast<char*>(t.f.data()), 4 * n);
    } else {
      t.i.resize(n);
      in.read(reinterpret_cast<char*>(t.i.data()), 4 * n);
    }
    if (!in) return absl::DataLossError(absl::StrCat(path, ": truncated at record ", name));
    out[name] = std::move(t);
  }
  return out;
}

}  // namespace anvil::testing
