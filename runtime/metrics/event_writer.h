// EventFileWriter: a TensorBoard event file, events.out.tfevents.<unix
// seconds>.<host name>.<pid>, in a log directory. TensorBoard reads every
// file whose name contains "tfevents" in a directory (in name order, which
// is start order), so each process start writes its own file; a resumed run
// rewrites the steps after its checkpoint, and TensorBoard's reader drops
// the superseded points when it meets a step that goes back.
// Invariants: the first record is the Event {file_version: "brain.Event:2"}
// TensorBoard expects; every record is a serialized proto::tb::Event
// (proto/tensorboard_event.proto) framed as TFRecord; records reach the file
// no later than `flush_every` after they were written (checked when the
// next one is written), at Flush() and at destruction.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "proto/tensorboard_event.pb.h"
#include "runtime/metrics/metrics_sink.h"
#include "runtime/metrics/tfrecord.h"

namespace anvil::metrics {

// "events.out.tfevents.<unix_seconds>.<host>.<pid>".
std::string EventFileName(int64_t unix_seconds, const std::string& host, int pid);

class EventFileWriter : public MetricsSink {
 public:
  // Creates `dir` (and its parents) if needed and a new event file in it.
  static absl::StatusOr<std::unique_ptr<EventFileWriter>> Create(
      const std::string& dir, std::chrono::milliseconds flush_every = std::chrono::seconds(2));
  ~EventFileWriter() override;

  const std::string& path() const { return records_->path(); }

  absl::Status WriteEvent(const proto::tb::Event& event);
  // A grayscale (channels 1), RGB (3) or RGBA (4) PNG as an image summary.
  absl::Status WriteImage(int64_t step, double wall_time, const std::string& tag,
                          const std::string& png, int height, int width, int channels);

  // One Event per record, its scalars as simple_value summaries.
  absl::Status Write(const StepRecord& record) override;
  absl::Status Flush() override;

 private:
  EventFileWriter(std::unique_ptr<TfRecordWriter> records, std::chrono::milliseconds flush_every)
      : records_(std::move(records)), flush_every_(flush_every) {}

  std::unique_ptr<TfRecordWriter> records_;
  std::chrono::milliseconds flush_every_;
  std::chrono::steady_clock::time_point last_flush_ = std::chrono::steady_clock::now();
};

}  // namespace anvil::metrics
