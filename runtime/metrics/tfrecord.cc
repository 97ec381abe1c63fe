#include "runtime/metrics/tfrecord.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/metrics/crc32c.h"

namespace anvil::metrics {
namespace {

void PutLe(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

uint64_t GetLe(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

absl::Status Errno(const char* what, const std::string& path) {
  return absl::Status(absl::ErrnoToStatusCode(errno),
                      absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

}  // namespace

std::string FrameTfRecord(std::string_view data) {
  std::string out;
  out.reserve(data.size() + 16);
  PutLe(&out, data.size(), 8);
  PutLe(&out, MaskCrc32c(Crc32c(out.data(), 8, 0)), 4);
  out.append(data);
  PutLe(&out, MaskCrc32c(Crc32c(data)), 4);
  return out;
}

absl::StatusOr<std::unique_ptr<TfRecordWriter>> TfRecordWriter::Create(const std::string& path) {
  // "x": O_EXCL, so two writers never share a file.
  std::FILE* f = std::fopen(path.c_str(), "wbx");
  if (f == nullptr) return Errno("cannot create", path);
  return std::unique_ptr<TfRecordWriter>(new TfRecordWriter(path, f));
}

TfRecordWriter::~TfRecordWriter() { std::fclose(file_); }

absl::Status TfRecordWriter::Write(std::string_view data) {
  const std::string framed = FrameTfRecord(data);
  if (std::fwrite(framed.data(), 1, framed.size(), file_) != framed.size()) {
    return Errno("cannot write", path_);
  }
  return absl::OkStatus();
}

absl::Status TfRecordWriter::Flush() {
  if (std::fflush(file_) != 0) return Errno("cannot write", path_);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TfRecordReader>> TfRecordReader::Open(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return Errno("cannot open", path);
  return std::unique_ptr<TfRecordReader>(new TfRecordReader(path, f));
}

TfRecordReader::~TfRecordReader() { std::fclose(file_); }

absl::StatusOr<std::optional<std::string>> TfRecordReader::Next() {
  unsigned char header[12];
  const size_t got = std::fread(header, 1, sizeof(header), file_);
  if (got == 0 && std::feof(file_)) return std::nullopt;
  auto loss = [&](const char* why) {
    return absl::DataLossError(
        absl::StrFormat("%s: record at offset %d: %s", path_, offset_, why));
  };
  if (got != sizeof(header)) return loss("truncated header");
  const uint64_t length = GetLe(header, 8);
  if (UnmaskCrc32c(static_cast<uint32_t>(GetLe(header + 8, 4))) != Crc32c(header, 8, 0)) {
    return loss("length CRC mismatch");
  }
  std::string data(length, '\0');
  unsigned char footer[4];
  if (std::fread(data.data(), 1, length, file_) != length ||
      std::fread(footer, 1, 4, file_) != 4) {
    return loss("truncated data");
  }
  if (UnmaskCrc32c(static_cast<uint32_t>(GetLe(footer, 4))) != Crc32c(data)) {
    return loss("data CRC mismatch");
  }
  offset_ += 16 + length;
  return std::optional<std::string>(std::move(data));
}

}  // namespace anvil::metrics
