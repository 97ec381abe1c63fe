#include "runtime/data/idx_reader.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace anvil {
namespace {

constexpr uint32_t kImagesMagic = 0x00000803;
constexpr uint32_t kLabelsMagic = 0x00000801;

absl::Status Error(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

uint32_t BigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// The whole (decompressed) file.
absl::StatusOr<std::vector<uint8_t>> ReadAll(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Error(path, std::filesystem::exists(path, ec) ? "not a regular file" : "no such file");
  }
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return Error(path, absl::StrCat("cannot open: ", std::strerror(errno)));
  std::vector<uint8_t> data;
  constexpr size_t kChunk = 1 << 20;
  for (;;) {
    const size_t at = data.size();
    data.resize(at + kChunk);
    const int got = gzread(f, data.data() + at, kChunk);
    if (got < 0) {
      int code = 0;
      const std::string msg = gzerror(f, &code);
      gzclose(f);
      return Error(path, absl::StrCat("damaged gzip stream: ", msg));
    }
    data.resize(at + static_cast<size_t>(got));
    if (got == 0) break;
  }
  // A gzip stream cut short reads as a short file and sets Z_BUF_ERROR.
  int code = 0;
  const std::string msg = gzerror(f, &code);
  gzclose(f);
  if (code != Z_OK) return Error(path, absl::StrCat("truncated gzip stream: ", msg));
  return data;
}

struct IdxHeader {
  std::vector<uint32_t> dims;
  size_t data_offset = 0;
};

absl::StatusOr<IdxHeader> ParseHeader(const std::string& path, const std::vector<uint8_t>& data,
                                      uint32_t want_magic) {
  const char* want = want_magic == kImagesMagic ? "an IDX image file, magic 0x00000803"
                                                : "an IDX label file, magic 0x00000801";
  if (data.size() < 4) {
    return Error(path, absl::StrCat("truncated: ", data.size(), " bytes, not ", want));
  }
  const uint32_t magic = BigEndian32(data.data());
  if (magic != want_magic) {
    std::string hint;
    if (magic == kImagesMagic) hint = " (this is an image file)";
    if (magic == kLabelsMagic) hint = " (this is a label file)";
    return Error(path, absl::StrFormat("wrong magic 0x%08x%s: expected %s", magic, hint, want));
  }
  IdxHeader h;
  const size_t ndims = magic & 0xff;
  h.data_offset = 4 + 4 * ndims;
  if (data.size() < h.data_offset) {
    return Error(path, absl::StrCat("truncated header: ", data.size(), " bytes, ", ndims,
                                    " dimensions need ", h.data_offset));
  }
  for (size_t i = 0; i < ndims; ++i) h.dims.push_back(BigEndian32(data.data() + 4 + 4 * i));
  return h;
}

absl::Status CheckSize(const std::string& path, const std::vector<uint8_t>& data,
                       const IdxHeader& h, const char* what) {
  uint64_t want = 1;
  for (uint32_t d : h.dims) want *= d;
  const uint64_t have = data.size() - h.data_offset;
  if (have < want) {
    return Error(path, absl::StrCat("truncated: the header promises ", want, " bytes of ", what,
                                    " but the file holds ", have));
  }
  if (have > want) {
    return Error(path, absl::StrCat(have - want, " bytes after the ", want, " bytes of ", what,
                                    " the header promises"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ImageDataset> ReadIdx(const std::string& images_path,
                                     const std::string& labels_path) {
  ASSIGN_OR_RETURN(std::vector<uint8_t> data, ReadAll(images_path));
  ASSIGN_OR_RETURN(IdxHeader h, ParseHeader(images_path, data, kImagesMagic));
  const uint32_t n = h.dims[0], rows = h.dims[1], cols = h.dims[2];
  if (n == 0 || rows == 0 || cols == 0 || rows > 16384 || cols > 16384) {
    return Error(images_path, absl::StrCat("implausible dimensions ", n, " x ", rows, " x ", cols,
                                           " (images x rows x cols)"));
  }
  RETURN_IF_ERROR(CheckSize(images_path, data, h, "pixels"));
  ImageDataset ds;
  ds.source = images_path;
  ds.count = n;
  ds.height = static_cast<int>(rows);
  ds.width = static_cast<int>(cols);
  ds.channels = 1;
  data.erase(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(h.data_offset));
  ds.pixels = std::move(data);
  if (labels_path.empty()) return ds;

  ASSIGN_OR_RETURN(std::vector<uint8_t> ldata, ReadAll(labels_path));
  ASSIGN_OR_RETURN(IdxHeader lh, ParseHeader(labels_path, ldata, kLabelsMagic));
  RETURN_IF_ERROR(CheckSize(labels_path, ldata, lh, "labels"));
  if (lh.dims[0] != n) {
    return Error(labels_path, absl::StrCat("holds ", lh.dims[0], " labels but ", images_path,
                                           " holds ", n, " images"));
  }
  ds.labels.resize(n);
  int max_label = 0;
  for (uint32_t i = 0; i < n; ++i) {
    ds.labels[i] = ldata[lh.data_offset + i];
    max_label = std::max(max_label, ds.labels[i]);
  }
  ds.num_classes = max_label + 1;
  return ds;
}

absl::Status WriteIdx(const std::string& path, const std::vector<uint32_t>& dims,
                      const std::vector<uint8_t>& values, bool gzip) {
  std::vector<uint8_t> bytes;
  const uint32_t magic = 0x00000800u | static_cast<uint32_t>(dims.size());
  auto put = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) bytes.push_back(static_cast<uint8_t>(v >> s));
  };
  put(magic);
  for (uint32_t d : dims) put(d);
  bytes.insert(bytes.end(), values.begin(), values.end());
  gzFile f = gzopen(path.c_str(), gzip ? "wb" : "wbT");
  if (f == nullptr) return Error(path, absl::StrCat("cannot create: ", std::strerror(errno)));
  const int wrote = gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  const int closed = gzclose(f);
  if (wrote != static_cast<int>(bytes.size()) || closed != Z_OK) {
    return Error(path, "write failed");
  }
  return absl::OkStatus();
}

}  // namespace anvil
