#include "runtime/checkpoint/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "kernels/cpu/convert.h"

namespace anvil::ckpt {
namespace {

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppend(&out, "\\u00", c < 0x10 ? "0" : "", absl::Hex(static_cast<unsigned char>(c)));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

size_t DTypeBytes(const std::string& dt) {
  if (dt == "F32") return 4;
  if (dt == "F16" || dt == "BF16") return 2;
  return 0;
}

absl::StatusOr<uint64_t> NonNegativeInt(const google::protobuf::Value& v, const std::string& what) {
  if (v.kind_case() != google::protobuf::Value::kNumberValue || v.number_value() < 0 ||
      v.number_value() != std::floor(v.number_value())) {
    return absl::DataLossError(absl::StrCat(what, " is not a non-negative integer"));
  }
  return static_cast<uint64_t>(v.number_value());
}

}  // namespace

uint64_t SafetensorsTensor::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

absl::StatusOr<SafetensorsWriter> SafetensorsWriter::Create(
    const std::string& path, const std::vector<SafetensorsTensor>& tensors,
    const std::map<std::string, std::string>& metadata) {
  std::vector<SafetensorsTensor> laid = tensors;
  std::string json = "{";
  if (!metadata.empty()) {
    json += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      absl::StrAppend(&json, first ? "" : ",", JsonString(k), ":", JsonString(v));
      first = false;
    }
    json += "}";
  }
  uint64_t offset = 0;
  for (size_t i = 0; i < laid.size(); ++i) {
    SafetensorsTensor& t = laid[i];
    t.dtype = "F32";
    t.begin = offset;
    t.end = offset + t.numel() * 4;
    offset = t.end;
    absl::StrAppend(&json, (i == 0 && metadata.empty()) ? "" : ",", JsonString(t.name),
                    ":{\"dtype\":\"F32\",\"shape\":[", absl::StrJoin(t.shape, ","),
                    "],\"data_offsets\":[", t.begin, ",", t.end, "]}");
  }
  json += "}";
  while ((8 + json.size()) % 8 != 0) json += ' ';
  ASSIGN_OR_RETURN(FileWriter w, FileWriter::Create(path));
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((json.size() >> (8 * i)) & 0xff);
  RETURN_IF_ERROR(w.Write(len, 8));
  RETURN_IF_ERROR(w.Write(json.data(), json.size()));
  return SafetensorsWriter(std::move(w), std::move(laid));
}

absl::Status SafetensorsWriter::WriteNext(const float* data, uint64_t numel) {
  if (next_ >= tensors_.size()) return absl::FailedPreconditionError("all tensors already written");
  const SafetensorsTensor& t = tensors_[next_];
  if (numel != t.numel()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor ", t.name, " has ", t.numel(), " elements, got ", numel));
  }
  RETURN_IF_ERROR(writer_.Write(data, numel * 4));
  ++next_;
  return absl::OkStatus();
}

absl::Status SafetensorsWriter::Finish() {
  if (next_ != tensors_.size()) {
    return absl::FailedPreconditionError(
        absl::StrCat("only ", next_, " of ", tensors_.size(), " tensors written"));
  }
  return writer_.Finish().status();
}

