// ChooseDeviceAddress: getifaddrs for interfaces, getaddrinfo + a trial
// bind(2) for names, so that what is handed to Gloo is known to work.
#include "runtime/collectives/gloo/device_address.h"

#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace anvil {
namespace {

absl::Status CheckInterface(const std::string& iface) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) {
    return absl::InternalError(absl::StrCat("getifaddrs: ", std::strerror(errno)));
  }
  bool found = false;
  std::set<std::string> names;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr) continue;
    const int family = a->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    names.insert(a->ifa_name);
    if (iface == a->ifa_name) found = true;
  }
  freeifaddrs(list);
  if (found) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "ANVIL_SOCKET_IFNAME='", iface, "' is not a network interface with an IP address",
      " (this host has: ", absl::StrJoin(names, ", "), ")"));
}

// The first numeric address of `name` that this host can bind to.
absl::StatusOr<std::string> LocalAddressOf(const std::string& name) {
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  const int rv = getaddrinfo(name.c_str(), nullptr, &hints, &result);
  if (rv != 0) {
    return absl::NotFoundError(
        absl::StrCat("'", name, "' does not resolve (", gai_strerror(rv), ")"));
  }
  std::vector<std::string> tried;
  std::string chosen;
  for (addrinfo* a = result; a != nullptr && chosen.empty(); a = a->ai_next) {
    char host[NI_MAXHOST] = {};
    if (getnameinfo(a->ai_addr, a->ai_addrlen, host, sizeof(host), nullptr, 0, NI_NUMERICHOST) !=
        0) {
      continue;
    }
    const int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    if (bind(fd, a->ai_addr, a->ai_addrlen) == 0) chosen = host;  // port 0 from getaddrinfo
    close(fd);
    tried.push_back(host);
  }
  freeaddrinfo(result);
  if (!chosen.empty()) return chosen;
  return absl::NotFoundError(absl::StrCat("'", name, "' resolves to ", absl::StrJoin(tried, ", "),
                                          ", not an address of this host"));
}

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "";
  return buf;
}

}  // namespace

absl::StatusOr<DeviceAddress> ChooseDeviceAddress(const DeviceAddressRequest& request) {
  DeviceAddress out;
  if (!request.iface.empty()) {
    if (absl::Status s = CheckInterface(request.iface); !s.ok()) return s;
    out.iface = request.iface;
    return out;
  }
  const bool given = !request.address.empty();
  const std::string name = given                        ? request.address
                           : !request.host_name.empty() ? request.host_name
                                                        : HostName();
  absl::StatusOr<std::string> local = LocalAddressOf(name.empty() ? "localhost" : name);
  if (local.ok()) {
    out.address = *local;
    return out;
  }
  const std::string what =
      absl::StrCat(given ? "this node's address " : "host name ", local.status().message());
  if (request.single_node) {
    out.address = "127.0.0.1";
    out.note = absl::StrCat(what, "; every rank is on this host, so collectives use 127.0.0.1");
    return out;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "collectives: ", what,
      "; set ANVIL_SOCKET_IFNAME to the interface peers reach this host on, or ANVIL_LOCAL_ADDR "
      "to an address of this host"));
}

}  // namespace anvil
