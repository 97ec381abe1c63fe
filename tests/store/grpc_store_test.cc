// The gRPC store service beyond the Store contract: token and run-id checks,
// per-run namespaces, unreachable servers, TLS, and many parked waiters.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "runtime/store/grpc_store.h"
#include "tests/store/test_server.h"

namespace anvil {
namespace {

using testing::kTestToken;
using testing::StartServer;

std::unique_ptr<GrpcStore> Connect(const std::string& address, const std::string& run_id,
                                   const std::string& token) {
  GrpcStoreOptions o;
  o.address = address;
  o.run_id = run_id;
  o.token = token;
  o.connect_timeout = absl::Seconds(5);
  absl::StatusOr<std::unique_ptr<GrpcStore>> s = GrpcStore::Create(o);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

TEST(GrpcStoreTest, WrongTokenIsRefused) {
  ServerOptions o;
  o.token = kTestToken;
  auto server = StartServer(o);
  auto bad = Connect(server->address(), "job", "not-the-token");
  absl::Status s = bad->Set("k", "v");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_NE(s.message().find("wrong token"), std::string::npos) << s;
  auto none = Connect(server->address(), "job", "");
  s = none->Get("k", absl::Seconds(1)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_NE(s.message().find("requires a token"), std::string::npos) << s;
  // Issue 14: the hint names the flags and variable that exist.
  EXPECT_NE(s.message().find("--token, --token_file or ANVIL_TOKEN"), std::string::npos) << s;
  EXPECT_EQ(s.message().find("rdzv_token"), std::string::npos) << s;
  // The refused Set wrote nothing.
  auto good = Connect(server->address(), "job", kTestToken);
  EXPECT_EQ(good->Get("k", absl::Milliseconds(50)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST(GrpcStoreTest, OtherRunIdIsRefused) {
  ServerOptions o;
  o.token = kTestToken;
  o.run_id = "job-1";
  auto server = StartServer(o);
  auto other = Connect(server->address(), "job-2", kTestToken);
  absl::Status s = other->Set("k", "v");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_NE(s.message().find("hosts run 'job-1', not 'job-2'"), std::string::npos) << s;
  EXPECT_TRUE(Connect(server->address(), "job-1", kTestToken)->Set("k", "v").ok());
}

TEST(GrpcStoreTest, KeysAreNamespacedPerRunId) {
  auto server = StartServer(ServerOptions{});  // multi-tenant, no token
  auto a = Connect(server->address(), "run-a", "");
  auto b = Connect(server->address(), "run-b", "");
  ASSERT_TRUE(a->Set("shared_name", "from-a").ok());
  ASSERT_TRUE(b->Set("shared_name", "from-b").ok());
  EXPECT_EQ(*a->Get("shared_name", absl::Seconds(1)), "from-a");
  EXPECT_EQ(*b->Get("shared_name", absl::Seconds(1)), "from-b");
  EXPECT_EQ(*a->Add("n", 1), 1);
  EXPECT_EQ(*b->Add("n", 10), 10);
}

TEST(GrpcStoreTest, UnreachableServerIsOneClearError) {
  GrpcStoreOptions o;
  o.address = "127.0.0.1:1";  // nothing listens on port 1
  o.run_id = "job";
  o.connect_timeout = absl::Milliseconds(300);
  absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<GrpcStore>> s = GrpcStore::Create(o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(s.status().message().find("cannot reach the store at 127.0.0.1:1"), std::string::npos)
      << s.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  // Without the connect check the first call reports it, bounded by its timeout.
  o.connect_timeout = absl::ZeroDuration();
  o.rpc_timeout = absl::Milliseconds(300);
  auto lazy = GrpcStore::Create(o);
  ASSERT_TRUE(lazy.ok());
  absl::Status set = (*lazy)->Set("k", "v");
  EXPECT_EQ(set.code(), absl::StatusCode::kUnavailable) << set;
  EXPECT_NE(set.message().find("cannot reach"), std::string::npos) << set;
}

TEST(GrpcStoreTest, ManyParkedWaitersAllAnswered) {
  // Each blocked Get is parked on the server without a thread; 300 client
  // threads wait at once and are all released by one Set.
  auto server = StartServer(ServerOptions{});
  auto store = Connect(server->address(), "job", "");
  constexpr int kWaiters = 300;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kWaiters; ++i) {
    threads.emplace_back([&] {
      absl::StatusOr<std::string> v = store->Get("go", absl::Seconds(20));
      if (v.ok() && *v == "now") ok++;
    });
  }
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_TRUE(store->Set("go", "now").ok());
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), kWaiters);
}

TEST(GrpcStoreTest, ServerShutdownAnswersParkedWaiters) {
  auto server = StartServer(ServerOptions{});
  auto store = Connect(server->address(), "job", "");
  absl::Status got;
  std::thread waiter([&] { got = store->Get("never", absl::Seconds(30)).status(); });
  absl::SleepFor(absl::Milliseconds(200));
  absl::Time start = absl::Now();
  server->server->Shutdown();
  waiter.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(got.code(), absl::StatusCode::kUnavailable) << got;
}

TEST(GrpcStoreTest, TlsWithSelfSignedCertificate) {
  testing::SelfSignedCert cert;
  if (!testing::MakeSelfSignedCert(cert)) GTEST_SKIP() << "openssl not available";
  ServerOptions o;
  o.token = kTestToken;
  o.tls.cert_chain_path = cert.cert_path;
  o.tls.private_key_path = cert.key_path;
  auto server = StartServer(o);

  GrpcStoreOptions c;
  c.address = server->address();
  c.run_id = "job";
  c.token = kTestToken;
  c.tls.root_cert_path = cert.cert_path;
  c.connect_timeout = absl::Seconds(5);
  absl::StatusOr<std::unique_ptr<GrpcStore>> tls = GrpcStore::Create(c);
  ASSERT_TRUE(tls.ok()) << tls.status();
  ASSERT_TRUE((*tls)->Set("secure", "yes").ok());
  EXPECT_EQ(*(*tls)->Get("secure", absl::Seconds(1)), "yes");

  // A plaintext client cannot talk to the TLS server.
  c.tls = ClientTlsOptions{};
  c.connect_timeout = absl::ZeroDuration();
  c.rpc_timeout = absl::Milliseconds(500);
  auto plain = GrpcStore::Create(c);
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE((*plain)->Set("k", "v").ok());

  // A missing certificate file is reported by name.
  c.tls.root_cert_path = "/nonexistent/ca.pem";
  auto missing = GrpcStore::Create(c);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/ca.pem"), std::string::npos);
}

TEST(GrpcStoreTest, PortInUseFailsStart) {
  auto first = StartServer(ServerOptions{});
  RendezvousServer second;
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = first->port;
  absl::StatusOr<int> port = second.Start(o);
  EXPECT_EQ(port.status().code(), absl::StatusCode::kAlreadyExists) << port.status();
  EXPECT_NE(port.status().message().find("already in use"), std::string::npos) << port.status();
}

}  // namespace
}  // namespace anvil
