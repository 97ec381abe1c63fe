// PrefixStore: a Store view that puts every key under "<prefix>/", so each
// process group (and each sub-group) bootstraps in its own namespace of one
// shared store.
// Invariants: key k is stored in the base store as prefix + "/" + k; error
// messages from the base store are passed through unchanged (they name the
// full, prefixed keys); the base store is shared, never owned exclusively,
// and must be thread-safe if the PrefixStore is used from several threads.
// Prefix stores nest: PrefixStore("b", PrefixStore("a", s)) writes "a/b/k".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "runtime/store/store.h"

namespace anvil {

class PrefixStore : public Store {
 public:
  PrefixStore(std::string prefix, std::shared_ptr<Store> base);

  absl::Status Set(std::string_view key, std::string_view value) override;
  absl::StatusOr<std::string> Get(std::string_view key, absl::Duration timeout) override;
  absl::StatusOr<int64_t> Add(std::string_view key, int64_t delta) override;
  absl::StatusOr<std::string> CompareSet(std::string_view key, std::string_view expected,
                                         std::string_view desired) override;
  absl::Status Wait(absl::Span<const std::string> keys, absl::Duration timeout) override;
  absl::StatusOr<bool> Delete(std::string_view key) override;
  absl::StatusOr<std::vector<std::string>> MultiGet(absl::Span<const std::string> keys,
                                                    absl::Duration timeout) override;
  absl::Status MultiSet(absl::Span<const std::string> keys,
                        absl::Span<const std::string> values) override;

  const std::string& prefix() const { return prefix_; }
  const std::shared_ptr<Store>& base() const { return base_; }

 private:
  std::string Key(std::string_view key) const;
  std::vector<std::string> Keys(absl::Span<const std::string> keys) const;

  const std::string prefix_;
  const std::shared_ptr<Store> base_;
};

}  // namespace anvil
