// GlooStoreAdapter: gloo::rendezvous::Store over an anvil::Store, so Gloo's
// connection set-up runs through the project's store (one bootstrap path).
// Invariants: gloo's interface reports errors only by exception, so every
// failing anvil Status becomes a gloo::IoException carrying its message;
// get() blocks up to the adapter's timeout (gloo calls it without one).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gloo/rendezvous/store.h"
#include "runtime/store/store.h"

namespace anvil {

class GlooStoreAdapter : public gloo::rendezvous::Store {
 public:
  GlooStoreAdapter(std::shared_ptr<anvil::Store> store, absl::Duration timeout);

  void set(const std::string& key, const std::vector<char>& data) override;
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override;

 private:
  std::shared_ptr<anvil::Store> store_;
  absl::Duration timeout_;
};

}  // namespace anvil
