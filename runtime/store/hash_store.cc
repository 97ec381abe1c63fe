// HashStore implementation: one mutex, one condition variable signalled on
// every write; waiters re-check their keys on each wake-up.
#include "runtime/store/hash_store.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace anvil {

absl::Status HashStore::Set(std::string_view key, std::string_view value) {
  absl::MutexLock lock(&mu_);
  map_[std::string(key)] = std::string(value);
  changed_.SignalAll();
  return absl::OkStatus();
}

absl::Status HashStore::WaitLocked(absl::Span<const std::string> keys, absl::Time deadline) {
  while (true) {
    std::vector<std::string> missing;
    for (const std::string& k : keys) {
      if (!map_.contains(k)) missing.push_back(k);
    }
    if (missing.empty()) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("store wait timed out; missing keys: ", absl::StrJoin(missing, ", ")));
    }
    changed_.WaitWithDeadline(&mu_, deadline);
  }
}

absl::StatusOr<std::string> HashStore::Get(std::string_view key, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const std::string k(key);
  absl::Status st = WaitLocked(absl::MakeConstSpan(&k, 1), absl::Now() + timeout);
  if (!st.ok()) return st;
  return map_.at(k);
}

absl::StatusOr<int64_t> HashStore::Add(std::string_view key, int64_t delta) {
  absl::MutexLock lock(&mu_);
  int64_t value = 0;
  std::string k(key);
  auto it = map_.find(k);
  if (it != map_.end() && !absl::SimpleAtoi(it->second, &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("store Add: value of key '", k, "' is not an integer"));
  }
  value += delta;
  map_[k] = absl::StrCat(value);
  changed_.SignalAll();
  return value;
}

absl::StatusOr<std::string> HashStore::CompareSet(std::string_view key, std::string_view expected,
                                                  std::string_view desired) {
  absl::MutexLock lock(&mu_);
  std::string k(key);
  auto it = map_.find(k);
  if (it == map_.end()) {
    if (!expected.empty()) return std::string();
    map_[k] = std::string(desired);
    changed_.SignalAll();
    return std::string(desired);
  }
  if (it->second == expected) {
    it->second = std::string(desired);
    changed_.SignalAll();
  }
  return it->second;
}

absl::Status HashStore::Wait(absl::Span<const std::string> keys, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return WaitLocked(keys, absl::Now() + timeout);
}

absl::StatusOr<bool> HashStore::Delete(std::string_view key) {
  absl::MutexLock lock(&mu_);
  auto it = map_.find(std::string(key));
  if (it == map_.end()) return false;
  map_.erase(it);
  return true;
}

absl::StatusOr<std::vector<std::string>> HashStore::MultiGet(absl::Span<const std::string> keys,
                                                             absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  absl::Status st = WaitLocked(keys, absl::Now() + timeout);
  if (!st.ok()) return st;
  std::vector<std::string> out;
  out.reserve(keys.size());
  for (const std::string& k : keys) out.push_back(map_.at(k));
  return out;
}

absl::Status HashStore::MultiSet(absl::Span<const std::string> keys,
                                 absl::Span<const std::string> values) {
  if (keys.size() != values.size()) {
    return absl::InvalidArgumentError(absl::StrCat("store MultiSet: ", keys.size(), " keys but ",
                                                    values.size(), " values"));
  }
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < keys.size(); ++i) map_[keys[i]] = values[i];
  changed_.SignalAll();
  return absl::OkStatus();
}

size_t HashStore::size() const {
  absl::MutexLock lock(&mu_);
  return map_.size();
}

}  // namespace anvil
