// The Store contract, run against every implementation: HashStore,
// PrefixStore over HashStore, GrpcStore over a real loopback server, and
// PrefixStore over GrpcStore. A new Store gets a new entry in kStores.
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "runtime/store/grpc_store.h"
#include "runtime/store/hash_store.h"
#include "runtime/store/prefix_store.h"
#include "runtime/store/store.h"
#include "tests/store/test_server.h"

namespace anvil {
namespace {

// A store plus whatever keeps it alive (a server).
struct StoreUnderTest {
  std::unique_ptr<testing::TestServer> server;
  std::shared_ptr<Store> store;
};

std::shared_ptr<GrpcStore> ConnectGrpc(const testing::TestServer& server) {
  GrpcStoreOptions o;
  o.address = server.address();
  o.run_id = "contract";
  o.token = testing::kTestToken;
  absl::StatusOr<std::unique_ptr<GrpcStore>> s = GrpcStore::Create(o);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::shared_ptr<GrpcStore>(*std::move(s)) : nullptr;
}

StoreUnderTest MakeGrpc() {
  ServerOptions o;
  o.token = testing::kTestToken;
  StoreUnderTest t;
  t.server = testing::StartServer(o);
  t.store = ConnectGrpc(*t.server);
  return t;
}

struct StoreKind {
  const char* name;
  std::function<StoreUnderTest()> make;
};

const StoreKind kStores[] = {
    {"HashStore", [] { return StoreUnderTest{nullptr, std::make_shared<HashStore>()}; }},
    {"PrefixOverHash",
     [] {
       return StoreUnderTest{nullptr,
                             std::make_shared<PrefixStore>("pg0", std::make_shared<HashStore>())};
     }},
    {"GrpcStore", MakeGrpc},
    {"PrefixOverGrpc",
     [] {
       StoreUnderTest t = MakeGrpc();
       t.store = std::make_shared<PrefixStore>("pg0", t.store);
       return t;
     }},
};

class StoreContractTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    sut_ = GetParam().make();
    ASSERT_NE(sut_.store, nullptr);
  }
  Store& store() { return *sut_.store; }
  StoreUnderTest sut_;
};

TEST_P(StoreContractTest, SetThenGetReturnsBytesExactly) {
  std::string value("a\0b\xff", 4);
  ASSERT_TRUE(store().Set("k", value).ok());
  absl::StatusOr<std::string> got = store().Get("k", absl::Seconds(1));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, value);
  ASSERT_TRUE(store().Set("k", "overwritten").ok());
  EXPECT_EQ(*store().Get("k", absl::Seconds(1)), "overwritten");
}

TEST_P(StoreContractTest, GetBlocksUntilAnotherThreadSets) {
  absl::Time start = absl::Now();
  std::thread writer([&] {
    absl::SleepFor(absl::Milliseconds(150));
    ASSERT_TRUE(store().Set("late", "v").ok());
  });
  absl::StatusOr<std::string> got = store().Get("late", absl::Seconds(5));
  writer.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "v");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(140));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

TEST_P(StoreContractTest, InfiniteTimeoutIsAccepted) {
  ASSERT_TRUE(store().Set("forever", "ok").ok());
  EXPECT_EQ(*store().Get("forever", absl::InfiniteDuration()), "ok");
  std::vector<std::string> keys = {"forever"};
  EXPECT_TRUE(store().Wait(keys, absl::InfiniteDuration()).ok());
}

TEST_P(StoreContractTest, GetTimesOutNamingTheKey) {
  absl::Time start = absl::Now();
  absl::StatusOr<std::string> got = store().Get("never_set", absl::Milliseconds(200));
  absl::Duration took = absl::Now() - start;
  ASSERT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded) << got.status();
  EXPECT_NE(got.status().message().find("never_set"), std::string::npos) << got.status();
  EXPECT_GE(took, absl::Milliseconds(180));
  EXPECT_LT(took, absl::Seconds(2));
}