const SafetensorsTensor* SafetensorsFile::Find(const std::string& name) const {
  for (const SafetensorsTensor& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

absl::StatusOr<SafetensorsFile> ReadSafetensorsHeader(const std::string& path) {
  ASSIGN_OR_RETURN(const int fd, OpenForRead(path));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return absl::InternalError(absl::StrCat("cannot stat ", path));
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  unsigned char len[8];
  absl::Status s = size < 8
                       ? absl::DataLossError(absl::StrCat(path, " is too short for safetensors"))
                       : PreadFull(fd, len, 8, 0, path);
  uint64_t n = 0;
  std::string json;
  if (s.ok()) {
    for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(len[i]) << (8 * i);
    if (n > size - 8 || n > (100u << 20)) {
      s = absl::DataLossError(absl::StrCat(path, ": header length ", n, " does not fit the file"));
    } else {
      json.resize(n);
      s = PreadFull(fd, json.data(), n, 8, path);
    }
  }
  ::close(fd);
  RETURN_IF_ERROR(s);

  google::protobuf::Struct root;
  auto parsed = google::protobuf::util::JsonStringToMessage(json, &root);
  if (!parsed.ok()) {
    return absl::DataLossError(absl::StrCat(path, ": header is not JSON: ", parsed.ToString()));
  }
  SafetensorsFile f;
  f.path = path;
  f.data_start = 8 + n;
  for (const auto& [name, value] : root.fields()) {
    if (name == "__metadata__") {
      for (const auto& [k, v] : value.struct_value().fields()) f.metadata[k] = v.string_value();
      continue;
    }
    const auto& fields = value.struct_value().fields();
    SafetensorsTensor t;
    t.name = name;
    auto dt = fields.find("dtype");
    auto shape = fields.find("shape");
    auto offs = fields.find("data_offsets");
    if (dt == fields.end() || shape == fields.end() || offs == fields.end() ||
        offs->second.list_value().values_size() != 2) {
      return absl::DataLossError(
          absl::StrCat(path, ": tensor ", name, " lacks dtype/shape/data_offsets"));
    }
    t.dtype = dt->second.string_value();
    for (const auto& d : shape->second.list_value().values()) {
      ASSIGN_OR_RETURN(const uint64_t v, NonNegativeInt(d, absl::StrCat(name, " shape")));
      t.shape.push_back(static_cast<int64_t>(v));
    }
    ASSIGN_OR_RETURN(t.begin,
                     NonNegativeInt(offs->second.list_value().values(0), name + " offset"));
    ASSIGN_OR_RETURN(t.end, NonNegativeInt(offs->second.list_value().values(1), name + " offset"));
    const size_t es = DTypeBytes(t.dtype);
    if (es != 0 && t.end - t.begin != t.numel() * es) {
      return absl::DataLossError(absl::StrCat(path, ": tensor ", name, " spans ", t.end - t.begin,
                                              " bytes for ", t.numel(), " ", t.dtype, " elements"));
    }
    f.tensors.push_back(std::move(t));
  }
  std::sort(
      f.tensors.begin(), f.tensors.end(),
      [](const SafetensorsTensor& a, const SafetensorsTensor& b) { return a.begin < b.begin; });
  uint64_t next = 0;
  for (const SafetensorsTensor& t : f.tensors) {
    if (t.begin != next || t.end < t.begin) {
      return absl::DataLossError(
          absl::StrCat(path, ": tensor ", t.name, " does not start where the previous ends"));
    }
    next = t.end;
  }
  if (f.data_start + next != size) {
    return absl::DataLossError(
        absl::StrCat(path, " is ", size, " bytes, its header describes ", f.data_start + next));
  }
  return f;
}

absl::Status ReadSafetensorsTensor(const SafetensorsFile& file, const SafetensorsTensor& t,
                                   float* dst) {
  const size_t es = DTypeBytes(t.dtype);
  if (es == 0) {
    return absl::InvalidArgumentError(absl::StrCat(file.path, ": tensor ", t.name, " has dtype ",
                                                   t.dtype, " (F32, F16 and BF16 are read)"));
  }
  ASSIGN_OR_RETURN(const int fd, OpenForRead(file.path));
  const uint64_t n = t.numel();
  absl::Status s;
  if (es == 4) {
    s = PreadFull(fd, dst, n * 4, file.data_start + t.begin, file.path);
  } else {
    std::vector<uint16_t> half(n);
    s = PreadFull(fd, half.data(), n * 2, file.data_start + t.begin, file.path);
    if (s.ok()) {
      for (uint64_t i = 0; i < n; ++i) {
        dst[i] = t.dtype == "BF16" ? kernels::BF16ToF32(half[i]) : kernels::F16ToF32(half[i]);
      }
    }
  }
  ::close(fd);
  return s;
}

}  // namespace anvil::ckpt
