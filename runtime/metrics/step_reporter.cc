#include "runtime/metrics/step_reporter.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "runtime/metrics/event_writer.h"
#include "runtime/metrics/jsonl_writer.h"

namespace anvil::metrics {

StepReporter::StepReporter(ReporterOptions options)
    : options_(std::move(options)),
      progress_(options_.total_steps),
      straggler_(options_.world_size, options_.straggler_factor,
                 options_.straggler_window / std::max(1, options_.straggler_every)) {}

absl::StatusOr<std::unique_ptr<StepReporter>> StepReporter::Create(ReporterOptions options) {
  if (!options.log) {
    options.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  }
  std::unique_ptr<StepReporter> r(new StepReporter(std::move(options)));
  const ReporterOptions& o = r->options_;
  if (o.rank == 0 && !o.tensorboard_dir.empty()) {
    ASSIGN_OR_RETURN(std::unique_ptr<EventFileWriter> w, EventFileWriter::Create(o.tensorboard_dir));
    r->events_ = w.get();
    r->sinks_.push_back(std::move(w));
  }
  if (o.rank == 0 && !o.metrics_jsonl.empty()) {
    ASSIGN_OR_RETURN(std::unique_ptr<JsonlWriter> w, JsonlWriter::Open(o.metrics_jsonl));
    r->sinks_.push_back(std::move(w));
  }
  return r;
}

absl::Status StepReporter::EndStep(int step, double step_ms, double busy_ms) {
  const auto now = std::chrono::steady_clock::now();
  progress_.Add(step, last_end_.has_value()
                          ? std::chrono::duration<double>(now - *last_end_).count()
                          : step_ms / 1e3);
  last_end_ = now;
  if (options_.world == nullptr || options_.world_size < 2 || options_.straggler_factor <= 0) {
    return absl::OkStatus();
  }
  busy_sum_ms_ += busy_ms;
  ++busy_steps_;
  if (step % std::max(1, options_.straggler_every) != 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(const std::vector<float> busy,
                   GatherFromRanks(options_.world, static_cast<float>(busy_sum_ms_ / busy_steps_)));
  busy_sum_ms_ = 0;
  busy_steps_ = 0;
  straggler_.Add(busy);
  if (options_.rank != 0) return absl::OkStatus();
  for (const SlowRank& s : straggler_.newly_slow()) {
    options_.log(absl::StrFormat(
        "straggler: rank %d is persistently slow: %.2fx the median of the other ranks over the "
        "last %d steps (%.1f ms vs %.1f ms of work per step, waits on collectives excluded; "
        "--straggler_factor %g)",
        s.rank, s.ratio, straggler_.window() * std::max(1, options_.straggler_every), s.ms,
        s.others_ms, straggler_.factor()));
  }
  return absl::OkStatus();
}

std::string StepReporter::PercentText() const {
  return absl::StrFormat(" (%d%%)", progress_.percent());
}

std::string StepReporter::LineSuffix() const {
  std::string s = absl::StrCat(" | ", progress_.EtaText());
  const Spread sp = straggler_.spread();
  if (sp.slowest >= 0) absl::StrAppendFormat(&s, " | slowest r%d %+.0f%%", sp.slowest, 100 * sp.lag);
  return s;
}

std::vector<Scalar> StepReporter::Scalars(const StepScalars& s) const {
  std::vector<Scalar> v = {{"train/loss", s.loss},
                           {"train/lr", s.lr},
                           {"train/grad_norm", s.grad_norm},
                           {absl::StrCat("train/", s.unit.empty() ? "items" : s.unit, "_per_s"),
                            s.items_per_s},
                           {"train/step_ms", s.step_ms}};
  if (s.mfu > 0) v.push_back({"train/mfu", s.mfu});
  if (s.loss_scale.has_value()) v.push_back({"train/loss_scale", *s.loss_scale});
  if (const Spread sp = straggler_.spread(); sp.slowest >= 0) {
    v.push_back({"train/straggler_lag", sp.lag});
  }
  if (s.eval_loss.has_value()) v.push_back({"eval/loss", *s.eval_loss});
  return v;
}

absl::Status StepReporter::Record(const StepScalars& s) {
  if (sinks_.empty()) return absl::OkStatus();
  StepRecord r;
  r.step = s.step;
  r.wall_time =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  r.scalars = Scalars(s);
  for (const auto& sink : sinks_) RETURN_IF_ERROR(sink->Write(r));
  return absl::OkStatus();
}

absl::Status StepReporter::WriteImage(int step, const std::string& tag, const std::string& png,
                                      int height, int width, int channels) {
  if (events_ == nullptr) return absl::OkStatus();
  const double wall =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  return events_->WriteImage(step, wall, tag, png, height, width, channels);
}

absl::Status StepReporter::Flush() {
  for (const auto& sink : sinks_) RETURN_IF_ERROR(sink->Flush());
  return absl::OkStatus();
}

}  // namespace anvil::metrics
