// JsonlWriter: a metrics file of one JSON object per line, one line per
// optimizer step: {"step":120,"time":1765000000.123,"loss":2.31,...}.
// Keys are the record's tags without "train/", other slashes as
// underscores ("train/loss" -> "loss", "eval/loss" -> "eval_loss").
// Invariants: the file is opened for appending, so a restarted run adds its
// lines after the earlier ones (a resumed run repeats the steps after its
// checkpoint; the later line of a step is the current one); each line is
// written and flushed whole; a non-finite value is written as null (JSON
// has no NaN or Infinity), so every line parses.
#pragma once

#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/metrics/metrics_sink.h"

namespace anvil::metrics {

// "train/loss" -> "loss", "eval/loss" -> "eval_loss".
std::string JsonKey(const std::string& tag);
// The line for `record`, without its newline.
std::string JsonLine(const StepRecord& record);

class JsonlWriter : public MetricsSink {
 public:
  // Creates the parent directory if needed.
  static absl::StatusOr<std::unique_ptr<JsonlWriter>> Open(const std::string& path);
  ~JsonlWriter() override;
  JsonlWriter(const JsonlWriter&) = delete;
  JsonlWriter& operator=(const JsonlWriter&) = delete;

  absl::Status Write(const StepRecord& record) override;
  absl::Status Flush() override;

 private:
  JsonlWriter(std::string path, std::FILE* f) : path_(std::move(path)), file_(f) {}
  std::string path_;
  std::FILE* file_;
};

}  // namespace anvil::metrics
