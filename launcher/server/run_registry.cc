// RunRegistry: token / run id checks and lazily created per-run state.
#include "launcher/server/run_registry.h"

#include <string_view>

#include "absl/strings/str_cat.h"
#include "runtime/store/grpc_channel.h"

namespace anvil {
namespace {

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? a[i] : 0;
    unsigned char y = i < b.size() ? b[i] : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

std::string_view Metadata(const grpc::ServerContextBase& ctx, std::string_view key, bool& found) {
  const auto& md = ctx.client_metadata();
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  found = it != md.end();
  if (!found) return {};
  return std::string_view(it->second.data(), it->second.size());
}

}  // namespace

RunRegistry::RunRegistry(DeadlineTimer* timer, const ServerOptions& options)
    : timer_(timer), options_(options) {}

absl::StatusOr<RunState*> RunRegistry::Authorize(const grpc::ServerContextBase& ctx) {
  bool has_run = false, has_token = false;
  std::string run_id(Metadata(ctx, kRunIdMetadataKey, has_run));
  std::string_view token = Metadata(ctx, kTokenMetadataKey, has_token);
  if (!options_.token.empty() && !ConstantTimeEquals(token, options_.token)) {
    return absl::PermissionDeniedError(
        token.empty()
            ? "the rendezvous server requires a token and the request carried none (set "
              "--token, --token_file or ANVIL_TOKEN on the launcher)"
            : "wrong token: the request's token does not match the rendezvous server's");
  }
  if (run_id.empty()) {
    return absl::InvalidArgumentError("request carries no run id (--rdzv_id)");
  }
  if (!options_.run_id.empty() && run_id != options_.run_id) {
    return absl::PermissionDeniedError(absl::StrCat("this server hosts run '", options_.run_id,
                                                    "', not '", run_id, "' (check --rdzv_id)"));
  }
  absl::MutexLock lock(&mu_);
  if (shutdown_) return absl::UnavailableError("rendezvous server shutting down");
  std::unique_ptr<RunState>& run = runs_[run_id];
  if (!run) {
    run = std::make_unique<RunState>(timer_, run_id, options_.rendezvous);
  }
  return run.get();
}

void RunRegistry::Shutdown() {
  std::vector<RunState*> runs;
  {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
    for (auto& [id, run] : runs_) runs.push_back(run.get());
  }
  for (RunState* run : runs) {
    run->rounds.Shutdown();
    run->kv.FailAll(absl::UnavailableError("rendezvous server shutting down"));
  }
}

}  // namespace anvil
