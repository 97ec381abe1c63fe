// Signal names both ways: "TERM" / "SIGTERM" / "15" -> 15, and 15 -> "SIGTERM".
// Used by the CLI (--forward_signals) and by root-cause reports.
#pragma once

#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"

namespace anvil::launcher {

absl::StatusOr<int> ParseSignal(absl::string_view name);
// "TERM,INT,USR1" -> {15, 2, 10}; duplicates removed, order kept.
absl::StatusOr<std::vector<int>> ParseSignalList(absl::string_view list);
std::string SignalName(int signo);  // "SIGTERM"; "signal 99" when unknown
std::vector<int> DefaultForwardSignals();  // TERM INT HUP USR1 USR2

}  // namespace anvil::launcher
