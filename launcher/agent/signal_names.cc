// Signal name parsing and printing; see signal_names.h.
#include "launcher/agent/signal_names.h"

#include <csignal>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace anvil::launcher {

absl::StatusOr<int> ParseSignal(absl::string_view name) {
  std::string upper = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(name));
  absl::string_view bare = upper;
  absl::ConsumePrefix(&bare, "SIG");
  int num = 0;
  if (absl::SimpleAtoi(bare, &num)) {
    if (num > 0 && num < NSIG) return num;
  } else {
    for (int s = 1; s < NSIG; ++s) {
      const char* abbrev = sigabbrev_np(s);
      if (abbrev != nullptr && bare == abbrev) return s;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown signal \"", name, "\""));
}

absl::StatusOr<std::vector<int>> ParseSignalList(absl::string_view list) {
  std::vector<int> out;
  for (absl::string_view piece : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    absl::StatusOr<int> s = ParseSignal(piece);
    if (!s.ok()) return s.status();
    if (*s == SIGKILL || *s == SIGSTOP) {
      return absl::InvalidArgumentError(absl::StrCat(SignalName(*s), " cannot be caught or forwarded"));
    }
    bool seen = false;
    for (int x : out) seen |= x == *s;
    if (!seen) out.push_back(*s);
  }
  return out;
}

std::string SignalName(int signo) {
  const char* abbrev = (signo > 0 && signo < NSIG) ? sigabbrev_np(signo) : nullptr;
  if (abbrev == nullptr) return absl::StrCat("signal ", signo);
  return absl::StrCat("SIG", abbrev);
}

std::vector<int> DefaultForwardSignals() { return {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}; }

}  // namespace anvil::launcher
