// Fixture of the multi-process collectives tests: a rendezvous server (the
// gRPC store the worker processes bootstrap through) on a free loopback
// port, for the whole test.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "launcher/server/server.h"

namespace anvil::testing {

class LoopbackServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    absl::StatusOr<int> port = server_.Start(options);
    ASSERT_TRUE(port.ok()) << port.status();
    address_ = absl::StrCat("127.0.0.1:", *port);
  }

  RendezvousServer server_;
  std::string address_;  // "127.0.0.1:port"
};

}  // namespace anvil::testing
