// The agent's HTTP endpoint over cpp-httplib; see metrics_http.h.
#include "launcher/agent/metrics_http.h"

#include <httplib.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace anvil::launcher {

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(const std::string& host, int port,
                                                                           StatusFn status) {
  std::unique_ptr<MetricsHttpServer> m(new MetricsHttpServer);
  m->server_ = std::make_unique<httplib::Server>();
  httplib::Server& s = *m->server_;
  s.Get("/metrics", [status](const httplib::Request&, httplib::Response& res) {
    res.set_content(FormatPrometheus(status(), absl::Now()), "text/plain; version=0.0.4; charset=utf-8");
  });
  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  s.Get("/readyz", [status](const httplib::Request&, httplib::Response& res) {
    const AgentStatus st = status();
    if (st.ready()) {
      res.set_content("ready\n", "text/plain");
      return;
    }
    res.status = 503;
    res.set_content(absl::StrCat("not ready: ", st.phase, st.round < 0 ? ", no rendezvous round yet" : "", "\n"),
                    "text/plain");
  });
  if (port == 0) {
    m->port_ = s.bind_to_any_port(host);
  } else {
    m->port_ = s.bind_to_port(host, port) ? port : -1;
  }
  if (m->port_ <= 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("--metrics_port: cannot listen on ", host, ":", port, " (in use?)"));
  }
  m->thread_ = std::thread([srv = m->server_.get()] { srv->listen_after_bind(); });
  return m;
}

void MetricsHttpServer::Stop() {
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

}  // namespace anvil::launcher
