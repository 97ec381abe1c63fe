// GlooProcessGroup: the CPU ProcessGroup, Gloo over TCP.
// Invariants: bootstrap goes only through the given anvil::Store, under
// PrefixStore(name) (Gloo's connectFullMesh via GlooStoreAdapter); every
// collective runs through the group's OpQueue in issue order, on its
// communication thread so the caller's thread keeps computing (or on the
// caller's thread when it waits on an op the queue has not started); the
// gloo::Context and the scratch buffers are touched only by the OpQueue's
// single executor after Create. Gloo
// exceptions become Status (DeadlineExceeded for timeouts, Unavailable for
// lost peers) tagged with file:line. Every wait is bounded by the op's
// timeout (default: the group timeout, i.e. --dist_timeout_s). A peer
// connection that fails aborts the group at once (abortable_transport.h):
// every wait of the group, running or later, fails within milliseconds; a
// stop request aborts a collective still blocked StopAbortDelay() later
// (stop_abort.h). On the first failure the group drops its connections, so
// peers waiting on this rank fail at once too rather than at their
// timeout, and every later Work fails fast. Sub-groups share
// the parent's TCP device (one event loop thread per process) but have
// their own connections and OpQueue. Create() sets SIGPIPE to ignored
// when it has the default action (a write to a dead peer must fail with
// EPIPE, not kill the process).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/collectives/collective_trace.h"
#include "runtime/collectives/gloo/reduce_scatter_args.h"
#include "runtime/collectives/op_queue.h"
#include "runtime/collectives/process_group.h"
#include "runtime/store/store.h"

namespace gloo {
class Context;
namespace transport {
class Device;
}
}  // namespace gloo

namespace anvil {

namespace collectives_internal {
class AbortState;
}  // namespace collectives_internal

struct GlooOptions {
  // The job's store (GrpcStore in workers, HashStore in thread tests).
  std::shared_ptr<Store> store = nullptr;
  int rank = -1;
  int size = 0;
  // Bootstrap deadline and default per-collective timeout.
  absl::Duration timeout = absl::Seconds(300);
  // Store namespace of the group. Keys outlive a restart, so it must be
  // unique per incarnation of the job (e.g. "pg/restart3").
  std::string name = "pg";
  // How peers reach this rank: `iface` (e.g. "eth0") if set, else
  // `hostname` (an address or name), else this host's gethostname()
  // (device_address.h). A name that does not resolve to an address of this
  // host is an InvalidArgument, unless `single_node` (every rank of the job
  // on this host): then the loopback is used.
  std::string hostname = "";
  std::string iface = "";
  bool single_node = false;
};

class GlooProcessGroup : public ProcessGroup {
 public:
  static absl::StatusOr<std::unique_ptr<GlooProcessGroup>> Create(const GlooOptions& options);
  ~GlooProcessGroup() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& name() const override { return name_; }
  std::string_view backend() const override { return "gloo"; }

  std::shared_ptr<Work> AllReduce(void* data, size_t count,
                                  const AllReduceOptions& options) override;
  std::shared_ptr<Work> ReduceScatter(void* data, size_t shard_count,
                                      const ReduceScatterOptions& options) override;
  std::shared_ptr<Work> AllGather(void* data, size_t shard_count,
                                  const AllGatherOptions& options) override;
  std::shared_ptr<Work> Broadcast(void* data, size_t count,
                                  const BroadcastOptions& options) override;
  std::shared_ptr<Work> Barrier(const BarrierOptions& options) override;
  absl::StatusOr<std::unique_ptr<ProcessGroup>> Split(const SplitOptions& options) override;

 private:
  struct Bootstrap {
    std::shared_ptr<Store> base_store;
    std::shared_ptr<gloo::transport::Device> device;
    std::string name;
    int rank;
    int size;
    absl::Duration timeout;
  };
  static absl::StatusOr<std::unique_ptr<GlooProcessGroup>> Connect(Bootstrap bootstrap);
  GlooProcessGroup(Bootstrap bootstrap, std::shared_ptr<gloo::Context> context,
                   std::shared_ptr<collectives_internal::AbortState> abort_state);

  std::chrono::milliseconds OpTimeout(absl::Duration requested) const;
  // Runs `body` (which may throw Gloo exceptions), recording it in the
  // trace, and converts failures (their message ends with this rank's
  // trace, compared with the other ranks' on a timeout or a closed connection).
  absl::Status RunGloo(const char* what, uint32_t tag, uint64_t bytes, const std::function<void()>& body);
  // After a failure (this rank's trace already published in the group's
  // store): read the others' traces, waiting until `wait` has passed for
  // those not there yet, and say how they differ.
  std::string CompareTraces(absl::Duration wait);
  uint32_t NextTag() { return next_tag_++; }
  float* Fp32Scratch(size_t n);

  // Executed by the OpQueue (one at a time).
  absl::Status DoAllReduce(void* data, size_t count, AllReduceOptions options);
  absl::Status DoReduceScatter(void* data, size_t shard_count, ReduceScatterOptions options);
  void RunReduceScatter(collectives_internal::ReduceScatterArgs args);
  absl::Status DoAllGather(void* data, size_t shard_count, AllGatherOptions options);
  absl::Status DoBroadcast(void* data, size_t count, BroadcastOptions options);
  absl::Status DoBarrier(BarrierOptions options);

  const std::shared_ptr<Store> base_store_;
  const std::shared_ptr<Store> store_;  // PrefixStore(name_, base_store_)
  const std::shared_ptr<gloo::transport::Device> device_;
  const std::string name_;
  const int rank_;
  const int size_;
  const absl::Duration timeout_;
  std::atomic<int> split_seq_{0};
  CollectiveTrace trace_;
  // Aborted when a peer's connection fails or a stop outlasts the delay
  // (abortable_transport.h, stop_abort.h); shared with the transport.
  const std::shared_ptr<collectives_internal::AbortState> abort_;

  // Executor state (touched only by ops).
  std::shared_ptr<gloo::Context> context_;
  uint32_t next_tag_ = 0;
  std::unique_ptr<float[]> fp32_scratch_;
  size_t fp32_scratch_size_ = 0;
  collectives_internal::ReduceScatterScratch rs_scratch_;

  // Last member: destroyed (drained and joined) first.
  OpQueue queue_;
};

}  // namespace anvil
