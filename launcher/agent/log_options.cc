// Parsing of --redirects / --tee / --local_ranks_filter; see log_options.h.
#include "launcher/agent/log_options.h"

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace anvil::launcher {

int StdSpec::For(int local_rank) const {
  auto it = per_rank.find(local_rank);
  return it == per_rank.end() ? all : it->second;
}

namespace {
absl::StatusOr<int> ParseMask(absl::string_view text, absl::string_view whole) {
  int m = -1;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &m) || m < 0 || m > 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad stream spec \"", whole, "\": expected 0-3 or local_rank:0-3,..."));
  }
  return m;
}
}  // namespace

absl::StatusOr<StdSpec> ParseStdSpec(absl::string_view text) {
  StdSpec spec;
  text = absl::StripAsciiWhitespace(text);
  if (text.empty()) return spec;
  if (text.find(':') == absl::string_view::npos) {
    absl::StatusOr<int> m = ParseMask(text, text);
    if (!m.ok()) return m.status();
    spec.all = *m;
    return spec;
  }
  for (absl::string_view piece : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    std::vector<absl::string_view> kv = absl::StrSplit(piece, ':');
    int rank = -1;
    if (kv.size() != 2 || !absl::SimpleAtoi(absl::StripAsciiWhitespace(kv[0]), &rank) || rank < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad stream spec \"", text, "\": expected 0-3 or local_rank:0-3,..."));
    }
    absl::StatusOr<int> m = ParseMask(kv[1], text);
    if (!m.ok()) return m.status();
    spec.per_rank[rank] = *m;
  }
  return spec;
}

absl::StatusOr<std::set<int>> ParseLocalRanksFilter(absl::string_view text) {
  std::set<int> out;
  for (absl::string_view piece : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int r = -1;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(piece), &r) || r < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad --local_ranks_filter \"", text, "\": expected e.g. 0,2"));
    }
    out.insert(r);
  }
  return out;
}

}  // namespace anvil::launcher
