// Test helper: a child process whose stdout+stderr go to a file, so a test
// can wait for a line to appear, signal the child (or one of its own
// children) at that moment, time how long it takes to exit, and bound every
// wait (a hang is a failure, never a stuck test).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace anvil::testing {

class ChildProcess {
 public:
  ChildProcess(const std::string& bin, const std::vector<std::string>& args,
               const std::map<std::string, std::string>& env, const std::string& log_path)
      : log_path_(log_path) {
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::setpgid(0, 0);  // its own group: the test can kill all of it
      for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
      std::vector<char*> argv{const_cast<char*>(bin.c_str())};
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(bin.c_str(), argv.data());
      ::_exit(127);
    }
  }
  ~ChildProcess() {
    if (pid_ > 0 && exit_code_ < 0) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  pid_t pid() const { return pid_; }
  std::string Output() const {
    std::ifstream f(log_path_);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  // Polls the output for `text`; false when the child exits first or on timeout.
  bool WaitForText(const std::string& text, double timeout_s) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      if (Output().find(text) != std::string::npos) return true;
      if (Reap(false)) return Output().find(text) != std::string::npos;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return false;
  }
  // Exit code (128 + signal when killed), or -1 on timeout (then killed).
  int Wait(double timeout_s) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      if (Reap(false)) return exit_code_;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ::kill(-pid_, SIGKILL);
    Reap(true);
    return -1;
  }
  // Direct children of this process whose command name is `comm`.
  std::vector<pid_t> Children(const std::string& comm) const {
    std::vector<pid_t> out;
    std::ifstream f("/proc/" + std::to_string(pid_) + "/task/" + std::to_string(pid_) +
                    "/children");
    pid_t c;
    while (f >> c) {
      std::ifstream cf("/proc/" + std::to_string(c) + "/comm");
      std::string name;
      std::getline(cf, name);
      if (name == comm) out.push_back(c);
    }
    return out;
  }

 private:
  bool Reap(bool block) {
    if (exit_code_ >= 0) return true;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
    if (r != pid_) return false;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return true;
  }

  std::string log_path_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

}  // namespace anvil::testing
