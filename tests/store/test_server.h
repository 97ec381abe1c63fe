// Test helpers shared by the store and rendezvous tests: an in-process
// RendezvousServer on a free loopback port, and a self-signed TLS
// certificate made with the openssl CLI (tests skip TLS when it is missing).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "launcher/server/server.h"

namespace anvil::testing {

inline constexpr char kTestToken[] = "s3cret-token";

struct TestServer {
  std::unique_ptr<RendezvousServer> server = std::make_unique<RendezvousServer>();
  int port = 0;
  std::string address() const { return absl::StrCat("127.0.0.1:", port); }
};

// Starts a server on 127.0.0.1:<free port>; fails the test on error.
inline std::unique_ptr<TestServer> StartServer(ServerOptions options) {
  auto s = std::make_unique<TestServer>();
  options.host = "127.0.0.1";
  options.port = 0;
  absl::StatusOr<int> port = s->server->Start(options);
  EXPECT_TRUE(port.ok()) << port.status();
  s->port = port.ok() ? *port : 0;
  return s;
}

struct SelfSignedCert {
  std::string cert_path;
  std::string key_path;
};

// Writes a self-signed certificate for localhost / 127.0.0.1 into a fresh
// temp dir. Returns false when openssl is unavailable or fails.
inline bool MakeSelfSignedCert(SelfSignedCert& out) {
  if (std::system("command -v openssl > /dev/null 2>&1") != 0) return false;
  std::string dir = absl::StrCat(::testing::TempDir(), "/anvil_tls_", getpid());
  std::filesystem::create_directories(dir);
  out.cert_path = dir + "/cert.pem";
  out.key_path = dir + "/key.pem";
  std::string cmd = absl::StrCat(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost ",
      "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout ", out.key_path, " -out ",
      out.cert_path, " > /dev/null 2>&1");
  return std::system(cmd.c_str()) == 0 && std::filesystem::exists(out.cert_path);
}

}  // namespace anvil::testing
