// LogPump implementation; see log_pump.h.
#include "launcher/agent/log_pump.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>

namespace anvil::launcher {
namespace {

// Console writes from every pump go through this lock so that prefixed lines
// from different groups (or the agent's own messages) never interleave.
absl::Mutex console_mu;

void WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;  // console gone: drop, never block the pump
    p += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

void WriteConsoleLine(int fd, const std::string& line) {
  std::string out = line + "\n";
  absl::MutexLock l(&console_mu);
  WriteAll(fd, out.data(), out.size());
}

LogPump::LogPump(int tail_lines) : tail_lines_(tail_lines) {
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) wake_[0] = wake_[1] = -1;
}

LogPump::~LogPump() {
  Close(absl::Now());
  if (wake_[0] >= 0) ::close(wake_[0]);
  if (wake_[1] >= 0) ::close(wake_[1]);
}

int LogPump::Add(PumpStream stream) {
  auto s = std::make_unique<Stream>();
  s->spec = std::move(stream);
  streams_.push_back(std::move(s));
  return static_cast<int>(streams_.size()) - 1;
}

void LogPump::Start() {
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] { Loop(); });
}

void LogPump::Close(absl::Time deadline) {
  if (closed_) return;
  closed_ = true;
  if (started_) {
    {
      absl::MutexLock l(&mu_);
      mu_.AwaitWithDeadline(absl::Condition(&all_eof_), deadline);
    }
    char c = 'q';
    if (::write(wake_[1], &c, 1) < 0) {
    }
    thread_.join();
  }
  for (auto& s : streams_) {
    if (!s->partial.empty()) {
      EmitLine(*s, s->partial);
      s->partial.clear();
    }
    if (s->spec.fd >= 0) ::close(s->spec.fd);
    if (s->spec.file_fd >= 0) ::close(s->spec.file_fd);
    s->spec.fd = s->spec.file_fd = -1;
  }
}

std::vector<std::string> LogPump::Tail(int id) const {
  absl::MutexLock l(&mu_);
  if (id < 0 || id >= static_cast<int>(streams_.size())) return {};
  const auto& t = streams_[id]->tail;
  return std::vector<std::string>(t.begin(), t.end());
}

void LogPump::EmitLine(Stream& s, const std::string& line) {
  if (s.spec.console_fd >= 0) {
    std::string out = s.spec.prefix + line + "\n";
    absl::MutexLock l(&console_mu);
    WriteAll(s.spec.console_fd, out.data(), out.size());
  }
  if (s.spec.keep_tail && tail_lines_ > 0) {
    absl::MutexLock l(&mu_);
    s.tail.push_back(line);
    while (static_cast<int>(s.tail.size()) > tail_lines_) s.tail.pop_front();
  }
}

void LogPump::Consume(Stream& s, const char* data, size_t n) {
  if (s.spec.file_fd >= 0) WriteAll(s.spec.file_fd, data, n);
  s.partial.append(data, n);
  size_t start = 0;
  for (size_t nl; (nl = s.partial.find('\n', start)) != std::string::npos; start = nl + 1) {
    EmitLine(s, s.partial.substr(start, nl - start));
  }
  s.partial.erase(0, start);
  // A worker printing megabytes without a newline must not grow us forever.
  if (s.partial.size() > (1 << 16)) {
    EmitLine(s, s.partial);
    s.partial.clear();
  }
}

void LogPump::Loop() {
  std::vector<pollfd> fds;
  std::vector<Stream*> owners;
  char buf[1 << 15];
  for (;;) {
    fds.clear();
    owners.clear();
    fds.push_back({wake_[0], POLLIN, 0});
    owners.push_back(nullptr);
    for (auto& s : streams_) {
      if (s->eof || s->spec.fd < 0) continue;
      fds.push_back({s->spec.fd, POLLIN, 0});
      owners.push_back(s.get());
    }
    if (fds.size() == 1) {
      absl::MutexLock l(&mu_);
      all_eof_ = true;
    }
    int r = ::poll(fds.data(), fds.size(), -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return;
    if (fds[0].revents & POLLIN) return;  // Close() asked us to stop
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        Consume(*owners[i], buf, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        Stream& s = *owners[i];
        s.eof = true;
        if (!s.partial.empty()) {
          EmitLine(s, s.partial);
          s.partial.clear();
        }
      }
    }
  }
}

}  // namespace anvil::launcher