TEST_P(StoreContractTest, WaitNamesOnlyTheMissingKeys) {
  ASSERT_TRUE(store().Set("present", "1").ok());
  std::vector<std::string> keys = {"present", "absent"};
  absl::Status s = store().Wait(keys, absl::Milliseconds(150));
  ASSERT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_NE(s.message().find("absent"), std::string::npos) << s;
  EXPECT_EQ(s.message().find("present"), std::string::npos) << s;
  std::thread writer([&] {
    absl::SleepFor(absl::Milliseconds(100));
    ASSERT_TRUE(store().Set("absent", "2").ok());
  });
  EXPECT_TRUE(store().Wait(keys, absl::Seconds(5)).ok());
  writer.join();
}

TEST_P(StoreContractTest, AddStartsFromZeroAndStoresDecimalText) {
  EXPECT_EQ(*store().Add("ctr", 5), 5);
  EXPECT_EQ(*store().Add("ctr", -7), -2);
  EXPECT_EQ(*store().Get("ctr", absl::Seconds(1)), "-2");
  ASSERT_TRUE(store().Set("text", "abc").ok());
  EXPECT_EQ(store().Add("text", 1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(StoreContractTest, ConcurrentAddsGiveExactTotal) {
  constexpr int kThreads = 16, kAdds = 100;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kAdds; ++i) {
        if (!store().Add("total", t + 1).ok()) failures++;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  // sum over t of (t+1) * kAdds
  EXPECT_EQ(*store().Add("total", 0), kAdds * kThreads * (kThreads + 1) / 2);
}

TEST_P(StoreContractTest, CompareSetSemantics) {
  // Missing key matches an empty `expected`.
  EXPECT_EQ(*store().CompareSet("cas", "", "one"), "one");
  // Mismatch leaves the value and returns it.
  EXPECT_EQ(*store().CompareSet("cas", "zero", "two"), "one");
  EXPECT_EQ(*store().Get("cas", absl::Seconds(1)), "one");
  // Match swaps.
  EXPECT_EQ(*store().CompareSet("cas", "one", "two"), "two");
  // Missing key with non-empty expected: nothing is created.
  EXPECT_EQ(*store().CompareSet("cas_missing", "x", "y"), "");
  EXPECT_EQ(store().Get("cas_missing", absl::Milliseconds(50)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST_P(StoreContractTest, CompareSetElectsExactlyOneWinner) {
  constexpr int kThreads = 8;
  std::atomic<int> winners{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string me = absl::StrCat("rank", t);
      absl::StatusOr<std::string> held = store().CompareSet("leader", "", me);
      if (held.ok() && *held == me) winners++;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(winners.load(), 1);
}

TEST_P(StoreContractTest, DeleteReportsExistence) {
  ASSERT_TRUE(store().Set("d", "x").ok());
  EXPECT_TRUE(*store().Delete("d"));
  EXPECT_FALSE(*store().Delete("d"));
  EXPECT_EQ(store().Get("d", absl::Milliseconds(50)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST_P(StoreContractTest, MultiSetMultiGetKeepOrderAndBlock) {
  std::vector<std::string> keys = {"m2", "m0", "m1"};
  std::vector<std::string> values = {"two", "zero", "one"};
  std::thread writer([&] {
    absl::SleepFor(absl::Milliseconds(100));
    ASSERT_TRUE(store().MultiSet(keys, values).ok());
  });
  absl::StatusOr<std::vector<std::string>> got = store().MultiGet(keys, absl::Seconds(5));
  writer.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, values);
  std::vector<std::string> one_key = {"x"};
  EXPECT_FALSE(store().MultiSet(one_key, values).ok());
}

INSTANTIATE_TEST_SUITE_P(AllStores, StoreContractTest, ::testing::ValuesIn(kStores),
                         [](const ::testing::TestParamInfo<StoreKind>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace anvil
