// The progress watch and hang rule; see progress_watch.h.
#include "launcher/agent/progress_watch.h"

#include "absl/strings/str_cat.h"

namespace anvil::launcher {

void ProgressWatch::Reset(std::vector<WatchedRank> ranks, absl::Time now) {
  ranks_.clear();
  for (WatchedRank& w : ranks) {
    RankProgress p;
    p.who = std::move(w);
    p.last_change = now;
    p.last_heartbeat = now;
    ranks_.push_back(std::move(p));
  }
}

void ProgressWatch::Poll(absl::Time now) {
  for (RankProgress& p : ranks_) {
    absl::StatusOr<ProgressSnapshot> s = ReadProgressFile(p.who.path);
    if (!s.ok()) continue;
    if (!p.last.has_value() || s->written_unix_ms != p.last->written_unix_ms) p.last_heartbeat = now;
    if (!p.last.has_value() || !s->SameProgress(*p.last)) p.last_change = now;
    p.last = *s;
  }
}

std::optional<std::string> ProgressWatch::CheckHang(absl::Time now) const {
  if (timeout_ <= absl::ZeroDuration()) return std::nullopt;
  const RankProgress* worst = nullptr;
  auto rank_order = [](const RankProgress& p) {
    // Outside a collective first, then fewest collectives begun.
    return std::make_pair(p.last->in_collective ? 1 : 0, p.last->collectives);
  };
  for (const RankProgress& p : ranks_) {
    // Armed at the rank's first completed step: start-up (connecting,
    // loading a checkpoint, measuring the GEMM peak) has no collective
    // cadence and is bounded by train's own --dist_timeout_s.
    if (!p.last.has_value() || p.last->step == 0) continue;
    const absl::Duration limit = p.last->in_collective ? timeout_ * 1.5 : timeout_;
    if (now - p.last_change < limit) continue;
    if (worst == nullptr || rank_order(p) < rank_order(*worst)) worst = &p;
  }
  if (worst == nullptr) return std::nullopt;
  return absl::StrCat("rank ", worst->who.rank, " (local rank ", worst->who.local_rank, ", pid ", worst->last->pid,
                      ") made no progress for ", absl::FormatDuration(absl::Trunc(now - worst->last_change, absl::Milliseconds(100))),
                      " (--hang_timeout ", absl::FormatDuration(timeout_), "): ", worst->last->Where());
}

}  // namespace anvil::launcher
