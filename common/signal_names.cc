// Signal name parsing and printing over the C library's table
// (sigabbrev_np); see signal_names.h.
#include "common/signal_names.h"

#include <csignal>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace anvil {

absl::StatusOr<int> ParseSignal(absl::string_view name) {
  const std::string upper = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(name));
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

std::string SignalName(int signo) {
  const char* abbrev = (signo > 0 && signo < NSIG) ? sigabbrev_np(signo) : nullptr;
  if (abbrev == nullptr) return absl::StrCat("signal ", signo);
  return absl::StrCat("SIG", abbrev);
}

}  // namespace anvil
