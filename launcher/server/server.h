// RendezvousServer: the in-process gRPC server hosting both the rendezvous
// service and the key-value store service for one job (or, with an empty
// run_id, for any number of jobs, each in its own namespace and rendezvous).
// The launcher whose address matches --rdzv_endpoint (is_host) runs one; the
// standalone rdzv_server binary runs one for a Kubernetes Service / login node.
// Invariants: every request must carry the configured token and run id (else
// PERMISSION_DENIED); waiting calls (Join, store Get/Wait, Watch) hold no
// server thread while they wait, so thousands may be pending at once; the
// port is bound exclusively (no SO_REUSEPORT): a port in use fails Start;
// the standard gRPC health service (grpc.health.v1.Health) answers SERVING
// from Start until Shutdown, with no token.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace anvil {

struct ServerTlsOptions {
  // PEM server certificate chain and private key. Both empty: plaintext.
  std::string cert_chain_path;
  std::string private_key_path;
  // Optional CA bundle: when set, clients must present a certificate it
  // signed (mTLS).
  std::string client_ca_path;
};

struct RendezvousSettings {
  // --nnodes MIN:MAX. 0 for both: taken from the first Join of each run that
  // states them (the standalone server need not know the job size).
  int min_nodes = 0;
  int max_nodes = 0;
  // Used when a Join does not carry its own join_timeout.
  absl::Duration join_timeout = absl::Seconds(600);
  // Once min_nodes have joined, the round completes this long later (or at
  // once when max_nodes join).
  absl::Duration last_call_timeout = absl::Seconds(30);
  // A participant silent this long is declared dead and the round reopened.
  absl::Duration heartbeat_timeout = absl::Seconds(30);
};

struct ServerOptions {
  std::string host = "0.0.0.0";  // bind address
  int port = 29400;              // 0: pick a free port
  // Only this run id is served; empty: any run id (multi-tenant).
  std::string run_id;
  std::string token;  // empty: no token required
  ServerTlsOptions tls;
  RendezvousSettings rendezvous;
};

class RendezvousServer {
 public:
  RendezvousServer();
  // Shuts down if still running.
  ~RendezvousServer();
  RendezvousServer(const RendezvousServer&) = delete;
  RendezvousServer& operator=(const RendezvousServer&) = delete;

  // Binds and starts serving; returns the bound port. Errors:
  // ALREADY_EXISTS "port 29400 on 0.0.0.0 is already in use",
  // INVALID_ARGUMENT (bad settings), NOT_FOUND (missing TLS file),
  // FAILED_PRECONDITION (already started).
  absl::StatusOr<int> Start(const ServerOptions& options);

  // Ends pending calls (Join/Wait get UNAVAILABLE "server shutting down",
  // watchers a kServerShutdown event) and stops serving. Idempotent.
  void Shutdown();

  int port() const;
  // "host:port" as bound (host as given in options).
  std::string address() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace anvil
