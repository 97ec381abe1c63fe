// Plain value types of the rendezvous protocol as the C++ API sees them: the
// node a launcher announces, the completed round it gets back, and the
// membership events a watch delivers. No gRPC types leak through here.
// Invariants of a RendezvousRound: a full rank_table is ordered by group_rank
// and covers 0..group_world_size-1 exactly once; global_rank_offset of entry i is
// the sum of local_world_size of entries 0..i-1; world_size is their total.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace anvil {

// What one launcher (node) announces when it joins.
struct NodeInfo {
  // Name other nodes and the rank table show (hostname, pod name).
  std::string host;
  // Address workers of this node bind to / are reached at (--local_addr).
  // Empty: `host`. If this node gets group rank 0 it is MASTER_ADDR.
  std::string local_addr;
  int nproc = 1;  // local world size (workers on this node)
  // --node_rank; -1 lets the server choose. Must be < max nodes.
  int requested_node_rank = -1;
  // A free port on local_addr proposed for MASTER_PORT, used if this node
  // becomes group rank 0. 0: the client picks one (binds port 0) at Join.
  int master_port = 0;
  // Hint from the agent that this node is the rendezvous endpoint's host
  // (is_host); such a node gets group rank 0 unless a node_rank says
  // otherwise. The server also compares host/local_addr with the host part
  // of the endpoint the client dialled.
  bool is_endpoint_host = false;
  // Stable identity across rounds. Empty: the client makes one
  // ("<host>-<pid>-<random>") and keeps it for its lifetime.
  std::string node_id;
};

struct RankTableEntry {
  int group_rank = 0;
  std::string node_id;
  std::string host;
  std::string local_addr;
  int local_world_size = 0;
  int global_rank_offset = 0;  // RANK of this node's LOCAL_RANK 0
};

// A completed round as this node sees it.
struct RendezvousRound {
  int64_t round = 0;  // increases by one each time the round is reopened
  std::string run_id;
  int group_rank = 0;        // this node's GROUP_RANK
  int group_world_size = 0;  // nodes in the round
  int world_size = 0;        // workers in the round (sum of nproc)
  int local_world_size = 0;  // this node's nproc
  int global_rank_offset = 0;
  // By group_rank: every node, unless the client set want_rank_table=false
  // and this node is not group rank 0; then only this node's own entry.
  std::vector<RankTableEntry> rank_table;
  std::string master_addr;  // group rank 0's local_addr (or host)
  int master_port = 0;      // group rank 0's proposed port
};

enum class RendezvousEventType {
  kUnknown = 0,
  // First event of every watch: where the run stands now (round, open or
  // complete, nodes waiting). Lets a watcher that subscribed late catch up.
  kSnapshot,
  kRoundComplete,  // `round` formed with `num_nodes` nodes
  kNodeWaiting,    // `node` joined while `round` is complete (scale-up or spare)
  kNodeDead,       // `node` missed heartbeats for the timeout
  kNodeLeft,       // `node` called Leave (round not reopened by this alone)
  kRoundReopened,  // `round` is open again for joiners; participants of
                   // round-1 should stop their workers and Join again
  kServerShutdown, // the server is going away; the stream ends after this
};

struct RendezvousEvent {
  RendezvousEventType type = RendezvousEventType::kUnknown;
  int64_t round = 0;
  bool round_complete = false;  // for kSnapshot
  int num_nodes = 0;            // nodes in the (completed) round
  int num_waiting = 0;          // nodes waiting for the next round
  // The node concerned (kNodeWaiting / kNodeDead / kNodeLeft).
  std::string node_id;
  std::string host;
  int group_rank = -1;  // in `round`, or -1 when it had none
  std::string reason;   // human readable, e.g. "no heartbeat for 30s"
};

const char* RendezvousEventTypeName(RendezvousEventType type);

// The table the launcher prints once per round, one line per node:
//   round 3: 2 nodes, world size 8, master 10.0.0.1:29501
//   group_rank 0  host node-a  addr 10.0.0.1  local ranks 0-3  global ranks 0-3
std::string FormatRankTable(const RendezvousRound& round);
// One line, e.g. "node_dead node-b (group rank 1) in round 3: no heartbeat for 30s".
std::string FormatEvent(const RendezvousEvent& event);

}  // namespace anvil
