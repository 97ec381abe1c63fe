// Helpers for the launcher end-to-end tests: start `launcher` processes with
// their output in a file, wait for them with a deadline, pick free ports, and
// check that no process a test started outlives it.
// Invariant: every LauncherProc is SIGKILLed (with its process group) and
// reaped by its destructor, so a failing test never leaks processes.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace anvil::launcher::testing {

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A port nothing listens on right now (bound once, then released).
inline int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

inline bool ProcessAlive(pid_t pid) {
  std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (stat.empty()) return false;
  size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

class LauncherProc {
 public:
  // Runs `prefix... launcher args...` with stdout+stderr in `log_path` and
  // `env` added to this process's environment.
  LauncherProc(const std::vector<std::string>& prefix, const std::string& launcher,
               const std::vector<std::string>& args, const std::string& log_path,
               const std::map<std::string, std::string>& env = {})
      : log_path_(log_path) {
    std::vector<std::string> argv = prefix;
    argv.push_back(launcher);
    argv.insert(argv.end(), args.begin(), args.end());
    start_ = absl::Now();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
      std::vector<char*> cargv;
      for (std::string& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      ::execvp(cargv[0], cargv.data());
      ::_exit(127);
    }
  }
  ~LauncherProc() {
    if (!exit_code_.has_value() && pid_ > 0) {
      ::kill(-pid_, SIGKILL);
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  LauncherProc(const LauncherProc&) = delete;
  LauncherProc& operator=(const LauncherProc&) = delete;

  pid_t pid() const { return pid_; }
  // The exit code (128 + signal when signalled), or nullopt on timeout.
  std::optional<int> Wait(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!exit_code_.has_value()) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        took_ = absl::Now() - start_;
        break;
      }
      if (absl::Now() >= deadline) return std::nullopt;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return exit_code_;
  }
  absl::Duration took() const { return took_; }
  std::string output() const { return ReadFile(log_path_); }
  void Signal(int signo) { ::kill(pid_, signo); }

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  absl::Time start_;
  absl::Duration took_;
  std::optional<int> exit_code_;
};

// pids written by test workers as the first word of DIR/pid_* files.
inline std::vector<pid_t> WorkerPids(const std::string& dir) {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename().string().rfind("pid_", 0) != 0) continue;
    std::istringstream in(ReadFile(e.path().string()));
    pid_t p = 0;
    if (in >> p) out.push_back(p);
  }
  return out;
}

}  // namespace anvil::launcher::testing
