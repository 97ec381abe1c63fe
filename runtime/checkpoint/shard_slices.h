// Shard slices: how a rank's local shard buffers map onto global tensors,
// in both directions.
//
// A rank's persistent state is a list of named shard buffers (StateList:
// "params", "adam_m", "adam_v", ...), each with the rank's ShardLayout. A
// checkpoint holds, for every state buffer and every layout tensor, one
// tensor entry (name, state) with the tensor's global shape.
//
// Saving. The R replicas of a shard (NO_SHARD: every rank; HYBRID_SHARD: one
// rank per node) hold identical local buffers, so replica k writes only piece
// k = [k*n/R, (k+1)*n/R) of them: every element reaches disk exactly once
// and the replicas share the write bandwidth. A data file holds the piece of
// each state buffer back to back, in the list's order:
//   [params piece][adam_m piece][adam_v piece]...   (fp32, little-endian)
// DescribePiece turns that into tensor slices (global element ranges), with
// shard padding left out: padding bytes are on disk but in no slice.
//
// Loading. PlanShardReads lists the positioned reads that fill a rank's local
// buffer of one state for its own (possibly different) ShardLayout from any
// checkpoint: that is resharding (W, S) -> (W', S'). Reads touch only the
// byte ranges overlapping the rank's shard; adjacent ranges are coalesced.
// Format-1 checkpoints name states by kind; entries are matched through
// EntryStateName (manifest.h), so they load the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "models/param_layout.h"
#include "proto/checkpoint.pb.h"
#include "runtime/sharding/shard_layout.h"
#include "runtime/sharding/state_buffer.h"

namespace anvil::ckpt {

// The names of a state list, in order.
std::vector<std::string> StateNames(const StateList& state);

struct Piece {
  size_t begin = 0;  // elements of the local shard buffer
  size_t end = 0;
  size_t size() const { return end - begin; }
};

Piece WriterPiece(size_t local_numel, int replicas, int replica_rank);

// Tensor entries (every state x every layout tensor, in state then layout
// order, with their global shapes) whose slices say where the file written
// from `piece` (file index `file`) holds each of their elements. Entries with
// no slice in this piece are included with no slices.
std::vector<proto::TensorEntry> DescribePiece(const ParamLayout& layout, const ShardLayout& shards,
                                              Piece piece, uint32_t file,
                                              const std::vector<std::string>& states);

// Empty entries for every (state, tensor) pair, in that order.
std::vector<proto::TensorEntry> EmptyEntries(const ParamLayout& layout,
                                             const std::vector<std::string>& states);

// Adds the slices of `from` (which reference file 0) to `into` as file
// `file`; both list the same entries in the same order. Sorts slices.
absl::Status AddSlices(const std::vector<proto::TensorEntry>& from, uint32_t file,
                       std::vector<proto::TensorEntry>* into);

struct ReadOp {
  uint32_t file = 0;
  uint64_t file_offset = 0;  // bytes
  size_t dst = 0;            // element offset in the local shard buffer
  size_t count = 0;          // elements
};

// Reads that fill the local buffer of state `state` for `shards` (padding is
// not written). Errors name a tensor the checkpoint lacks or holds with
// another shape.
absl::StatusOr<std::vector<ReadOp>> PlanShardReads(const proto::CheckpointManifest& m,
                                                   const ParamLayout& layout,
                                                   const ShardLayout& shards,
                                                   const std::string& state);

}  // namespace anvil::ckpt
