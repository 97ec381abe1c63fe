#include "runtime/trainer/distributed.h"

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "runtime/config/schema.h"
#include "runtime/collectives/gloo/gloo_process_group.h"
#include "runtime/store/grpc_store.h"
#include "runtime/store/prefix_store.h"

#if ANVIL_HAVE_NCCL
#include "runtime/collectives/nccl/nccl_process_group.h"
#endif

namespace anvil {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

absl::Status EnvInt(const char* name, int* out, bool required) {
  const std::string v = Env(name);
  if (v.empty()) {
    if (required) return absl::InvalidArgumentError(absl::StrCat("environment variable ", name, " is not set"));
    return absl::OkStatus();
  }
  if (!absl::SimpleAtoi(v, out) || *out < 0) {
    return absl::InvalidArgumentError(absl::StrCat("environment variable ", name, "='", v,
                                                   "' is not a non-negative integer"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DistEnv> ReadDistEnv() {
  DistEnv e;
  RETURN_IF_ERROR(EnvInt("WORLD_SIZE", &e.world_size, false));
  if (e.world_size <= 1) {
    e.world_size = 1;
    return e;
  }
  RETURN_IF_ERROR(EnvInt("RANK", &e.rank, true));
  e.local_world_size = e.world_size;
  RETURN_IF_ERROR(EnvInt("LOCAL_RANK", &e.local_rank, false));
  RETURN_IF_ERROR(EnvInt("LOCAL_WORLD_SIZE", &e.local_world_size, false));
  if (e.rank >= e.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("RANK ", e.rank, " is not below WORLD_SIZE ", e.world_size));
  }
  e.store_addr = Env("ANVIL_STORE_ADDR");
  if (e.store_addr.empty()) {
    return absl::InvalidArgumentError(
        "WORLD_SIZE > 1 but ANVIL_STORE_ADDR is not set: start workers with `launcher`");
  }
  e.run_id = Env("ANVIL_RUN_ID");
  e.token = Env("ANVIL_TOKEN");
  e.tls_ca = Env("ANVIL_TLS_CA");
  e.store_prefix = Env("ANVIL_STORE_PREFIX");
  DeviceAddressRequest where;
  where.iface =
      !Env("ANVIL_SOCKET_IFNAME").empty() ? Env("ANVIL_SOCKET_IFNAME") : Env("GLOO_SOCKET_IFNAME");
  where.single_node = e.local_world_size == e.world_size;
  where.address = Env("ANVIL_LOCAL_ADDR");
  if (where.address.empty() && (where.single_node || Env("GROUP_RANK") == "0")) {
    where.address = Env("MASTER_ADDR");  // node 0's own --local_addr
  }
  ASSIGN_OR_RETURN(e.gloo_address, ChooseDeviceAddress(where));
  return e;
}

absl::StatusOr<DistContext> Connect(const DistEnv& env, const proto::TrainConfig& config,
                                    absl::Duration timeout, const DeviceChoice& device) {
  DistContext ctx;
  ctx.env = env;
  if (env.world_size == 1) return ctx;
  const bool cuda = device.kind == kernels::DeviceKind::kCuda;
#if !ANVIL_HAVE_NCCL
  if (cuda) {
    return absl::FailedPreconditionError(
        "--device cuda with several ranks needs NCCL, which this build does not have");
  }
#endif
  GrpcStoreOptions so;
  so.address = env.store_addr;
  so.run_id = env.run_id;
  so.token = env.token;
  so.tls.root_cert_path = env.tls_ca;
  so.connect_timeout = timeout;
  ASSIGN_OR_RETURN(std::unique_ptr<GrpcStore> grpc, GrpcStore::Create(so));
  ctx.store = std::make_shared<PrefixStore>(absl::StrCat(env.store_prefix, "train/"),
                                            std::shared_ptr<Store>(std::move(grpc)));
  // Ranks compare the device kind they resolved (--device auto may differ
  // across nodes): NCCL on some ranks and Gloo on others would only time out.
  proto::TrainConfig resolved = config;
  resolved.set_device(cuda ? "cuda" : "cpu");
  RETURN_IF_ERROR(CheckSameConfig(*ctx.store, env.rank, env.world_size, resolved, timeout));
  GlooOptions go;
  go.store = ctx.store;
  go.rank = env.rank;
  go.size = env.world_size;
  go.timeout = timeout;
  go.name = "pg";
  go.iface = env.gloo_address.iface;
  go.hostname = env.gloo_address.address;
  if (!env.gloo_address.note.empty() && env.rank == 0) {
    std::fprintf(stderr, "train: %s\n", env.gloo_address.note.c_str());
  }
  if (cuda) {
#if ANVIL_HAVE_NCCL
    NcclOptions no;
    no.store = ctx.store;
    no.rank = env.rank;
    no.size = env.world_size;
    no.device = device.ordinal;
    no.timeout = timeout;
    no.name = "nccl";
    ASSIGN_OR_RETURN(ctx.world, NcclProcessGroup::Create(no));
    ASSIGN_OR_RETURN(ctx.host_world_owned, GlooProcessGroup::Create(go));
    ctx.host_world = ctx.host_world_owned.get();
#endif
  } else {
    ASSIGN_OR_RETURN(ctx.world, GlooProcessGroup::Create(go));
    ctx.host_world = ctx.world.get();
  }
  // NCCL's Split makes each sub-group its own communicator, Gloo's its own
  // pairs: the same call for both.
  if (config.sharding() == "HYBRID_SHARD") {
    ASSIGN_OR_RETURN(ctx.hybrid, SplitHybrid(*ctx.world, env.local_world_size));
  }
  return ctx;
}

absl::Status CheckSameConfig(Store& store, int rank, int world_size,
                             const proto::TrainConfig& config, absl::Duration timeout) {
  RETURN_IF_ERROR(store.Set(absl::StrCat("config/", rank), config.SerializeAsString()));
  std::vector<std::string> keys;
  for (int r = 0; r < world_size; ++r) keys.push_back(absl::StrCat("config/", r));
  ASSIGN_OR_RETURN(std::vector<std::string> values, store.MultiGet(keys, timeout));
  for (int r = 1; r < world_size; ++r) {
    proto::TrainConfig base, other;
    if (!base.ParseFromString(values[0]) || !other.ParseFromString(values[r])) {
      return absl::DataLossError("cannot parse a rank's published config");
    }
    std::vector<std::string> differs;
    for (const ConfigLeaf& leaf : ConfigLeaves()) {
      if (leaf.spec().ranks() == proto::RANKS_LOCAL) continue;
      const std::string a = EffectiveValueText(base, leaf), b = EffectiveValueText(other, leaf);
      if (a != b) differs.push_back(absl::StrCat("--", leaf.flag(), " ", a, " vs ", b));
    }
    if (!differs.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "rank ", r, "'s config differs from rank 0's (rank 0 vs rank ", r, "): ",
          absl::StrJoin(differs, ", "), "; every rank must run the same config"));
    }
  }
  return absl::OkStatus();
}

}  // namespace anvil
