#include "runtime/metrics/straggler.h"

#include <algorithm>

#include "common/status_macros.h"

namespace anvil::metrics {

absl::StatusOr<std::vector<float>> GatherFromRanks(ProcessGroup* group, float value) {
  std::vector<float> all(static_cast<size_t>(group->size()), 0.0f);
  all[static_cast<size_t>(group->rank())] = value;
  RETURN_IF_ERROR(group->AllGather(all.data(), 1, {})->Wait());
  return all;
}

StragglerDetector::StragglerDetector(int world_size, double factor, int window)
    : world_(world_size),
      factor_(factor),
      window_(std::max(1, window)),
      ring_(static_cast<size_t>(window_), std::vector<float>(static_cast<size_t>(world_size))),
      sums_(static_cast<size_t>(world_size), 0.0),
      flagged_(static_cast<size_t>(world_size), false) {}

void StragglerDetector::Add(const std::vector<float>& busy_ms) {
  newly_slow_.clear();
  if (static_cast<int>(busy_ms.size()) != world_ || world_ < 2) return;
  std::vector<float>& slot = ring_[next_];
  for (int r = 0; r < world_; ++r) {
    if (filled_ == ring_.size()) sums_[r] -= slot[r];  // the oldest step leaves the window
    slot[r] = busy_ms[r];
    sums_[r] += busy_ms[r];
  }
  next_ = (next_ + 1) % ring_.size();
  filled_ = std::min(filled_ + 1, ring_.size());
  if (filled_ < ring_.size() || factor_ <= 0) return;
  for (int r = 0; r < world_; ++r) {
    const double others = MedianOfOthers(r);
    const double ratio = others > 0 ? Mean(r) / others : 0;
    if (ratio >= factor_ && !flagged_[r]) newly_slow_.push_back({r, ratio, Mean(r), others});
    flagged_[r] = ratio >= factor_;
  }
}

double StragglerDetector::Mean(int rank) const {
  return filled_ == 0 ? 0 : sums_[rank] / static_cast<double>(filled_);
}

double StragglerDetector::MedianOfOthers(int except) const {
  std::vector<double> m;
  m.reserve(static_cast<size_t>(world_));
  for (int r = 0; r < world_; ++r) {
    if (r != except) m.push_back(Mean(r));
  }
  if (m.empty()) return 0;
  std::sort(m.begin(), m.end());
  const size_t h = m.size() / 2;
  return m.size() % 2 == 1 ? m[h] : 0.5 * (m[h - 1] + m[h]);
}

Spread StragglerDetector::spread() const {
  Spread s;
  if (filled_ == 0 || world_ < 2) return s;
  s.slowest = 0;
  for (int r = 1; r < world_; ++r) {
    if (Mean(r) > Mean(s.slowest)) s.slowest = r;
  }
  s.slowest_ms = Mean(s.slowest);
  s.others_ms = MedianOfOthers(s.slowest);
  s.lag = s.others_ms > 0 ? s.slowest_ms / s.others_ms - 1 : 0;
  return s;
}

}  // namespace anvil::metrics
