// Decides whether this launcher hosts the rendezvous + store server, starts
// it when so, and says which address agents and workers should dial.
// Rules: no endpoint -> a private server on 127.0.0.1 with a free port
// (--standalone and single-node runs: no port can conflict). rdzv_conf
// is_host=true -> host or fail ("port ... is already in use"); is_host=false
// -> never host. Otherwise host when the endpoint's address is this node's
// (--local_addr when given, else any local address); if its port is taken by
// another launcher's server, join that one as a client, and if it is taken
// by something that does not answer as an anvil server, fail with one line.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "launcher/agent/agent_options.h"
#include "launcher/server/server.h"

namespace anvil::launcher {

struct HostedRendezvous {
  std::unique_ptr<RendezvousServer> server;  // null when another node hosts
  std::string address;  // "host:port" every agent and worker dials
};

absl::StatusOr<HostedRendezvous> SetUpRendezvous(const AgentOptions& options);

}  // namespace anvil::launcher
