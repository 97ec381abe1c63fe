// safetensors files: a streaming writer and a header reader.
//
// Format: u64 little-endian header length N, N bytes of JSON
//   {"__metadata__": {str: str}, "<name>": {"dtype": "F32", "shape": [..],
//    "data_offsets": [begin, end]}, ...}
// space-padded so the data starts 8-byte aligned, then the tensors' bytes
// (row-major, little-endian). Offsets are relative to the data start and tile
// it exactly, with no holes.
//
// The writer declares every tensor up front (so the header, which comes
// first, is final) and then takes the tensors' bytes one at a time in
// declaration order: a model is written tensor by tensor, never whole in
// memory. The reader parses the header (JSON via protobuf's Struct) and
// checks the offsets tile the data; tensors are then read one at a time.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/checkpoint/file_io.h"

namespace anvil::ckpt {

struct SafetensorsTensor {
  std::string name;
  std::string dtype = "F32";  // F32 | F16 | BF16 (what the reader converts)
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets relative to the data start
  uint64_t end = 0;
  uint64_t numel() const;
};

class SafetensorsWriter {
 public:
  // F32 tensors, written later in this order.
  static absl::StatusOr<SafetensorsWriter> Create(
      const std::string& path, const std::vector<SafetensorsTensor>& tensors,
      const std::map<std::string, std::string>& metadata);
  // The next tensor's data (numel floats).
  absl::Status WriteNext(const float* data, uint64_t numel);
  // Checks every tensor was written, fsyncs, closes.
  absl::Status Finish();

 private:
  SafetensorsWriter(FileWriter w, std::vector<SafetensorsTensor> t)
      : writer_(std::move(w)), tensors_(std::move(t)) {}
  FileWriter writer_;
  std::vector<SafetensorsTensor> tensors_;
  size_t next_ = 0;
};

struct SafetensorsFile {
  std::string path;
  uint64_t data_start = 0;                 // absolute file offset of the data
  std::vector<SafetensorsTensor> tensors;  // in offset order
  std::map<std::string, std::string> metadata;
  const SafetensorsTensor* Find(const std::string& name) const;
};

absl::StatusOr<SafetensorsFile> ReadSafetensorsHeader(const std::string& path);
// Reads one tensor, converted to fp32, into dst (numel floats).
absl::Status ReadSafetensorsTensor(const SafetensorsFile& file, const SafetensorsTensor& t,
                                   float* dst);

}  // namespace anvil::ckpt
