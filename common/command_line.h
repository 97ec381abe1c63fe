// Strict command-line checking for the binaries that parse Abseil flags.
//
// absl::ParseCommandLine exits 1 on an unknown flag or a value that does not
// parse; this project's exit code for bad input is 2 with one line naming
// the flag. CheckCommandLine walks argv the way Abseil does (--name=value,
// --name value, -name, --bool, --nobool, everything after "--" positional)
// and reports the first problem; main then calls absl::ParseCommandLine,
// which can no longer fail. Positional arguments are returned so that a
// program that takes none can refuse a stray one.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace anvil {

// The positional arguments of argv (argv[0] excluded), or InvalidArgument
// naming the first unknown flag, missing value or unparsable value.
// Parsing a value sets the flag, as absl::ParseCommandLine will again.
absl::StatusOr<std::vector<std::string>> CheckCommandLine(int argc, char** argv);

}  // namespace anvil
