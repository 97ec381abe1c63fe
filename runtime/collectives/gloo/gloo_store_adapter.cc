// GlooStoreAdapter implementation.
#include "runtime/collectives/gloo/gloo_store_adapter.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "gloo/common/error.h"

namespace anvil {
namespace {

[[noreturn]] void Throw(const absl::Status& st, const char* what) {
  throw gloo::IoException(absl::StrCat("anvil store ", what, ": ", st.ToString()));
}

}  // namespace

GlooStoreAdapter::GlooStoreAdapter(std::shared_ptr<anvil::Store> store, absl::Duration timeout)
    : store_(std::move(store)), timeout_(timeout) {}

void GlooStoreAdapter::set(const std::string& key, const std::vector<char>& data) {
  absl::Status st = store_->Set(key, std::string_view(data.data(), data.size()));
  if (!st.ok()) Throw(st, "set");
}

std::vector<char> GlooStoreAdapter::get(const std::string& key) {
  absl::StatusOr<std::string> v = store_->Get(key, timeout_);
  if (!v.ok()) Throw(v.status(), "get");
  return std::vector<char>(v->begin(), v->end());
}

void GlooStoreAdapter::wait(const std::vector<std::string>& keys) {
  absl::Status st = store_->Wait(keys, timeout_);
  if (!st.ok()) Throw(st, "wait");
}

void GlooStoreAdapter::wait(const std::vector<std::string>& keys,
                            const std::chrono::milliseconds& timeout) {
  absl::Status st = store_->Wait(keys, absl::FromChrono(timeout));
  if (!st.ok()) Throw(st, "wait");
}

}  // namespace anvil
