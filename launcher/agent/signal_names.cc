// Signal lists; see signal_names.h.
#include "launcher/agent/signal_names.h"

#include <csignal>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace anvil::launcher {

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

std::vector<int> DefaultForwardSignals() { return {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}; }

}  // namespace anvil::launcher
