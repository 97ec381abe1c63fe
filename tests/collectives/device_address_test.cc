// ChooseDeviceAddress (issue 13: `train` crashed in Gloo when the host name
// did not resolve): every input gives an address that binds or one clear
// error, and GlooProcessGroup::Create returns that error instead of
// crashing.
#include "runtime/collectives/gloo/device_address.h"

#include <memory>
#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "runtime/collectives/gloo/gloo_process_group.h"
#include "runtime/store/hash_store.h"

namespace anvil {
namespace {

// RFC 2606 reserves .invalid: it never resolves.
constexpr char kNoSuchHost[] = "anvil-no-such-host.invalid";

DeviceAddressRequest Request(std::string iface, std::string address, std::string host_name,
                             bool single_node = false) {
  DeviceAddressRequest r;
  r.iface = std::move(iface);
  r.address = std::move(address);
  r.host_name = std::move(host_name);
  r.single_node = single_node;
  return r;
}

TEST(DeviceAddressTest, UnresolvableHostNameIsAClearErrorAcrossNodes) {
  auto got = ChooseDeviceAddress(Request("", "", kNoSuchHost));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(got.status().message().find(kNoSuchHost), std::string::npos) << got.status();
  EXPECT_NE(got.status().message().find("ANVIL_SOCKET_IFNAME"), std::string::npos) << got.status();
}

TEST(DeviceAddressTest, UnresolvableHostNameFallsBackToLoopbackOnOneNode) {
  auto got = ChooseDeviceAddress(Request("", "", kNoSuchHost, true));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->address, "127.0.0.1");
  EXPECT_NE(got->note.find(kNoSuchHost), std::string::npos) << got->note;
}

TEST(DeviceAddressTest, AddressesAndInterfaces) {
  auto loop = ChooseDeviceAddress(Request("", "localhost", ""));
  ASSERT_TRUE(loop.ok()) << loop.status();
  EXPECT_TRUE(loop->address == "127.0.0.1" || loop->address == "::1") << loop->address;
  EXPECT_TRUE(loop->note.empty());
  // 192.0.2.0/24 is TEST-NET-1: resolves (numeric) but is not ours.
  auto foreign = ChooseDeviceAddress(Request("", "192.0.2.7", ""));
  ASSERT_FALSE(foreign.ok());
  EXPECT_NE(foreign.status().message().find("not an address of this host"), std::string::npos)
      << foreign.status();
  auto lo = ChooseDeviceAddress(Request("lo", "", ""));
  ASSERT_TRUE(lo.ok()) << lo.status();
  EXPECT_EQ(lo->iface, "lo");
  auto none = ChooseDeviceAddress(Request("anvil-nope0", "", ""));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("this host has: "), std::string::npos) << none.status();
}

TEST(DeviceAddressTest, GlooGroupReturnsTheErrorInsteadOfCrashing) {
  GlooOptions o;
  o.store = std::make_shared<HashStore>();
  o.rank = 0;
  o.size = 2;
  o.hostname = kNoSuchHost;
  auto pg = GlooProcessGroup::Create(o);
  ASSERT_FALSE(pg.ok());
  EXPECT_EQ(pg.status().code(), absl::StatusCode::kInvalidArgument) << pg.status();
}

}  // namespace
}  // namespace anvil
