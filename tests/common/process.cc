// Process implementation: posix_spawnp with file actions for the output and
// a fresh process group; waits poll with short sleeps or poll(2).
#include "tests/common/process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

extern char** environ;

namespace anvil::testing {
namespace {

std::vector<std::string> Environment(const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq != nullptr) env[std::string(*e, static_cast<size_t>(eq - *e))] = eq + 1;
  }
  for (const auto& [k, v] : extra) env[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

int ExitCode(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

Process::Process(const std::string& bin, const std::vector<std::string>& args,
                 ProcessOptions options)
    : Process(
          [&] {
            std::vector<std::string> argv{bin};
            argv.insert(argv.end(), args.begin(), args.end());
            return argv;
          }(),
          std::move(options)) {}

Process::Process(const std::vector<std::string>& argv_in, ProcessOptions options)
    : log_path_(options.log_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  int out[2] = {-1, -1}, err[2] = {-1, -1};
  if (!log_path_.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  } else {
    if (pipe2(out, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    if (options.quiet) {
      posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    } else if (!options.inherit_stderr) {
      if (pipe2(err, O_CLOEXEC) != 0) return;
      posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
    }
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);  // its own group: Kill() reaches its children
  std::vector<std::string> argv = argv_in;
  std::vector<std::string> envs = Environment(options.env);
  std::vector<char*> argp = Pointers(argv), envp = Pointers(envs);
  start_ = absl::Now();
  if (posix_spawnp(&pid_, argv[0].c_str(), &actions, &attr, argp.data(), envp.data()) != 0) {
    pid_ = -1;
  }
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  for (int fd : {out[1], err[1]}) {
    if (fd >= 0) close(fd);
  }
  out_fd_ = out[0];
  err_fd_ = err[0];
}

Process::~Process() {
  if (pid_ > 0 && !exit_code_.has_value()) {
    Kill();
    ::kill(pid_, SIGKILL);
    Reap(true);
  }
  for (int fd : {out_fd_, err_fd_}) {
    if (fd >= 0) close(fd);
  }
}

void Process::Signal(int signo) const {
  if (pid_ > 0) ::kill(pid_, signo);
}

void Process::Kill() const {
  if (pid_ > 0) ::kill(-pid_, SIGKILL);
}

bool Process::Reap(bool block) {
  if (exit_code_.has_value()) return true;
  if (pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, block ? 0 : WNOHANG) != pid_) return false;
  exit_code_ = ExitCode(status);
  took_ = absl::Now() - start_;
  return true;
}

std::optional<std::string> Process::ReadLine(absl::Time deadline) {
  while (true) {
    const size_t nl = line_buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = line_buffer_.substr(0, nl);
      line_buffer_.erase(0, nl + 1);
      return line;
    }
    const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms <= 0 || out_fd_ < 0) return std::nullopt;
    pollfd p = {out_fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(ms)) <= 0) continue;
    char buf[4096];
    const ssize_t n = read(out_fd_, buf, sizeof(buf));
    if (n <= 0) return std::nullopt;
    line_buffer_.append(buf, static_cast<size_t>(n));
  }
}

void Process::OnOutput(const std::string& text, std::function<void()> action) {
  trigger_text_ = text;
  trigger_ = std::move(action);
}

void Process::SignalWhen(const std::string& text, int sig) {
  OnOutput(text, [this, sig] { Signal(sig); });
}

ProcessResult Process::Finish(int timeout_s) { return RunAll({this}, timeout_s)[0]; }

std::string Process::Output() const { return ReadFile(log_path_); }

bool Process::WaitForText(const std::string& text, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (Output().find(text) != std::string::npos) return true;
    if (Reap(false)) return Output().find(text) != std::string::npos;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return false;
}

std::optional<int> Process::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!Reap(false)) {
    if (pid_ <= 0 || absl::Now() >= deadline) return std::nullopt;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return exit_code_;
}

std::vector<pid_t> Process::Children(const std::string& comm) const {
  std::vector<pid_t> out;
  std::istringstream in(ReadFile(absl::StrCat("/proc/", pid_, "/task/", pid_, "/children")));
  pid_t c;
  while (in >> c) {
    std::string name = ReadFile(absl::StrCat("/proc/", c, "/comm"));
    while (!name.empty() && name.back() == '\n') name.pop_back();
    if (name == comm) out.push_back(c);
  }
  return out;
}

std::vector<ProcessResult> RunAll(std::vector<Process*> procs, int timeout_s) {
  const size_t n = procs.size();
  std::vector<ProcessResult> res(n);
  std::vector<pollfd> fds;
  std::vector<std::pair<size_t, bool>> owner;  // (process, is_stdout)
  for (size_t i = 0; i < n; ++i) {
    for (bool is_out : {true, false}) {
      const int fd = is_out ? procs[i]->out_fd_ : procs[i]->err_fd_;
      if (fd < 0) continue;
      fds.push_back({fd, POLLIN, 0});
      owner.push_back({i, is_out});
    }
  }
  std::vector<bool> triggered(n, false);
  const absl::Time deadline = absl::Now() + absl::Seconds(timeout_s);
  size_t open_fds = fds.size();
  bool timed_out = false;
  while (open_fds > 0) {
    if (absl::Now() > deadline) {
      timed_out = true;
      for (Process* p : procs) p->Kill();
      break;
    }
    if (poll(fds.data(), fds.size(), 100) <= 0) continue;
    for (size_t k = 0; k < fds.size(); ++k) {
      if (fds[k].fd < 0 || !(fds[k].revents & (POLLIN | POLLHUP))) continue;
      char buf[4096];
      const ssize_t got = read(fds[k].fd, buf, sizeof(buf));
      if (got <= 0) {
        fds[k].fd = -1;  // closed by the Process
        --open_fds;
        continue;
      }
      auto [i, is_out] = owner[k];
      (is_out ? res[i].out : res[i].err).append(buf, static_cast<size_t>(got));
      Process* p = procs[i];
      if (p->trigger_ && !triggered[i] && res[i].out.find(p->trigger_text_) != std::string::npos) {
        triggered[i] = true;
        p->trigger_();
      }
    }
  }
  for (size_t i = 0; i < n; ++i) {
    procs[i]->Reap(true);
    res[i].exit_code = procs[i]->exit_code_.value_or(-1);
    res[i].timed_out = timed_out;
  }
  return res;
}

ProcessResult RunProcess(const std::string& bin, const std::vector<std::string>& args,
                         const std::string& signal_after, int sig, int timeout_s) {
  Process p(bin, args);
  if (sig != 0) p.SignalWhen(signal_after, sig);
  return p.Finish(timeout_s);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool ProcessAlive(pid_t pid) {
  const std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  const size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

}  // namespace anvil::testing
