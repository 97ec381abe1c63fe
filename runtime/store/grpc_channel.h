// Client-side connection settings shared by every gRPC client of the launcher
// services (GrpcStore, RendezvousClient): address, run id, token, TLS, and
// ServiceClient, the one way those clients open a channel and make a call.
// Invariants: every RPC a client sends carries the run id and token as
// metadata (kRunIdMetadataKey, kTokenMetadataKey); the server refuses a call
// whose token or run id does not match with PERMISSION_DENIED. TLS is on iff
// `tls.root_cert_path` is non-empty; otherwise the channel is plaintext.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"

namespace anvil {

// gRPC metadata keys (lower case, as gRPC requires).
inline constexpr char kRunIdMetadataKey[] = "x-anvil-run-id";
inline constexpr char kTokenMetadataKey[] = "x-anvil-token";

struct ClientTlsOptions {
  // PEM file of the CA (or the self-signed server cert) that signed the
  // server's certificate. Empty: plaintext.
  std::string root_cert_path;
  // Optional client certificate and key, for servers that require mTLS.
  std::string cert_chain_path;
  std::string private_key_path;
  // Overrides the name checked against the server certificate (useful when
  // dialling an IP whose certificate names a host). Empty: the dialled host.
  std::string target_name_override;
};

struct ChannelOptions {
  std::string address;  // "host:port"; a bare "host" gets kDefaultRendezvousPort.
  std::string run_id;
  std::string token;
  ClientTlsOptions tls;
};

inline constexpr int kDefaultRendezvousPort = 29400;

// Appends the default port when `address` has none ("node1" -> "node1:29400";
// "[::1]" -> "[::1]:29400").
std::string NormalizeAddress(std::string_view address);
// The host part of "host:port" ("[::1]:5" -> "::1").
std::string HostOfAddress(std::string_view address);

// Reads a PEM file; NOT_FOUND "cannot read <what> '<path>': <errno text>".
absl::StatusOr<std::string> ReadPemFile(std::string_view path, std::string_view what);

// Builds a channel for `options.address` (reading the TLS files if set).
// Errors: INVALID_ARGUMENT for an empty address, NOT_FOUND for a missing
// certificate file.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ChannelOptions& options);

// Adds run id + token metadata, wait_for_ready (so a server that is still
// starting is waited for) and a deadline `timeout` from now.
void PrepareContext(grpc::ClientContext& context, const ChannelOptions& options,
                    absl::Duration timeout);

// Rewrites a failed call's status into one clear line that names the
// service and address: UNAVAILABLE / a DEADLINE_EXCEEDED while the channel
// never connected become "cannot reach <what> at <address>: ...". Other
// codes keep their code and get the prefix "<what> at <address>: ".
absl::Status ContextualizeRpcError(const grpc::Status& status, grpc::Channel& channel,
                                   std::string_view what, std::string_view address);

// gRPC's own log lines (e.g. the bind error behind "port in use") go to
// stderr by default; binaries that promise one clear error line call this
// once at start to drop them for the rest of the process.
void SilenceGrpcLogging();

// One gRPC service's client end: its channel options, channel and stub.
// `what` names the service in errors ("the store", "rendezvous").
template <typename Service>
class ServiceClient {
 public:
  // Normalises `options.address` (default port) and builds the channel.
  static absl::StatusOr<ServiceClient> Open(ChannelOptions options, std::string what) {
    options.address = NormalizeAddress(options.address);
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(options);
    if (!channel.ok()) return channel.status();
    return ServiceClient(std::move(options), *std::move(channel), std::move(what));
  }

  // One unary call of `method` (e.g. &Service::Stub::Get) with the run id
  // and token, a deadline `timeout` away, and errors as ContextualizeRpcError.
  template <typename Req, typename Resp, typename Method>
  absl::Status Call(Method method, const Req& req, Resp* resp, absl::Duration timeout) const {
    grpc::ClientContext ctx;
    PrepareContext(ctx, options_, timeout);
    const grpc::Status s = (stub_.get()->*method)(&ctx, req, resp);
    return ContextualizeRpcError(s, *channel_, what_, options_.address);
  }

  const ChannelOptions& options() const { return options_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

 private:
  ServiceClient(ChannelOptions options, std::shared_ptr<grpc::Channel> channel, std::string what)
      : options_(std::move(options)),
        channel_(std::move(channel)),
        stub_(Service::NewStub(channel_)),
        what_(std::move(what)) {}

  ChannelOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<typename Service::Stub> stub_;
  std::string what_;
};

}  // namespace anvil
