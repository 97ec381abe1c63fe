// The launcher's signal lists (--forward_signals) over the project's one
// signal-name parser, common/signal_names.h (ParseSignal, SignalName, which
// code in anvil::launcher calls unqualified).
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/signal_names.h"

namespace anvil::launcher {

// "TERM,INT,USR1" -> {15, 2, 10}; duplicates removed, order kept.
absl::StatusOr<std::vector<int>> ParseSignalList(absl::string_view list);
std::vector<int> DefaultForwardSignals();  // TERM INT HUP USR1 USR2

}  // namespace anvil::launcher
