// Signal names both ways: "TERM" / "SIGTERM" / "term" / "15" -> 15, and
// 15 -> "SIGTERM". The one parser of the project: the launcher's
// --forward_signals, train's --save_signal, and every report that names a
// signal use it.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace anvil {

// Any name the C library knows (with or without "SIG", any case) or a
// number in [1, NSIG). InvalidArgument: `unknown signal "<name>"`.
absl::StatusOr<int> ParseSignal(absl::string_view name);
std::string SignalName(int signo);  // "SIGTERM"; "signal 99" when unknown

}  // namespace anvil
