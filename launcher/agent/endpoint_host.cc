// Local-address checks; see endpoint_host.h.
#include "launcher/agent/endpoint_host.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace anvil::launcher {
namespace {

std::vector<std::string> Resolve(const std::string& host, std::vector<sockaddr_storage>* raw) {
  addrinfo hints;
  std::memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  std::vector<std::string> out;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) return out;
  for (addrinfo* p = res; p != nullptr; p = p->ai_next) {
    char buf[NI_MAXHOST];
    if (::getnameinfo(p->ai_addr, p->ai_addrlen, buf, sizeof(buf), nullptr, 0, NI_NUMERICHOST) == 0) {
      out.emplace_back(buf);
      if (raw != nullptr) {
        sockaddr_storage ss;
        std::memset(&ss, 0, sizeof(ss));
        std::memcpy(&ss, p->ai_addr, p->ai_addrlen);
        raw->push_back(ss);
      }
    }
  }
  ::freeaddrinfo(res);
  return out;
}

}  // namespace

absl::StatusOr<bool> IsLocalAddress(const std::string& host) {
  std::vector<sockaddr_storage> addrs;
  if (Resolve(host, &addrs).empty()) {
    return absl::NotFoundError(absl::StrCat("cannot resolve host '", host, "'"));
  }
  for (sockaddr_storage& ss : addrs) {
    int fd = ::socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    socklen_t len = ss.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0;
    ::close(fd);
    if (ok) return true;
  }
  return false;
}

bool SameAddress(const std::string& a, const std::string& b) {
  if (a == b) return true;
  std::vector<std::string> ra = Resolve(a, nullptr);
  std::vector<std::string> rb = Resolve(b, nullptr);
  std::set<std::string> sa(ra.begin(), ra.end());
  for (const std::string& x : rb) {
    if (sa.contains(x)) return true;
  }
  return false;
}

std::string ShortHostName() {
  char name[256] = {0};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

std::string LocalHostName() {
  char name[256] = {0};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  addrinfo hints;
  std::memset(&hints, 0, sizeof(hints));
  hints.ai_flags = AI_CANONNAME;
  addrinfo* res = nullptr;
  std::string out = name;
  if (::getaddrinfo(name, nullptr, &hints, &res) == 0) {
    if (res != nullptr && res->ai_canonname != nullptr && std::strchr(res->ai_canonname, '.') != nullptr) {
      out = res->ai_canonname;
    }
    ::freeaddrinfo(res);
  }
  return out;
}

}  // namespace anvil::launcher
