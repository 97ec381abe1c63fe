#include "runtime/metrics/jsonl_writer.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"

namespace anvil::metrics {
namespace {

void AppendNumber(std::string* out, double v) {
  if (!std::isfinite(v)) {
    out->append("null");
    return;
  }
  // %.9g round-trips a float and keeps a double's useful digits short.
  absl::StrAppendFormat(out, "%.9g", v);
}

// Tags are ours (letters, digits, '_', '/'), but escape anyway so a line
// always parses.
void AppendString(std::string* out, const std::string& s) {
  out->push_back('"');
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(out, "\\u%04x", c);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

}  // namespace

std::string JsonKey(const std::string& tag) {
  std::string key = absl::StartsWith(tag, "train/") ? tag.substr(6) : tag;
  return absl::StrReplaceAll(key, {{"/", "_"}});
}

std::string JsonLine(const StepRecord& record) {
  std::string out = absl::StrFormat("{\"step\":%d,\"time\":%.3f", record.step, record.wall_time);
  for (const Scalar& s : record.scalars) {
    out.push_back(',');
    AppendString(&out, JsonKey(s.tag));
    out.push_back(':');
    AppendNumber(&out, s.value);
  }
  out.push_back('}');
  return out;
}

absl::StatusOr<std::unique_ptr<JsonlWriter>> JsonlWriter::Open(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  std::FILE* f = ec ? nullptr : std::fopen(path.c_str(), "ab");
  if (f == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--metrics_jsonl ", path, ": cannot open: ", ec ? ec.message() : std::strerror(errno)));
  }
  return std::unique_ptr<JsonlWriter>(new JsonlWriter(path, f));
}

JsonlWriter::~JsonlWriter() { std::fclose(file_); }

absl::Status JsonlWriter::Write(const StepRecord& record) {
  const std::string line = JsonLine(record) + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size()) {
    return absl::DataLossError(
        absl::StrCat("--metrics_jsonl ", path_, ": cannot write: ", std::strerror(errno)));
  }
  return Flush();
}

absl::Status JsonlWriter::Flush() {
  if (std::fflush(file_) != 0) {
    return absl::DataLossError(
        absl::StrCat("--metrics_jsonl ", path_, ": cannot write: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace anvil::metrics
