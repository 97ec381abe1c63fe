#include "runtime/metrics/event_writer.h"

#include <unistd.h>

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace anvil::metrics {

std::string EventFileName(int64_t unix_seconds, const std::string& host, int pid) {
  return absl::StrCat("events.out.tfevents.", unix_seconds, ".", host, ".", pid);
}

absl::StatusOr<std::unique_ptr<EventFileWriter>> EventFileWriter::Create(
    const std::string& dir, std::chrono::milliseconds flush_every) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tensorboard_dir ", dir, ": cannot create: ", ec.message()));
  }
  char buf[256] = {};
  const std::string host = gethostname(buf, sizeof(buf) - 1) == 0 && buf[0] != '\0' ? buf : "unknown";
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const std::string base = (std::filesystem::path(dir) / EventFileName(now, host, getpid())).string();
  // The same second, host and pid twice (a writer re-created in-process):
  // a numbered sibling rather than a clobbered file.
  absl::StatusOr<std::unique_ptr<TfRecordWriter>> records = TfRecordWriter::Create(base);
  for (int i = 1; !records.ok() && absl::IsAlreadyExists(records.status()) && i < 100; ++i) {
    records = TfRecordWriter::Create(absl::StrCat(base, ".", i));
  }
  if (!records.ok()) {
    return absl::Status(records.status().code(),
                        absl::StrCat("--tensorboard_dir: ", records.status().message()));
  }
  std::unique_ptr<EventFileWriter> w(new EventFileWriter(std::move(*records), flush_every));
  proto::tb::Event version;
  version.set_wall_time(static_cast<double>(now));
  version.set_file_version("brain.Event:2");
  RETURN_IF_ERROR(w->WriteEvent(version));
  RETURN_IF_ERROR(w->Flush());
  return w;
}

EventFileWriter::~EventFileWriter() { (void)Flush(); }

absl::Status EventFileWriter::WriteEvent(const proto::tb::Event& event) {
  RETURN_IF_ERROR(records_->Write(event.SerializeAsString()));
  if (std::chrono::steady_clock::now() - last_flush_ >= flush_every_) return Flush();
  return absl::OkStatus();
}

absl::Status EventFileWriter::WriteImage(int64_t step, double wall_time, const std::string& tag,
                                         const std::string& png, int height, int width,
                                         int channels) {
  proto::tb::Event e;
  e.set_wall_time(wall_time);
  e.set_step(step);
  proto::tb::SummaryValue* v = e.mutable_summary()->add_value();
  v->set_tag(tag);
  proto::tb::SummaryImage* image = v->mutable_image();
  image->set_height(height);
  image->set_width(width);
  image->set_colorspace(channels);
  image->set_encoded_image_string(png);
  return WriteEvent(e);
}

absl::Status EventFileWriter::Write(const StepRecord& record) {
  proto::tb::Event e;
  e.set_wall_time(record.wall_time);
  e.set_step(record.step);
  proto::tb::Summary* summary = e.mutable_summary();
  for (const Scalar& s : record.scalars) {
    proto::tb::SummaryValue* v = summary->add_value();
    v->set_tag(s.tag);
    v->set_simple_value(static_cast<float>(s.value));
  }
  return WriteEvent(e);
}

absl::Status EventFileWriter::Flush() {
  last_flush_ = std::chrono::steady_clock::now();
  return records_->Flush();
}

}  // namespace anvil::metrics
