// The run-config schema as data: TrainConfig's leaf fields read through the
// descriptor, each with the FieldSpec it declares in proto/config.proto
// (default, help, flag name and aliases, rank and resume policy).
//
// This is the one place defaults live: DefaultTrainConfig() sets every leaf
// to its declared default, and `train`'s flags, config files (merged over
// it) and library callers all start from it. Rank agreement
// (runtime/trainer/distributed.cc) and resume compatibility
// (runtime/checkpoint/config_compat.cc) iterate Leaves() and read each
// field's policy.
// Invariants: Leaves() lists every non-message field of TrainConfig and its
// sub-messages, in declaration order (sub-message fields in place of the
// message); flag names and aliases are unique (tests/config/schema_test.cc).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "proto/config.pb.h"
#include "proto/options.pb.h"

namespace anvil {

// One leaf field of TrainConfig and the message fields leading to it.
struct ConfigLeaf {
  // Message fields from TrainConfig down, then the leaf (path.back()).
  std::vector<const google::protobuf::FieldDescriptor*> path;

  const google::protobuf::FieldDescriptor* field() const { return path.back(); }
  const proto::FieldSpec& spec() const;
  // The flag's name (spec.flag, else the field's name), without dashes.
  std::string flag() const;
  // The message it belongs to, for --help: "model", "data", "optim" or "run".
  std::string group() const;
};

// Every leaf of TrainConfig, in declaration order.
const std::vector<ConfigLeaf>& ConfigLeaves();

// The leaf a flag name or alias names (dashes read as underscores), or null.
const ConfigLeaf* FindConfigLeaf(absl::string_view flag_name);

// Sets the leaf from flag-style text ("4", "3e-3", "true", "gpt"). Errors
// name the flag: "--lr: cannot parse 'fast' as float".
absl::Status SetConfigLeaf(proto::TrainConfig* config, const ConfigLeaf& leaf,
                           absl::string_view text);

// Whether the leaf (and every message above it) is set in `config`.
bool HasConfigLeaf(const proto::TrainConfig& config, const ConfigLeaf& leaf);

// The leaf's value in text format; an unset leaf reads as its default (so a
// config saved before a field existed compares equal to the default, which
// is what that config ran with).
std::string EffectiveValueText(const proto::TrainConfig& config, const ConfigLeaf& leaf);

// Every leaf set to its declared default; errors name a default that does not
// parse (the schema test keeps that from happening).
absl::StatusOr<proto::TrainConfig> SchemaDefaults();

// SchemaDefaults(), built once. The starting point of every config.
const proto::TrainConfig& DefaultTrainConfig();

}  // namespace anvil
