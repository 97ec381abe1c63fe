// LocalJob: a one-host job for tests that start `train` ranks themselves,
// without the launcher: a rendezvous/store server on loopback and the
// environment the launcher gives each worker (torchrun's RANK, WORLD_SIZE,
// LOCAL_RANK, LOCAL_WORLD_SIZE; anvil's store address, run id and token).
// Tests link anvil_server.
#pragma once

#include <map>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "launcher/server/server.h"

namespace anvil::testing {

class LocalJob {
 public:
  // Starts the server; a non-empty token is required by it and handed to
  // the workers.
  absl::Status Start(std::string run_id, int world_size, std::string token = "") {
    run_id_ = std::move(run_id);
    world_size_ = world_size;
    token_ = std::move(token);
    ServerOptions so;
    so.host = "127.0.0.1";
    so.port = 0;
    so.token = token_;
    absl::StatusOr<int> port = server_.Start(so);
    if (!port.ok()) return port.status();
    port_ = *port;
    return absl::OkStatus();
  }

  // Worker `rank`'s environment, plus `extra` (which wins).
  std::map<std::string, std::string> Env(int rank,
                                         std::map<std::string, std::string> extra = {}) const {
    std::map<std::string, std::string> env{{"RANK", std::to_string(rank)},
                                           {"WORLD_SIZE", std::to_string(world_size_)},
                                           {"LOCAL_RANK", std::to_string(rank)},
                                           {"LOCAL_WORLD_SIZE", std::to_string(world_size_)},
                                           {"ANVIL_STORE_ADDR", absl::StrCat("127.0.0.1:", port_)},
                                           {"ANVIL_RUN_ID", run_id_}};
    if (!token_.empty()) env["ANVIL_TOKEN"] = token_;
    for (auto& [k, v] : extra) env[k] = std::move(v);
    return env;
  }

  void Shutdown() { server_.Shutdown(); }

 private:
  RendezvousServer server_;
  std::string run_id_, token_;
  int world_size_ = 1;
  int port_ = 0;
};

}  // namespace anvil::testing
