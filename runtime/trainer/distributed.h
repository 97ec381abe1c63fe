// Distributed set-up of a worker: what the launcher's environment says, the
// store and process groups built from it, and the check that every rank runs
// the same config.
//
// Environment (set by `launcher`, torchrun-compatible): RANK, WORLD_SIZE,
// LOCAL_RANK, LOCAL_WORLD_SIZE, and this project's ANVIL_STORE_ADDR,
// ANVIL_RUN_ID, ANVIL_TOKEN, ANVIL_TLS_CA, ANVIL_STORE_PREFIX (unique per
// restart attempt, so keys of a dead attempt never leak into the next).
// Without WORLD_SIZE (or with 1) the worker is a single process and needs no
// store.
//
// Process groups follow the device (runtime/trainer/device_select.h): on the
// CPU the world, node-local and cross-node groups are Gloo; with a CUDA
// device they are NCCL communicators on that GPU (bootstrapped through the
// same store), and a Gloo world group is kept beside them for host-side
// control (host scalars). Every rank must have resolved --device to the same
// kind; Connect checks that before it builds a group.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/config.pb.h"
#include "runtime/collectives/gloo/device_address.h"
#include "runtime/collectives/hybrid_groups.h"
#include "runtime/collectives/process_group.h"
#include "runtime/sharding/sharded_engine.h"
#include "runtime/store/store.h"
#include "runtime/trainer/device_select.h"

namespace anvil {

struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string store_addr;
  std::string run_id;
  std::string token;
  std::string tls_ca;
  std::string store_prefix;
  // Where the Gloo device binds (runtime/collectives/gloo/device_address.h):
  // ANVIL_SOCKET_IFNAME (or GLOO_SOCKET_IFNAME), else ANVIL_LOCAL_ADDR, else
  // MASTER_ADDR on the launcher's node 0 (its own --local_addr), else the
  // host name; the loopback when that does not resolve on a single node.
  DeviceAddress gloo_address;
};

// Parses the environment; errors name the variable.
absl::StatusOr<DistEnv> ReadDistEnv();

struct DistContext {
  DistEnv env;
  std::shared_ptr<Store> store;        // prefixed per attempt; null when single
  std::unique_ptr<ProcessGroup> world; // null when single; NCCL on a CUDA device
  HybridGroups hybrid;                 // HYBRID_SHARD only, split from world
  // Gloo, for host buffers: the world group itself on the CPU (not owned
  // here then), a separate Gloo world group with a CUDA device. Null when
  // single.
  std::unique_ptr<ProcessGroup> host_world_owned;
  ProcessGroup* host_world = nullptr;
  EngineGroups groups() const {
    return EngineGroups{world.get(), hybrid.node_local.get(), hybrid.cross_node.get()};
  }
};

// Connects to the store and builds the world group (and the hybrid groups
// when the config asks for HYBRID_SHARD) for `device`: Gloo on the CPU,
// NCCL on a CUDA device (an error when this build has no NCCL).
absl::StatusOr<DistContext> Connect(const DistEnv& env, const proto::TrainConfig& config,
                                    absl::Duration timeout, const DeviceChoice& device = {});

// Every rank publishes its config; a rank whose config differs from rank 0's
// in a RANKS_MATCH field (model shape, strategy, dtypes, batch, eval cadence,
// ...) makes every rank fail with an error naming the flags and both values.
// RANKS_LOCAL fields (threads, log cadence) may differ: each field declares
// which in proto/config.proto.
absl::Status CheckSameConfig(Store& store, int rank, int world_size,
                             const proto::TrainConfig& config, absl::Duration timeout);

}  // namespace anvil
