// Store: the key-value contract every rank bootstraps through.
// Implementations: HashStore (in-process, tests), PrefixStore (namespacing,
// one per process group), GrpcStore (client of the launcher's store service).
// Invariants: keys and values are byte strings; Get/Wait block until the key
// exists or the timeout elapses (DeadlineExceeded naming the missing keys);
// Add on a missing key starts from 0; values written by Add are decimal text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace anvil {

class Store {
 public:
  virtual ~Store() = default;

  virtual absl::Status Set(std::string_view key, std::string_view value) = 0;
  // Blocks until `key` exists (or `timeout` passes) and returns its value.
  virtual absl::StatusOr<std::string> Get(std::string_view key, absl::Duration timeout) = 0;
  // Atomically adds `delta` to the integer at `key`; returns the new value.
  virtual absl::StatusOr<int64_t> Add(std::string_view key, int64_t delta) = 0;
  // Sets `key` to `desired` if its value equals `expected` (a missing key
  // matches an empty `expected`). Returns the value held after the call.
  virtual absl::StatusOr<std::string> CompareSet(std::string_view key, std::string_view expected,
                                                 std::string_view desired) = 0;
  // Blocks until every key exists or `timeout` passes.
  virtual absl::Status Wait(absl::Span<const std::string> keys, absl::Duration timeout) = 0;
  // Returns true when the key existed.
  virtual absl::StatusOr<bool> Delete(std::string_view key) = 0;
  virtual absl::StatusOr<std::vector<std::string>> MultiGet(absl::Span<const std::string> keys,
                                                            absl::Duration timeout) = 0;
  virtual absl::Status MultiSet(absl::Span<const std::string> keys,
                                absl::Span<const std::string> values) = 0;
};

}  // namespace anvil
