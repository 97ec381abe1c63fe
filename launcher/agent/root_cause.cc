// Root-cause reports; see root_cause.h.
#include "launcher/agent/root_cause.h"

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/exit_codes.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "launcher/agent/signal_names.h"

namespace anvil::launcher {
namespace {

constexpr size_t kMaxErrorFileBytes = 64 << 10;
constexpr int kMaxTracebackLines = 30;

const google::protobuf::Value* Field(const google::protobuf::Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  return it == s.fields().end() ? nullptr : &it->second;
}

std::string AsText(const google::protobuf::Value* v) {
  if (v == nullptr) return "";
  if (v->has_string_value()) return v->string_value();
  if (v->has_number_value()) return absl::StrCat(v->number_value());
  return "";
}

}  // namespace

void ReadErrorFile(FailureReport* r) {
  if (r->error_file.empty()) return;
  std::ifstream in(r->error_file);
  if (!in) return;
  std::string text(kMaxErrorFileBytes, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (absl::StripAsciiWhitespace(text).empty()) return;
  google::protobuf::Struct root;
  if (!google::protobuf::util::JsonStringToMessage(text, &root).ok()) {
    r->error_message = std::string(absl::StripAsciiWhitespace(text));
    return;
  }
  // torchelastic: {"message": {"message": "...", "extraInfo": {"py_callstack":
  // "...", "timestamp": "<unix seconds>"}}} or {"message": "..."}.
  const google::protobuf::Value* msg = Field(root, "message");
  if (msg != nullptr && msg->has_struct_value()) {
    const auto& inner = msg->struct_value();
    r->error_message = AsText(Field(inner, "message"));
    const google::protobuf::Value* extra = Field(inner, "extraInfo");
    if (extra != nullptr && extra->has_struct_value()) {
      r->error_traceback = AsText(Field(extra->struct_value(), "py_callstack"));
      double ts = 0;
      if (absl::SimpleAtod(AsText(Field(extra->struct_value(), "timestamp")), &ts) && ts > 0) {
        r->error_time = absl::FromUnixMicros(static_cast<int64_t>(ts * 1e6));
      }
    }
  } else {
    r->error_message = AsText(msg);
  }
  if (r->error_message.empty()) r->error_message = std::string(absl::StripAsciiWhitespace(text));
}

int PickRootCause(const std::vector<FailureReport>& failures) {
  int best = -1;
  for (int i = 0; i < static_cast<int>(failures.size()); ++i) {
    if (best < 0) {
      best = i;
      continue;
    }
    const FailureReport& a = failures[i];
    const FailureReport& b = failures[best];
    if (a.error_time != b.error_time ? a.error_time < b.error_time : a.exit_time < b.exit_time) best = i;
  }
  return best;
}

std::string DescribeExit(int exit_code, int signal) {
  if (signal > 0) return absl::StrCat("signal ", SignalName(signal), " (", signal, ")");
  if (exit_code < 0) return "unknown exit";
  // The codes anvil workers give a meaning (README: exit codes).
  switch (exit_code) {
    case 1: return "exit code 1 (runtime error)";
    case kExitBadInput: return "exit code 2 (bad input)";
    case kExitSaveFailed: return "exit code 3 (a checkpoint save failed)";
    case kExitPreempted: return absl::StrCat("exit code ", exit_code, " (stopped by a signal)");
    default: return absl::StrCat("exit code ", exit_code);
  }
}

std::string FormatFailureReport(const FailureReport& r, int total_failures) {
  std::string out = absl::StrCat("root cause: rank ", r.rank, " (local_rank ", r.local_rank, ") on ", r.host,
                                 ", pid ", r.pid, ", attempt ", r.attempt, ": ",
                                 DescribeExit(r.exit_code, r.signal));
  if (total_failures > 1) absl::StrAppend(&out, " (first of ", total_failures, " failed workers)");
  if (!r.error_message.empty()) {
    absl::StrAppend(&out, "\n  error_file: ", r.error_file, "\n  error: ", r.error_message);
  } else if (!r.stderr_tail.empty()) {
    // anvil workers report on stderr (one line for bad input); the error
    // file is torchelastic's channel and stays empty for them.
    absl::StrAppend(&out, "\n  error: ", r.stderr_tail.back(), " (last stderr line)");
  } else {
    absl::StrAppend(&out, "\n  error: (no error file and no stderr output)");
  }
  if (!r.error_traceback.empty()) {
    std::vector<absl::string_view> lines = absl::StrSplit(r.error_traceback, '\n', absl::SkipEmpty());
    size_t start = lines.size() > kMaxTracebackLines ? lines.size() - kMaxTracebackLines : 0;
    absl::StrAppend(&out, "\n  traceback:");
    for (size_t i = start; i < lines.size(); ++i) absl::StrAppend(&out, "\n    ", lines[i]);
  }
  if (!r.stderr_tail.empty()) {
    absl::StrAppend(&out, "\n  last ", r.stderr_tail.size(), " stderr lines:");
    for (const std::string& l : r.stderr_tail) absl::StrAppend(&out, "\n    ", l);
  } else {
    absl::StrAppend(&out, "\n  stderr: (empty)");
  }
  return out;
}

}  // namespace anvil::launcher
