// RunRegistry: authorisation of every request and the per-run state behind
// it (a KvTable for the store, a RoundState for the rendezvous).
// Invariants: a request is served only if its metadata carries the server's
// token (compared in constant time) and an allowed run id; each run id has
// its own namespace, created on first authorised use and kept until the
// server shuts down (emptied when a new job reuses the run id, see
// RoundState). After Shutdown() every request gets UNAVAILABLE.
#pragma once

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/server_context.h"
#include "launcher/server/deadline_timer.h"
#include "launcher/server/kv_table.h"
#include "launcher/server/round_state.h"
#include "launcher/server/server.h"

namespace anvil {

struct RunState {
  RunState(DeadlineTimer* timer, const std::string& run_id, const RendezvousSettings& settings)
      : kv(timer, "the store of run '" + run_id + "'"),
        rounds(timer, run_id, settings, [this] { kv.Clear(); }) {}
  KvTable kv;
  RoundState rounds;  // a new job under this run id starts with an empty store
};

class RunRegistry {
 public:
  RunRegistry(DeadlineTimer* timer, const ServerOptions& options);

  // PERMISSION_DENIED for a wrong/missing token or a run id this server does
  // not host; INVALID_ARGUMENT for a missing run id.
  absl::StatusOr<RunState*> Authorize(const grpc::ServerContextBase& context);

  // Fails waiters and joiners, ends watch streams.
  void Shutdown();

 private:
  DeadlineTimer* const timer_;
  const ServerOptions options_;
  absl::Mutex mu_;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, std::unique_ptr<RunState>> runs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace anvil
