// SignalWatcher implementation; see signal_watcher.h.
#include "launcher/agent/signal_watcher.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace anvil::launcher {
namespace {

std::atomic<int> g_write_fd{-1};
int g_read_fd = -1;
constexpr unsigned char kWakeByte = 0;

void OnSignal(int signo) {
  const int saved = errno;
  unsigned char b = static_cast<unsigned char>(signo);
  int fd = g_write_fd.load(std::memory_order_relaxed);
  if (fd >= 0 && ::write(fd, &b, 1) < 0) {
  }
  errno = saved;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SignalWatcher>> SignalWatcher::Install(const std::vector<int>& signals) {
  if (g_write_fd.load() >= 0) return absl::FailedPreconditionError("a SignalWatcher is already installed");
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  g_read_fd = p[0];
  g_write_fd.store(p[1]);
  std::unique_ptr<SignalWatcher> w(new SignalWatcher(signals));
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnSignal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  w->previous_.resize(signals.size());
  for (size_t i = 0; i < signals.size(); ++i) ::sigaction(signals[i], &sa, &w->previous_[i]);
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  ::sigaction(SIGCHLD, &sa, &w->previous_chld_);
  struct sigaction ign;
  std::memset(&ign, 0, sizeof(ign));
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ign, &w->previous_pipe_);
  return w;
}

SignalWatcher::SignalWatcher(std::vector<int> signals) : signals_(std::move(signals)) {}

SignalWatcher::~SignalWatcher() {
  for (size_t i = 0; i < signals_.size(); ++i) ::sigaction(signals_[i], &previous_[i], nullptr);
  ::sigaction(SIGCHLD, &previous_chld_, nullptr);
  ::sigaction(SIGPIPE, &previous_pipe_, nullptr);
  int w = g_write_fd.exchange(-1);
  if (w >= 0) ::close(w);
  if (g_read_fd >= 0) ::close(g_read_fd);
  g_read_fd = -1;
}

void SignalWatcher::Wake() {
  unsigned char b = kWakeByte;
  int fd = g_write_fd.load();
  if (fd >= 0 && ::write(fd, &b, 1) < 0) {
  }
}

std::vector<int> SignalWatcher::Wait(absl::Duration timeout) {
  std::vector<int> out;
  pollfd pfd{g_read_fd, POLLIN, 0};
  int ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
  if (::poll(&pfd, 1, ms < 0 ? 0 : ms) <= 0) return out;
  unsigned char buf[64];
  for (;;) {
    ssize_t n = ::read(g_read_fd, buf, sizeof(buf));
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] != kWakeByte && buf[i] != SIGCHLD) out.push_back(buf[i]);
    }
  }
  return out;
}

}  // namespace anvil::launcher
