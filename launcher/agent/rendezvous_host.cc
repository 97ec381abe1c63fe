// Hosting decision for the rendezvous server; see rendezvous_host.h.
#include "launcher/agent/rendezvous_host.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "launcher/agent/endpoint_host.h"
#include "runtime/store/grpc_channel.h"
#include "runtime/store/grpc_store.h"

namespace anvil::launcher {
namespace {

ServerOptions MakeServerOptions(const AgentOptions& o, const std::string& bind_host, int port) {
  ServerOptions s;
  s.host = bind_host;
  s.port = port;
  s.run_id = o.run_id;
  s.token = o.token;
  s.tls.cert_chain_path = o.tls_cert;
  s.tls.private_key_path = o.tls_key;
  s.rendezvous.min_nodes = o.min_nodes;
  s.rendezvous.max_nodes = o.max_nodes;
  s.rendezvous.join_timeout = o.join_timeout;
  s.rendezvous.last_call_timeout = o.last_call_timeout;
  s.rendezvous.heartbeat_timeout = o.heartbeat_timeout;
  return s;
}

absl::StatusOr<int> PortOf(const std::string& address) {
  size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError(absl::StrCat("bad rendezvous endpoint '", address, "'"));
  }
  return port;
}

}  // namespace

absl::StatusOr<HostedRendezvous> SetUpRendezvous(const AgentOptions& o) {
  HostedRendezvous out;
  if (o.endpoint.empty()) {
    out.server = std::make_unique<RendezvousServer>();
    ASSIGN_OR_RETURN(int port, out.server->Start(MakeServerOptions(o, "127.0.0.1", 0)));
    out.address = absl::StrCat("127.0.0.1:", port);
    return out;
  }
  out.address = NormalizeAddress(o.endpoint);
  const std::string host = HostOfAddress(out.address);
  ASSIGN_OR_RETURN(int port, PortOf(out.address));
  if (o.host_mode == HostMode::kClient) return out;
  std::string bind_host = "0.0.0.0";
  if (o.host_mode == HostMode::kAuto) {
    bool local = false;
    if (!o.local_addr.empty()) {
      local = SameAddress(host, o.local_addr);
      bind_host = host;  // several launchers may share this machine (127.0.0.x)
    } else {
      absl::StatusOr<bool> l = IsLocalAddress(host);
      local = l.ok() && *l;  // an unresolvable name is remote (DNS may lag)
    }
    if (!local) return out;
  }
  auto server = std::make_unique<RendezvousServer>();
  absl::StatusOr<int> started = server->Start(MakeServerOptions(o, bind_host, port));
  if (started.ok()) {
    out.server = std::move(server);
    return out;
  }
  if (started.status().code() == absl::StatusCode::kAlreadyExists && o.host_mode == HostMode::kHost) {
    return absl::AlreadyExistsError(absl::StrCat(
        "rendezvous port ", bind_host, ":", port,
        " is already in use (another job's launcher or rdzv_server?); pick another port in --rdzv_endpoint"));
  }
  if (started.status().code() != absl::StatusCode::kAlreadyExists) return started.status();
  // The port is taken: fine if it is another launcher's server for this job.
  GrpcStoreOptions probe;
  probe.address = out.address;
  probe.run_id = o.run_id;
  probe.token = o.token;
  probe.tls.root_cert_path = o.tls_ca;
  probe.connect_timeout = std::min(o.read_timeout, absl::Seconds(5));
  absl::StatusOr<std::unique_ptr<GrpcStore>> store = GrpcStore::Create(probe);
  if (!store.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("rendezvous port ", out.address, " is already in use and does not answer as an anvil server (",
                     store.status().message(), ")"));
  }
  return out;
}

}  // namespace anvil::launcher
