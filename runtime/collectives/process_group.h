// ProcessGroup: the only way the sharded runtime talks to other ranks.
//
// Buffer model (FSDP style, no copies): every collective works in place on
// one contiguous buffer of `dtype` elements.
//  - AllReduce(data, count): data[0, count) becomes the reduction over ranks.
//  - ReduceScatter(data, shard_count): data holds size() * shard_count
//    elements (a flat buffer padded to a multiple of the world size); on
//    completion this rank's slice data[rank * shard_count, (rank + 1) *
//    shard_count) holds the reduction of that slice over all ranks. The
//    other slices are used as scratch and are unspecified afterwards.
//  - AllGather(data, shard_count): data holds size() * shard_count elements;
//    this rank's slice is its input (the local shard lives inside the
//    gathered buffer), and on completion every slice holds its owner's shard.
//  - Broadcast(data, count): root's data[0, count) is copied to every rank.
//
// Invariants: collectives on one group run in issue order on every rank, and
// every rank must issue the same sequence (a mismatch is a hang that the
// timeout turns into an error). Each call returns at once with a Work; the
// call itself never blocks on peers. Argument errors (bad dtype/op pairing,
// root out of range) complete the Work with InvalidArgument without talking
// to peers and leave the group usable. A failed collective (peer died,
// timeout) breaks the group: that Work and every later one fail with the
// first error, fast, on every surviving rank. The issuing methods are
// thread-safe, but issue order across threads is whatever order they run.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "runtime/collectives/collective_options.h"
#include "runtime/collectives/work.h"

namespace anvil {

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // The group's store namespace, unique per group ("pg/split0/color1").
  virtual const std::string& name() const = 0;
  // "gloo" or "nccl".
  virtual std::string_view backend() const = 0;

  virtual std::shared_ptr<Work> AllReduce(void* data, size_t count,
                                          const AllReduceOptions& options) = 0;
  virtual std::shared_ptr<Work> ReduceScatter(void* data, size_t shard_count,
                                              const ReduceScatterOptions& options) = 0;
  virtual std::shared_ptr<Work> AllGather(void* data, size_t shard_count,
                                          const AllGatherOptions& options) = 0;
  virtual std::shared_ptr<Work> Broadcast(void* data, size_t count,
                                          const BroadcastOptions& options) = 0;
  virtual std::shared_ptr<Work> Barrier(const BarrierOptions& options) = 0;

  // Builds the sub-group this rank belongs to (see SplitOptions), with its
  // own communicator and store namespace, on the same backend. Blocking;
  // every rank of this group must call it, and in the same order as its
  // other Split calls. Errors: InvalidArgument (negative color), the store's
  // DeadlineExceeded when a rank does not arrive, the backend's bootstrap
  // errors.
  virtual absl::StatusOr<std::unique_ptr<ProcessGroup>> Split(const SplitOptions& options) = 0;
};

}  // namespace anvil
