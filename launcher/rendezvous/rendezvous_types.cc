// Printing of rendezvous rounds and events (the rank table the launcher
// shows once per round, one-line event descriptions for logs).
#include "launcher/rendezvous/rendezvous_types.h"

#include "absl/strings/str_cat.h"

namespace anvil {
namespace {

std::string Range(int first, int count) {
  if (count <= 1) return absl::StrCat(first);
  return absl::StrCat(first, "-", first + count - 1);
}

}  // namespace

const char* RendezvousEventTypeName(RendezvousEventType type) {
  switch (type) {
    case RendezvousEventType::kSnapshot:
      return "snapshot";
    case RendezvousEventType::kRoundComplete:
      return "round_complete";
    case RendezvousEventType::kNodeWaiting:
      return "node_waiting";
    case RendezvousEventType::kNodeDead:
      return "node_dead";
    case RendezvousEventType::kNodeLeft:
      return "node_left";
    case RendezvousEventType::kRoundReopened:
      return "round_reopened";
    case RendezvousEventType::kServerShutdown:
      return "server_shutdown";
    case RendezvousEventType::kUnknown:
      break;
  }
  return "unknown";
}

std::string FormatRankTable(const RendezvousRound& r) {
  std::string s = absl::StrCat("rendezvous run '", r.run_id, "' round ", r.round, ": ",
                               r.group_world_size, " node(s), world size ", r.world_size,
                               ", master ", r.master_addr, ":", r.master_port, "\n");
  for (const RankTableEntry& e : r.rank_table) {
    absl::StrAppend(&s, "  group_rank ", e.group_rank, "  host ", e.host, "  addr ", e.local_addr,
                    "  local ranks ", Range(0, e.local_world_size), "  global ranks ",
                    Range(e.global_rank_offset, e.local_world_size),
                    e.group_rank == r.group_rank ? "  (this node)" : "", "\n");
  }
  return s;
}

std::string FormatEvent(const RendezvousEvent& e) {
  std::string s = RendezvousEventTypeName(e.type);
  if (!e.host.empty() || !e.node_id.empty()) {
    absl::StrAppend(&s, " ", e.host.empty() ? e.node_id : e.host);
    if (e.group_rank >= 0) absl::StrAppend(&s, " (group rank ", e.group_rank, ")");
  }
  absl::StrAppend(&s, " round ", e.round);
  if (e.type == RendezvousEventType::kSnapshot) {
    absl::StrAppend(&s, e.round_complete ? " complete" : " open", ", ", e.num_nodes, " node(s)");
  }
  if (e.num_waiting > 0) absl::StrAppend(&s, ", ", e.num_waiting, " waiting");
  if (!e.reason.empty()) absl::StrAppend(&s, ": ", e.reason);
  return s;
}

}  // namespace anvil
