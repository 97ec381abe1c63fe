#include "runtime/metrics/progress.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"

namespace anvil::metrics {

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long long s = std::llround(seconds);
  if (s < 60) return absl::StrFormat("%ds", s);
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  if (s < 86400) return absl::StrFormat("%dh%02dm", s / 3600, s % 3600 / 60);
  return absl::StrFormat("%dd%02dh", s / 86400, s % 86400 / 3600);
}

void Progress::Add(int step, double step_s) {
  step_ = step;
  ++added_;
  // Step 1 of this process seeds the estimate; step 2 replaces it (step 1
  // carries the set-up); later steps are averaged in.
  if (added_ <= 2) {
    smoothed_s_ = step_s;
  } else {
    smoothed_s_ += kAlpha * (step_s - smoothed_s_);
  }
}

int Progress::percent() const {
  if (total_ <= 0) return 100;
  return static_cast<int>(std::clamp<long long>(100LL * step_ / total_, 0, 100));
}

double Progress::eta_s() const { return std::max(0, total_ - step_) * smoothed_s_; }

std::string Progress::EtaText() const {
  return added_ == 0 ? "eta ?" : "eta " + FormatDuration(eta_s());
}

}  // namespace anvil::metrics
