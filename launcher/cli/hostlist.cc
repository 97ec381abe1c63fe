// Slurm hostlist expansion; see hostlist.h for the grammar and invariants.
#include "launcher/cli/hostlist.h"

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace anvil::launcher {
namespace {

absl::Status Bad(absl::string_view hostlist, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("bad hostlist \"", hostlist, "\": ", why));
}

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Expands the inside of one bracket group, "01-04,07", into its strings.
absl::StatusOr<std::vector<std::string>> ExpandRanges(absl::string_view whole,
                                                      absl::string_view body) {
  std::vector<std::string> out;
  if (body.empty()) return Bad(whole, "empty []");
  for (absl::string_view piece : absl::StrSplit(body, ',')) {
    std::vector<absl::string_view> bounds = absl::StrSplit(piece, absl::MaxSplits('-', 1));
    if (bounds.size() == 1) {
      if (!AllDigits(bounds[0])) return Bad(whole, absl::StrCat("\"", piece, "\" is not a number"));
      out.emplace_back(bounds[0]);
      continue;
    }
    if (!AllDigits(bounds[0]) || !AllDigits(bounds[1])) {
      return Bad(whole, absl::StrCat("\"", piece, "\" is not a range lo-hi"));
    }
    uint64_t lo = 0, hi = 0;
    if (!absl::SimpleAtoi(bounds[0], &lo) || !absl::SimpleAtoi(bounds[1], &hi)) {
      return Bad(whole, absl::StrCat("\"", piece, "\" is out of range"));
    }
    if (lo > hi) return Bad(whole, absl::StrCat("range \"", piece, "\" runs backwards"));
    if (hi - lo >= kMaxHostlistHosts) return Bad(whole, "expands to too many hosts");
    const size_t width = bounds[0].size();
    for (uint64_t v = lo; v <= hi; ++v) {
      std::string digits = absl::StrCat(v);
      if (digits.size() < width) digits.insert(0, width - digits.size(), '0');
      out.push_back(std::move(digits));
    }
  }
  return out;
}

// Expands one top-level entry such as "rack[1-2]-n[01-03]" and appends it.
absl::Status ExpandEntry(absl::string_view whole, absl::string_view entry,
                         std::vector<std::string>* hosts) {
  std::vector<std::string> partial = {""};
  size_t i = 0;
  while (i < entry.size()) {
    const size_t open = entry.find('[', i);
    const size_t close_before = entry.find(']', i);
    if (close_before != absl::string_view::npos &&
        (open == absl::string_view::npos || close_before < open)) {
      return Bad(whole, "unmatched ']'");
    }
    absl::string_view literal = entry.substr(i, open == absl::string_view::npos ? entry.npos : open - i);
    for (std::string& p : partial) p.append(literal.data(), literal.size());
    if (open == absl::string_view::npos) break;
    const size_t close = entry.find(']', open);
    if (close == absl::string_view::npos) return Bad(whole, "unmatched '['");
    absl::string_view body = entry.substr(open + 1, close - open - 1);
    if (body.find('[') != absl::string_view::npos) return Bad(whole, "nested '['");
    ASSIGN_OR_RETURN(std::vector<std::string> values, ExpandRanges(whole, body));
    if (partial.size() * values.size() + hosts->size() > kMaxHostlistHosts) {
      return Bad(whole, "expands to too many hosts");
    }
    std::vector<std::string> next;
    next.reserve(partial.size() * values.size());
    for (const std::string& p : partial) {
      for (const std::string& v : values) next.push_back(p + v);
    }
    partial = std::move(next);
    i = close + 1;
  }
  for (std::string& p : partial) hosts->push_back(std::move(p));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ExpandHostlist(absl::string_view hostlist) {
  absl::string_view text = absl::StripAsciiWhitespace(hostlist);
  if (text.empty()) return Bad(hostlist, "empty");
  std::vector<std::string> hosts;
  // Split on commas outside brackets only: "n[1,3],m" is two entries.
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    const char c = i < text.size() ? text[i] : ',';
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (depth < 0) return Bad(hostlist, "unmatched ']'");
    if (c != ',' || depth > 0) continue;
    absl::string_view entry = absl::StripAsciiWhitespace(text.substr(start, i - start));
    if (entry.empty()) return Bad(hostlist, "empty host name");
    RETURN_IF_ERROR(ExpandEntry(hostlist, entry, &hosts));
    start = i + 1;
  }
  if (depth != 0) return Bad(hostlist, "unmatched '['");
  return hosts;
}

}  // namespace anvil::launcher
