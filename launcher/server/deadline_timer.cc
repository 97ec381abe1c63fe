// DeadlineTimer: an ordered map of (time, id) -> callback drained by one thread.
#include "launcher/server/deadline_timer.h"

namespace anvil {

DeadlineTimer::DeadlineTimer() : thread_([this] { Loop(); }) {}

DeadlineTimer::~DeadlineTimer() { Stop(); }

DeadlineTimer::TimerId DeadlineTimer::Schedule(absl::Time when, std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return 0;
  TimerId id = next_id_++;
  queue_.emplace(std::make_pair(when, id), std::move(fn));
  when_.emplace(id, when);
  return id;
}

bool DeadlineTimer::Cancel(TimerId id) {
  absl::MutexLock lock(&mu_);
  auto it = when_.find(id);
  if (it == when_.end()) return false;
  queue_.erase(std::make_pair(it->second, id));
  when_.erase(it);
  return true;
}

void DeadlineTimer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    queue_.clear();
    when_.clear();
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void DeadlineTimer::Loop() {
  absl::MutexLock lock(&mu_);
  while (true) {
    // Wake on stop, or when the earliest deadline may have changed.
    absl::Time deadline = queue_.empty() ? absl::InfiniteFuture() : queue_.begin()->first.first;
    auto first = queue_.empty() ? std::pair<absl::Time, TimerId>{} : queue_.begin()->first;
    auto changed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (stopping_) return true;
      if (queue_.empty()) return first.second != 0;
      return queue_.begin()->first != first;
    };
    mu_.AwaitWithDeadline(absl::Condition(&changed), deadline);
    if (stopping_) return;
    absl::Time now = absl::Now();
    if (queue_.empty() || queue_.begin()->first.first > now) continue;
    auto it = queue_.begin();
    std::function<void()> fn = std::move(it->second);
    when_.erase(it->first.second);
    queue_.erase(it);
    mu_.Unlock();
    fn();
    mu_.Lock();
  }
}

}  // namespace anvil
