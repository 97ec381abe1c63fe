// Shard slices: how a rank's local shard buffers map onto global tensors,
// in both directions.
//
// Saving. The R replicas of a shard (NO_SHARD: every rank; HYBRID_SHARD: one
// rank per node) hold identical local buffers, so replica k writes only piece
// k = [k*n/R, (k+1)*n/R) of them: every element reaches disk exactly once
// and the replicas share the write bandwidth. A data file holds the piece of
// each state kind back to back, in kStateKinds order:
//   [param piece][exp_avg piece][exp_avg_sq piece]   (fp32, little-endian)
// DescribePiece turns that into tensor slices (global element ranges), with
// shard padding left out: padding bytes are on disk but in no slice.
//
// Loading. PlanShardReads lists the positioned reads that fill a rank's local
// buffer for its own (possibly different) ShardLayout from any checkpoint:
// that is resharding (W, S) -> (W', S'). Reads touch only the byte ranges
// overlapping the rank's shard; adjacent ranges are coalesced.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "models/param_layout.h"
#include "proto/checkpoint.pb.h"
#include "runtime/sharding/shard_layout.h"

namespace anvil::ckpt {

inline constexpr proto::StateKind kStateKinds[] = {
    proto::STATE_KIND_PARAM, proto::STATE_KIND_EXP_AVG, proto::STATE_KIND_EXP_AVG_SQ};
inline constexpr int kNumStateKinds = 3;

struct Piece {
  size_t begin = 0;  // elements of the local shard buffer
  size_t end = 0;
  size_t size() const { return end - begin; }
};

Piece WriterPiece(size_t local_numel, int replicas, int replica_rank);

// Tensor entries (every layout tensor x every kind, in layout order, with
// their global shapes) whose slices say where the file written from `piece`
// (file index `file`) holds each of their elements. Entries with no slice in
// this piece are included with no slices.
std::vector<proto::TensorEntry> DescribePiece(const ParamLayout& layout, const ShardLayout& shards,
                                              Piece piece, uint32_t file);

// Empty entries for every (tensor, kind) of the layout, in layout order.
std::vector<proto::TensorEntry> EmptyEntries(const ParamLayout& layout);

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

// Reads that fill the local buffer of `kind` for `shards` (padding is not
// written). Errors name a tensor the checkpoint lacks or holds with another
// shape.
absl::StatusOr<std::vector<ReadOp>> PlanShardReads(const proto::CheckpointManifest& m,
                                                   const ParamLayout& layout,
                                                   const ShardLayout& shards,
                                                   proto::StateKind kind);

}  // namespace anvil::ckpt
