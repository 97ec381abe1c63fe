// Two launchers in separate network namespaces joined by a veth pair, so
// their hosts really differ: the one whose namespace owns the endpoint's
// address hosts the server (detected, not configured), the other reaches it
// over the link, and the workers meet through the store across namespaces.
// Skipped where network namespaces cannot be created (not root, no iproute2).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/launcher/launcher_harness.h"

namespace anvil::launcher::testing {
namespace {

int Sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

class LauncherNetns : public ::testing::Test {
 protected:
  void SetUp() override {
    const int id = ::getpid() % 200 + 20;
    a_ = absl::StrCat("anvil_a", ::getpid());
    b_ = absl::StrCat("anvil_b", ::getpid());
    ip_a_ = absl::StrCat("10.231.", id, ".1");
    ip_b_ = absl::StrCat("10.231.", id, ".2");
    const std::string va = absl::StrCat("anv", ::getpid(), "a"), vb = absl::StrCat("anv", ::getpid(), "b");
    if (::geteuid() != 0 || Sh("ip netns add " + a_) != 0) GTEST_SKIP() << "network namespaces unavailable";
    created_ = true;
    ASSERT_EQ(Sh("ip netns add " + b_), 0);
    ASSERT_EQ(Sh(absl::StrCat("ip link add ", va, " type veth peer name ", vb)), 0);
    ASSERT_EQ(Sh(absl::StrCat("ip link set ", va, " netns ", a_, " && ip link set ", vb, " netns ", b_)), 0);
    ASSERT_EQ(Sh(absl::StrCat("ip -n ", a_, " addr add ", ip_a_, "/24 dev ", va, " && ip -n ", b_, " addr add ",
                              ip_b_, "/24 dev ", vb)),
              0);
    ASSERT_EQ(Sh(absl::StrCat("ip -n ", a_, " link set ", va, " up && ip -n ", b_, " link set ", vb, " up && ip -n ",
                              a_, " link set lo up && ip -n ", b_, " link set lo up")),
              0);
    dir_ = absl::StrCat(::testing::TempDir(), "/launcher_netns_", ::getpid());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    if (!created_) return;
    Sh("ip netns del " + a_);
    Sh("ip netns del " + b_);
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  std::string a_, b_, ip_a_, ip_b_, dir_;
  bool created_ = false;
};

TEST_F(LauncherNetns, TwoHostsFormOneJobOverAVethLink) {
  const std::vector<std::string> common = {
      "--nnodes=2", "--nproc_per_node=2", absl::StrCat("--rdzv_endpoint=", ip_a_, ":29400"), "--rdzv_id=netns",
      "--rdzv_conf=join_timeout=15,last_call_timeout=0.5,read_timeout=5"};
  std::vector<std::string> args_a = common, args_b = common;
  args_b.push_back(absl::StrCat("--local_addr=", ip_b_));
  for (auto* args : {&args_a, &args_b}) {
    args->push_back(ANVIL_TEST_WORKER);
    args->push_back("env_store");
    args->push_back(dir_);
  }
  // Port 29400 is free in the fresh namespace whatever runs on the host.
  Process pa(LauncherArgv({"ip", "netns", "exec", a_}, ANVIL_LAUNCHER, args_a),
             ProcessOptions::Log(dir_ + "/a.log"));
  Process pb(LauncherArgv({"ip", "netns", "exec", b_}, ANVIL_LAUNCHER, args_b),
             ProcessOptions::Log(dir_ + "/b.log"));
  for (Process* p : {&pa, &pb}) {
    std::optional<int> code = p->Wait(absl::Seconds(20));
    ASSERT_TRUE(code.has_value()) << p->Output();
    EXPECT_EQ(*code, 0) << p->Output();
  }
  EXPECT_NE(pa.Output().find("hosting the rendezvous"), std::string::npos) << pa.Output();
  EXPECT_EQ(pb.Output().find("hosting the rendezvous"), std::string::npos) << pb.Output();
  for (int r = 0; r < 4; ++r) {
    EXPECT_NE(ReadFile(absl::StrCat(dir_, "/rank_", r)).find("world=4"), std::string::npos) << "rank " << r;
  }
  EXPECT_NE(ReadFile(dir_ + "/rank_2").find("group=1/2"), std::string::npos);
}

}  // namespace
}  // namespace anvil::launcher::testing
