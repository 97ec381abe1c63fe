// Which local address the Gloo TCP device binds to, and peers connect to.
// Gloo resolves a host name itself but mishandles a failed lookup
// (getaddrinfo's negative EAI_* codes pass its `!= -1` check and it walks an
// uninitialised list: SIGSEGV). So the choice is made here and Gloo only
// ever receives an interface name or a numeric address that binds.
// Order: `iface` (ANVIL_SOCKET_IFNAME) when set; else `address` (what the
// launcher published for this node); else this host's name. A name that
// does not resolve to an address of this host is an InvalidArgument naming
// what to set, except on a single node, where the loopback serves every
// peer and is used instead (with a note saying so).
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace anvil {

struct DeviceAddressRequest {
  std::string iface;      // a network interface ("eth0"); wins when set
  std::string address;    // an address or name of this host
  std::string host_name;  // this host's name; gethostname() when empty
  bool single_node = false;
};

struct DeviceAddress {
  std::string iface;    // set: bind to this interface's address
  std::string address;  // else: a numeric address of this host
  std::string note;     // non-empty when a fallback was taken
};

absl::StatusOr<DeviceAddress> ChooseDeviceAddress(const DeviceAddressRequest& request);

}  // namespace anvil
