// CollectiveTrace and the process-wide current collective; see
// collective_trace.h.
#include "runtime/collectives/collective_trace.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace anvil {
namespace {

absl::Mutex g_current_mu(absl::kConstInit);
CollectiveProgress g_current ABSL_GUARDED_BY(g_current_mu);

std::string Bytes(uint64_t b) {
  if (b >= (uint64_t{1} << 20)) return absl::StrFormat("%.1f MB", static_cast<double>(b) / (1 << 20));
  if (b >= 1024) return absl::StrFormat("%.1f KB", static_cast<double>(b) / 1024);
  return absl::StrCat(b, " B");
}

}  // namespace

void CollectiveTrace::Enter(uint64_t seq, const char* op, uint64_t bytes) {
  {
    absl::MutexLock l(&mu_);
    ++issued_;
    recent_.push_back({seq, op, bytes});
    if (recent_.size() > kDepth) recent_.pop_front();
  }
  absl::MutexLock l(&g_current_mu);
  ++g_current.issued;
  g_current.inside = true;
  g_current.group = group_;
  g_current.op = op;
  g_current.seq = seq;
  g_current.bytes = bytes;
}

void CollectiveTrace::Exit() {
  absl::MutexLock l(&g_current_mu);
  g_current.inside = false;
}

std::vector<CollectiveEntry> CollectiveTrace::Recent() const {
  absl::MutexLock l(&mu_);
  return {recent_.begin(), recent_.end()};
}

std::string CollectiveTrace::Describe() const {
  const std::vector<CollectiveEntry> r = Recent();
  uint64_t issued;
  {
    absl::MutexLock l(&mu_);
    issued = issued_;
  }
  if (r.empty()) return absl::StrCat("collectives of group '", group_, "' on this rank: none issued");
  std::vector<std::string> last;
  for (size_t i = r.size() > 4 ? r.size() - 4 : 0; i < r.size(); ++i) last.push_back(FormatEntry(r[i]));
  return absl::StrFormat("collectives of group '%s' on this rank: %d issued, fingerprint %016x of #%d-#%d, last: %s",
                         group_, issued, TraceFingerprint(r), r.front().seq, r.back().seq,
                         absl::StrJoin(last, ", "));
}

uint64_t TraceFingerprint(const std::vector<CollectiveEntry>& entries) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](absl::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
  };
  for (const CollectiveEntry& e : entries) {
    mix(e.op);
    mix(absl::StrCat("/", e.bytes, ";"));
  }
  return h;
}

std::string EncodeTrace(const std::vector<CollectiveEntry>& entries) {
  std::vector<std::string> parts;
  for (const CollectiveEntry& e : entries) parts.push_back(absl::StrCat(e.seq, ":", e.op, ":", e.bytes));
  return absl::StrJoin(parts, ",");
}

std::vector<CollectiveEntry> DecodeTrace(absl::string_view text) {
  std::vector<CollectiveEntry> out;
  for (absl::string_view piece : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(piece, ':');
    CollectiveEntry e;
    if (f.size() != 3 || !absl::SimpleAtoi(f[0], &e.seq) || !absl::SimpleAtoi(f[2], &e.bytes)) continue;
    e.op = std::string(f[1]);
    out.push_back(std::move(e));
  }
  return out;
}

std::string FormatEntry(const CollectiveEntry& e) { return absl::StrCat("#", e.seq, " ", e.op, " ", Bytes(e.bytes)); }

std::string CompareTraces(const std::map<int, std::vector<CollectiveEntry>>& by_rank, int world) {
  std::vector<std::string> missing;
  for (int r = 0; r < world; ++r) {
    if (!by_rank.contains(r)) missing.push_back(absl::StrCat(r));
  }
  const std::string silent =
      missing.empty() ? ""
                      : absl::StrCat("; rank", missing.size() > 1 ? "s " : " ", absl::StrJoin(missing, ","),
                                     " reported no trace (not in a collective: hung elsewhere, or gone)");
  // The first sequence number at which two ranks' entries differ.
  std::map<uint64_t, std::map<int, const CollectiveEntry*>> by_seq;
  for (const auto& [rank, entries] : by_rank) {
    for (const CollectiveEntry& e : entries) by_seq[e.seq][rank] = &e;
  }
  for (const auto& [seq, at] : by_seq) {
    const auto& [r0, e0] = *at.begin();
    for (const auto& [r, e] : at) {
      if (!(*e == *e0)) {
        return absl::StrCat("collective sequence mismatch: ", FormatEntry(*e0), " on rank ", r0, " but ",
                            e->op, " ", Bytes(e->bytes), " on rank ", r, silent);
      }
    }
  }
  uint64_t lo = UINT64_MAX, hi = 0;
  int lo_rank = -1, hi_rank = -1;
  for (const auto& [rank, entries] : by_rank) {
    const uint64_t last = entries.empty() ? 0 : entries.back().seq;
    if (last < lo) {
      lo = last;
      lo_rank = rank;
    }
    if (last > hi || hi_rank < 0) {
      hi = last;
      hi_rank = rank;
    }
  }
  if (by_rank.size() > 1 && lo != hi) {
    return absl::StrCat("rank ", lo_rank, " is behind: its last collective is #", lo, ", rank ", hi_rank,
                        " is in #", hi, silent);
  }
  return absl::StrCat("the ", by_rank.size(), " reporting rank(s) issued the same collectives", silent);
}

CollectiveProgress CurrentCollective() {
  absl::MutexLock l(&g_current_mu);
  return g_current;
}

}  // namespace anvil
