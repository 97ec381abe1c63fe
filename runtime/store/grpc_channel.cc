// Channel construction and per-call metadata for the launcher's gRPC clients.
// Invariant: the reconnect backoff is capped at 2 s, so a client that starts
// before its server connects within ~2 s of the server coming up.
#include "runtime/store/grpc_channel.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "grpc/support/log.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace anvil {
namespace {

// The Debian Abseil's string_view is its own type, not std::string_view.
absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// Splits "host:port", "[v6]:port", "host", "[v6]" into (host, port or "").
void SplitHostPort(std::string_view address, std::string_view& host, std::string_view& port) {
  port = {};
  if (absl::StartsWith(AV(address), "[")) {
    size_t close = address.find(']');
    if (close == std::string_view::npos) {
      host = address;
      return;
    }
    host = address.substr(1, close - 1);
    if (close + 1 < address.size() && address[close + 1] == ':') port = address.substr(close + 2);
    return;
  }
  size_t colon = address.rfind(':');
  // More than one colon without brackets: a bare IPv6 address, no port.
  if (colon == std::string_view::npos || address.find(':') != colon) {
    host = address;
    return;
  }
  host = address.substr(0, colon);
  port = address.substr(colon + 1);
}

}  // namespace

std::string NormalizeAddress(std::string_view address) {
  std::string_view host, port;
  SplitHostPort(address, host, port);
  if (!port.empty()) return std::string(address);
  bool v6 = host.find(':') != std::string_view::npos;
  return v6 ? absl::StrCat("[", AV(host), "]:", kDefaultRendezvousPort)
            : absl::StrCat(AV(host), ":", kDefaultRendezvousPort);
}

std::string HostOfAddress(std::string_view address) {
  std::string_view host, port;
  SplitHostPort(address, host, port);
  return std::string(host);
}

absl::StatusOr<std::string> ReadPemFile(std::string_view path, std::string_view what) {
  std::ifstream in{std::string(path)};
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", AV(what), " '", AV(path), "': ", std::strerror(errno)));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ChannelOptions& options) {
  if (options.address.empty()) return absl::InvalidArgumentError("empty server address");
  std::string target = NormalizeAddress(options.address);
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  // Long-lived watch streams: notice a vanished server within ~20 s even
  // when no event flows (a killed host sends no FIN).
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  std::shared_ptr<grpc::ChannelCredentials> creds;
  const ClientTlsOptions& tls = options.tls;
  if (tls.root_cert_path.empty()) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    absl::StatusOr<std::string> roots = ReadPemFile(tls.root_cert_path, "TLS root certificate");
    if (!roots.ok()) return roots.status();
    ssl.pem_root_certs = *std::move(roots);
    if (!tls.cert_chain_path.empty() || !tls.private_key_path.empty()) {
      absl::StatusOr<std::string> chain = ReadPemFile(tls.cert_chain_path, "TLS client certificate");
      if (!chain.ok()) return chain.status();
      absl::StatusOr<std::string> key = ReadPemFile(tls.private_key_path, "TLS client key");
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *std::move(chain);
      ssl.pem_private_key = *std::move(key);
    }
    if (!tls.target_name_override.empty()) {
      args.SetSslTargetNameOverride(tls.target_name_override);
    }
    creds = grpc::SslCredentials(ssl);
  }
  return grpc::CreateCustomChannel(target, creds, args);
}

void PrepareContext(grpc::ClientContext& context, const ChannelOptions& options,
                    absl::Duration timeout) {
  context.AddMetadata(kRunIdMetadataKey, options.run_id);
  context.AddMetadata(kTokenMetadataKey, options.token);
  context.set_wait_for_ready(true);
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

absl::Status ContextualizeRpcError(const grpc::Status& status, grpc::Channel& channel,
                                   std::string_view what, std::string_view address) {
  if (status.ok()) return absl::OkStatus();
  grpc_connectivity_state state = channel.GetState(/*try_to_connect=*/false);
  bool never_connected =
      state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_CONNECTING ||
      state == GRPC_CHANNEL_IDLE;
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
      (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED && never_connected &&
       status.error_message() == "Deadline Exceeded")) {
    return absl::UnavailableError(absl::StrCat("cannot reach ", AV(what), " at ", AV(address), ": ",
                                               status.error_message()));
  }
  // The server's own messages already say what happened; add where.
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(AV(what), " at ", AV(address), ": ", status.error_message()));
}

void SilenceGrpcLogging() {
  gpr_set_log_function([](gpr_log_func_args*) {});
}

}  // namespace anvil
