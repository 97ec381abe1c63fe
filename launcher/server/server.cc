// RendezvousServer: wires the timer, the run registry and both services into
// one grpc::Server. Shutdown order matters: answer pending calls, stop the
// gRPC server (which waits for in-flight callbacks), then stop the timer,
// and only then destroy the per-run state the callbacks point into.
#include "launcher/server/server.h"

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "launcher/server/deadline_timer.h"
#include "launcher/server/rendezvous_service.h"
#include "launcher/server/run_registry.h"
#include "launcher/server/store_service.h"
#include "runtime/store/grpc_channel.h"

namespace anvil {

struct RendezvousServer::Impl {
  absl::Mutex mu;
  ServerOptions options;
  int port = 0;
  bool started = false;
  bool stopped = false;
  std::unique_ptr<DeadlineTimer> timer;
  std::unique_ptr<RunRegistry> registry;
  std::unique_ptr<StoreServiceImpl> store;
  std::unique_ptr<RendezvousServiceImpl> rendezvous;
  std::unique_ptr<grpc::Server> server;
};

namespace {

absl::Status ValidateSettings(const RendezvousSettings& s) {
  if (s.min_nodes < 0 || s.max_nodes < 0 || s.min_nodes > s.max_nodes ||
      (s.max_nodes > 0 && s.min_nodes == 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad --nnodes ", s.min_nodes, ":", s.max_nodes,
                     " (need 1 <= MIN <= MAX, or both 0 to take them from the first joiner)"));
  }
  if (s.heartbeat_timeout <= absl::ZeroDuration() || s.join_timeout <= absl::ZeroDuration() ||
      s.last_call_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "join_timeout and heartbeat_timeout must be > 0 and last_call_timeout >= 0");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeCredentials(
    const ServerTlsOptions& tls) {
  if (tls.cert_chain_path.empty() && tls.private_key_path.empty()) {
    return grpc::InsecureServerCredentials();
  }
  if (tls.cert_chain_path.empty() || tls.private_key_path.empty()) {
    return absl::InvalidArgumentError("TLS needs both a certificate chain and a private key");
  }
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  absl::StatusOr<std::string> chain = ReadPemFile(tls.cert_chain_path, "TLS certificate");
  if (!chain.ok()) return chain.status();
  absl::StatusOr<std::string> key = ReadPemFile(tls.private_key_path, "TLS private key");
  if (!key.ok()) return key.status();
  pair.cert_chain = *std::move(chain);
  pair.private_key = *std::move(key);
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!tls.client_ca_path.empty()) {
    absl::StatusOr<std::string> ca = ReadPemFile(tls.client_ca_path, "TLS client CA");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

std::string JoinHostPort(const std::string& host, int port) {
  if (host.find(':') != std::string::npos && host.front() != '[') {
    return absl::StrCat("[", host, "]:", port);
  }
  return absl::StrCat(host, ":", port);
}

}  // namespace

RendezvousServer::RendezvousServer() : impl_(std::make_unique<Impl>()) {}

RendezvousServer::~RendezvousServer() { Shutdown(); }

absl::StatusOr<int> RendezvousServer::Start(const ServerOptions& options) {
  absl::MutexLock lock(&impl_->mu);
  if (impl_->started) return absl::FailedPreconditionError("server already started");
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad port ", options.port));
  }
  absl::Status valid = ValidateSettings(options.rendezvous);
  if (!valid.ok()) return valid;
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds = MakeCredentials(options.tls);
  if (!creds.ok()) return creds.status();

  auto timer = std::make_unique<DeadlineTimer>();
  auto registry = std::make_unique<RunRegistry>(timer.get(), options);
  auto store = std::make_unique<StoreServiceImpl>(registry.get());
  auto rendezvous = std::make_unique<RendezvousServiceImpl>(registry.get());

  // The standard grpc.health.v1.Health service (Check, Watch): SERVING
  // while up, NOT_SERVING once Shutdown begins. Kubernetes' grpc probes and
  // grpc_health_probe call it without a token, so it answers without one.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int bound_port = 0;
  std::string listen = JoinHostPort(options.host, options.port);
  builder.AddListeningPort(listen, *creds, &bound_port);
  // Exclusive bind: with SO_REUSEPORT a second server would silently share
  // the port and split the job's nodes between two rendezvous.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Thousands of agents may connect at once.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 1 << 20);
  // Accept the clients' 10 s keepalive pings on idle watch streams.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.RegisterService(store.get());
  builder.RegisterService(rendezvous.get());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    if (server) server->Shutdown();
    return absl::AlreadyExistsError(absl::StrCat(
        "cannot listen on ", listen, ": port ", options.port,
        " is already in use (or the address is not local); pick another with --port"));
  }
  impl_->options = options;
  impl_->port = bound_port;
  impl_->timer = std::move(timer);
  impl_->registry = std::move(registry);
  impl_->store = std::move(store);
  impl_->rendezvous = std::move(rendezvous);
  impl_->server = std::move(server);
  impl_->started = true;
  return bound_port;
}

void RendezvousServer::Shutdown() {
  absl::MutexLock lock(&impl_->mu);
  if (!impl_->started || impl_->stopped) return;
  impl_->stopped = true;
  if (grpc::HealthCheckServiceInterface* health = impl_->server->GetHealthCheckService()) {
    health->Shutdown();  // NOT_SERVING from now on
  }
  impl_->registry->Shutdown();
  impl_->server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  impl_->server->Wait();
  impl_->timer->Stop();
  impl_->server.reset();
  impl_->rendezvous.reset();
  impl_->store.reset();
  impl_->registry.reset();
  impl_->timer.reset();
}

int RendezvousServer::port() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->port;
}

std::string RendezvousServer::address() const {
  absl::MutexLock lock(&impl_->mu);
  return JoinHostPort(impl_->options.host, impl_->port);
}

}  // namespace anvil
