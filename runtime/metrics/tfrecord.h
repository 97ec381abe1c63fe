// TFRecord files: the framing of TensorBoard event files. Each record is
//   uint64 length (little-endian)
//   uint32 MaskCrc32c(Crc32c(the 8 length bytes))
//   length bytes of data
//   uint32 MaskCrc32c(Crc32c(data))
// Invariants: the writer only appends whole records (a record is one fwrite
// of its framed bytes, so a reader polling the file sees at most a truncated
// last record, never interleaved ones); the reader checks both CRCs of
// every record and reports DataLoss naming the offset of the first record
// that fails, so a damaged file is never read as valid data.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace anvil::metrics {

// The framed bytes of one record holding `data`.
std::string FrameTfRecord(std::string_view data);

class TfRecordWriter {
 public:
  // Creates `path`; AlreadyExists if it exists (a writer never appends to,
  // or clobbers, another writer's file).
  static absl::StatusOr<std::unique_ptr<TfRecordWriter>> Create(const std::string& path);
  ~TfRecordWriter();  // flushes and closes
  TfRecordWriter(const TfRecordWriter&) = delete;
  TfRecordWriter& operator=(const TfRecordWriter&) = delete;

  absl::Status Write(std::string_view data);
  // Hands buffered records to the OS (readers of the file see them).
  absl::Status Flush();
  const std::string& path() const { return path_; }

 private:
  TfRecordWriter(std::string path, std::FILE* f) : path_(std::move(path)), file_(f) {}
  std::string path_;
  std::FILE* file_;
};

class TfRecordReader {
 public:
  static absl::StatusOr<std::unique_ptr<TfRecordReader>> Open(const std::string& path);
  ~TfRecordReader();
  TfRecordReader(const TfRecordReader&) = delete;
  TfRecordReader& operator=(const TfRecordReader&) = delete;

  // The next record's data; nullopt at a clean end of file; DataLoss for a
  // bad length CRC, a bad data CRC or a truncated record.
  absl::StatusOr<std::optional<std::string>> Next();

 private:
  TfRecordReader(std::string path, std::FILE* f) : path_(std::move(path)), file_(f) {}
  std::string path_;
  std::FILE* file_;
  uint64_t offset_ = 0;
};

}  // namespace anvil::metrics
