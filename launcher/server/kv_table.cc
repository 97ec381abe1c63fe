// KvTable: a flat hash map plus an index key -> waiters. A write to key k
// re-checks only the waiters of k; callbacks are collected under the lock
// and run after it is released.
#include "launcher/server/kv_table.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace anvil {

using ReadyList = std::vector<std::pair<KvTable::WaitCallback, std::vector<std::string>>>;

namespace {
void RunReady(ReadyList& ready) {
  for (auto& [done, values] : ready) done(std::move(values));
}
}  // namespace

KvTable::KvTable(DeadlineTimer* timer, std::string name) : timer_(timer), name_(std::move(name)) {}

KvTable::~KvTable() { FailAll(absl::UnavailableError("store shutting down")); }

void KvTable::Set(const std::string& key, std::string value) {
  ReadyList ready;
  {
    absl::MutexLock lock(&mu_);
    data_[key] = std::move(value);
    CollectReady(key, ready);
  }
  RunReady(ready);
}

absl::StatusOr<int64_t> KvTable::Add(const std::string& key, int64_t delta) {
  ReadyList ready;
  int64_t result = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = data_.find(key);
    int64_t current = 0;
    if (it != data_.end() && !absl::SimpleAtoi(it->second, &current)) {
      return absl::InvalidArgumentError(
          absl::StrCat("Add on key '", key, "' which holds a non-integer value"));
    }
    result = current + delta;
    data_[key] = absl::StrCat(result);
    CollectReady(key, ready);
  }
  RunReady(ready);
  return result;
}

std::string KvTable::CompareSet(const std::string& key, const std::string& expected,
                                std::string desired) {
  ReadyList ready;
  std::string held;
  {
    absl::MutexLock lock(&mu_);
    auto it = data_.find(key);
    bool matches = it == data_.end() ? expected.empty() : it->second == expected;
    if (matches) {
      data_[key] = desired;
      held = std::move(desired);
      CollectReady(key, ready);
    } else {
      held = it == data_.end() ? std::string() : it->second;
    }
  }
  RunReady(ready);
  return held;
}

bool KvTable::Delete(const std::string& key) {
  absl::MutexLock lock(&mu_);
  return data_.erase(key) > 0;
}

void KvTable::MultiSet(absl::Span<const std::string> keys, absl::Span<const std::string> values) {
  ReadyList ready;
  {
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < keys.size(); ++i) data_[keys[i]] = values[i];
    for (const std::string& k : keys) CollectReady(k, ready);
  }
  RunReady(ready);
}

KvTable::WaitId KvTable::WaitFor(std::vector<std::string> keys, absl::Duration timeout,
                                 WaitCallback done) {
  std::vector<std::string> values;
  {
    absl::MutexLock lock(&mu_);
    bool all = true;
    values.reserve(keys.size());
    for (const std::string& k : keys) {
      auto it = data_.find(k);
      if (it == data_.end()) {
        all = false;
        break;
      }
      values.push_back(it->second);
    }
    if (!all) {
      WaitId id = next_id_++;
      for (const std::string& k : keys) by_key_[k].insert(id);
      Waiter& w = waiters_[id];
      w.keys = std::move(keys);
      w.done = std::move(done);
      w.timeout = timeout;
      // Scheduling under mu_ is safe: the timer never calls back inline.
      w.timer = timer_->Schedule(absl::Now() + timeout, [this, id] { OnDeadline(id); });
      return id;
    }
  }
  done(std::move(values));
  return 0;
}

void KvTable::CancelWait(WaitId id) {
  absl::MutexLock lock(&mu_);
  auto it = waiters_.find(id);
  if (it == waiters_.end()) return;
  timer_->Cancel(it->second.timer);
  RemoveWaiter(id, it->second);
  waiters_.erase(it);
}

void KvTable::FailAll(const absl::Status& status) {
  std::vector<WaitCallback> dones;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, w] : waiters_) {
      timer_->Cancel(w.timer);
      dones.push_back(std::move(w.done));
    }
    waiters_.clear();
    by_key_.clear();
  }
  for (WaitCallback& d : dones) d(status);
}

void KvTable::Clear() {
  absl::MutexLock lock(&mu_);
  data_.clear();
}

size_t KvTable::num_keys() {
  absl::MutexLock lock(&mu_);
  return data_.size();
}

size_t KvTable::num_waiters() {
  absl::MutexLock lock(&mu_);
  return waiters_.size();
}

void KvTable::CollectReady(const std::string& key, ReadyList& ready) {
  auto idx = by_key_.find(key);
  if (idx == by_key_.end()) return;
  std::vector<WaitId> done_ids;
  for (WaitId id : idx->second) {
    const Waiter& w = waiters_.at(id);
    bool all = true;
    for (const std::string& k : w.keys) {
      if (!data_.contains(k)) {
        all = false;
        break;
      }
    }
    if (all) done_ids.push_back(id);
  }
  for (WaitId id : done_ids) {
    auto it = waiters_.find(id);
    std::vector<std::string> values;
    values.reserve(it->second.keys.size());
    for (const std::string& k : it->second.keys) values.push_back(data_.at(k));
    timer_->Cancel(it->second.timer);
    ready.emplace_back(std::move(it->second.done), std::move(values));
    RemoveWaiter(id, it->second);
    waiters_.erase(it);
  }
}

void KvTable::RemoveWaiter(WaitId id, Waiter& w) {
  for (const std::string& k : w.keys) {
    auto idx = by_key_.find(k);
    if (idx == by_key_.end()) continue;
    idx->second.erase(id);
    if (idx->second.empty()) by_key_.erase(idx);
  }
}

void KvTable::OnDeadline(WaitId id) {
  WaitCallback done;
  std::vector<std::string> missing;
  size_t total = 0;
  absl::Duration timeout;
  {
    absl::MutexLock lock(&mu_);
    auto it = waiters_.find(id);
    if (it == waiters_.end()) return;
    total = it->second.keys.size();
    timeout = it->second.timeout;
    for (const std::string& k : it->second.keys) {
      if (!data_.contains(k)) missing.push_back(k);
    }
    done = std::move(it->second.done);
    RemoveWaiter(id, it->second);
    waiters_.erase(it);
  }
  constexpr size_t kMaxNamed = 10;
  std::string named = absl::StrJoin(missing.begin(),
                                    missing.begin() + std::min(missing.size(), kMaxNamed), ", ");
  if (missing.size() > kMaxNamed) absl::StrAppend(&named, ", ...");
  done(absl::DeadlineExceededError(absl::StrCat("timed out after ", absl::FormatDuration(timeout),
                                                " waiting for ", missing.size(), " of ", total,
                                                " key(s) in ", name_, ": ", named)));
}

}  // namespace anvil
