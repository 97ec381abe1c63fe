// `train`'s command line, generated from the config schema: every leaf field
// of TrainConfig is a flag (--n_layer, --model, ...; its name, aliases and
// help from the field's FieldSpec in proto/config.proto), plus the few flags
// that are not config (--config, --print_config, --dist_timeout_s, --help).
//
// Syntax, as Abseil and the launcher take it: --name=value or --name value,
// -name works like --name, dashes or underscores (--checkpoint-dir ==
// --checkpoint_dir); bool flags take --x, --x=true|false, --nox; "--" ends
// the flags. Anything positional is refused: train takes only flags.
// Invariants: a parse error is one line naming the flag (exit 2 in main);
// TrainArgs.flags holds exactly the fields the command line named, so
// merging it over a config keeps that config's other values.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/config.pb.h"

namespace anvil {

struct TrainArgs {
  proto::TrainConfig flags;  // only the fields named on the command line
  std::string config_path;   // --config
  bool print_config = false;
  int dist_timeout_s = 300;
  bool help = false;  // --help / -h
};

// `args` excludes argv[0].
absl::StatusOr<TrainArgs> ParseTrainArgs(const std::vector<std::string>& args);

// The resolved config, lowest precedence first: DefaultTrainConfig(), the
// --config file, the flags the command line names.
absl::StatusOr<proto::TrainConfig> ResolveTrainConfig(const TrainArgs& args);

// --help: every flag grouped by message, with its default and help.
std::string TrainUsage();

}  // namespace anvil
