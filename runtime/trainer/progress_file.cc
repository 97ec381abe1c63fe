// The progress line's format; see progress_file.h.
#include "runtime/trainer/progress_file.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace anvil {

std::string ProgressSnapshot::Where() const {
  std::string coll;
  if (collectives == 0) {
    coll = "no collective issued yet";
  } else {
    const std::string entry = absl::StrFormat("#%d %s %d B of group '%s'", seq, op, bytes, group);
    coll = in_collective ? absl::StrCat("in collective ", entry)
                         : absl::StrCat("outside any collective (the last: ", entry, ")");
  }
  return absl::StrCat("step ", step, ", ", coll);
}

std::string FormatProgress(const ProgressSnapshot& s) {
  return absl::StrFormat(
      "pid=%d step=%d items_per_s=%.3f unit=%s collectives=%d in_collective=%d group=%s op=%s seq=%d "
      "bytes=%d checkpoint_step=%d checkpoint_unix_ms=%d written_unix_ms=%d\n",
      s.pid, s.step, s.items_per_s, s.unit.empty() ? "-" : s.unit, s.collectives, s.in_collective ? 1 : 0,
      s.group.empty() ? "-" : s.group, s.op.empty() ? "-" : s.op, s.seq, s.bytes, s.checkpoint_step,
      s.checkpoint_unix_ms, s.written_unix_ms);
}

absl::StatusOr<ProgressSnapshot> ParseProgress(const std::string& line) {
  ProgressSnapshot s;
  bool have_pid = false;
  for (absl::string_view kv : absl::StrSplit(line, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
    std::vector<absl::string_view> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
    if (p.size() != 2) continue;
    const absl::string_view k = p[0], v = p[1];
    const std::string text = v == "-" ? "" : std::string(v);
    int in = 0;
    if (k == "pid") {
      have_pid = absl::SimpleAtoi(v, &s.pid);
    } else if (k == "step") {
      (void)absl::SimpleAtoi(v, &s.step);
    } else if (k == "items_per_s") {
      (void)absl::SimpleAtod(v, &s.items_per_s);
    } else if (k == "unit") {
      s.unit = text;
    } else if (k == "collectives") {
      (void)absl::SimpleAtoi(v, &s.collectives);
    } else if (k == "in_collective") {
      s.in_collective = absl::SimpleAtoi(v, &in) && in != 0;
    } else if (k == "group") {
      s.group = text;
    } else if (k == "op") {
      s.op = text;
    } else if (k == "seq") {
      (void)absl::SimpleAtoi(v, &s.seq);
    } else if (k == "bytes") {
      (void)absl::SimpleAtoi(v, &s.bytes);
    } else if (k == "checkpoint_step") {
      (void)absl::SimpleAtoi(v, &s.checkpoint_step);
    } else if (k == "checkpoint_unix_ms") {
      (void)absl::SimpleAtoi(v, &s.checkpoint_unix_ms);
    } else if (k == "written_unix_ms") {
      (void)absl::SimpleAtoi(v, &s.written_unix_ms);
    }
  }
  if (!have_pid) return absl::NotFoundError("no progress line");
  return s;
}

absl::Status WriteProgressFile(const std::string& path, const ProgressSnapshot& s) {
  const std::string tmp = absl::StrCat(path, ".tmp");
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << FormatProgress(s);
    if (!out.flush()) return absl::UnavailableError(absl::StrCat("cannot write ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<ProgressSnapshot> ReadProgressFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("no progress file ", path));
  std::string line;
  std::getline(in, line);
  return ParseProgress(line);
}

}  // namespace anvil
