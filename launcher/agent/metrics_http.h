// MetricsHttpServer: the agent's HTTP endpoint (launcher --metrics_port):
//   GET /metrics  Prometheus text (agent_status.h)
//   GET /healthz  200 "ok" while the agent runs (a liveness probe)
//   GET /readyz   200 "ready" when the rendezvous is complete and every
//                 local worker runs, else 503 and the reason (a readiness probe)
// Built on cpp-httplib (Debian's libcpp-httplib-dev): a small blocking
// server with its own thread pool, so a slow scraper never touches the
// agent's loop; gRPC (already linked) speaks no plain HTTP/1.1 that curl,
// Prometheus and kubelet probes expect.
// Invariants: handlers only call `status` (which copies under the agent's
// lock) and never block on the agent; Stop (and the destructor) returns
// after the listener thread has ended.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "launcher/agent/agent_status.h"

namespace httplib {
class Server;
}

namespace anvil::launcher {

class MetricsHttpServer {
 public:
  using StatusFn = std::function<AgentStatus()>;
  // Binds host:port (port 0: a free one) and serves on a thread.
  // ALREADY_EXISTS when the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& host, int port,
                                                                  StatusFn status);
  ~MetricsHttpServer();
  void Stop();
  int port() const { return port_; }

 private:
  MetricsHttpServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace anvil::launcher
