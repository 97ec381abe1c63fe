#include "tests/trainer/subprocess.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

namespace anvil::testing {

Subprocess::Subprocess(const std::string& bin, const std::vector<std::string>& args,
                       const std::map<std::string, std::string>& env) {
  int out_pipe[2], err_pipe[2];
  if (pipe(out_pipe) != 0 || pipe(err_pipe) != 0) return;
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    close(out_pipe[0]);
    close(err_pipe[0]);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv{const_cast<char*>(bin.c_str())};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  out_fd_ = out_pipe[0];
  err_fd_ = err_pipe[0];
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

void Subprocess::SignalWhen(const std::string& text, int sig) {
  OnOutput(text, [this, sig] { kill(pid_, sig); });
}

ProcessResult Subprocess::Wait(int timeout_s) { return RunAll({this}, timeout_s)[0]; }

std::vector<ProcessResult> RunAll(std::vector<Subprocess*> procs, int timeout_s) {
  const size_t n = procs.size();
  std::vector<ProcessResult> res(n);
  std::vector<pollfd> fds;
  std::vector<std::pair<size_t, bool>> owner;  // (process, is_stdout)
  for (size_t i = 0; i < n; ++i) {
    fds.push_back({procs[i]->out_fd_, POLLIN, 0});
    owner.push_back({i, true});
    fds.push_back({procs[i]->err_fd_, POLLIN, 0});
    owner.push_back({i, false});
  }
  std::vector<bool> signalled(n, false);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  size_t open_fds = fds.size();
  bool timed_out = false;
  while (open_fds > 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      timed_out = true;
      for (Subprocess* p : procs) kill(p->pid_, SIGKILL);
      break;
    }
    if (poll(fds.data(), fds.size(), 100) <= 0) continue;
    for (size_t k = 0; k < fds.size(); ++k) {
      if (fds[k].fd < 0 || !(fds[k].revents & (POLLIN | POLLHUP))) continue;
      char buf[4096];
      const ssize_t got = read(fds[k].fd, buf, sizeof(buf));
      if (got <= 0) {
        close(fds[k].fd);
        fds[k].fd = -1;
        --open_fds;
        continue;
      }
      auto [i, is_out] = owner[k];
      (is_out ? res[i].out : res[i].err).append(buf, static_cast<size_t>(got));
      Subprocess* p = procs[i];
      if (p->trigger_ && !signalled[i] && res[i].out.find(p->trigger_text_) != std::string::npos) {
        signalled[i] = true;
        p->trigger_();
      }
    }
  }
  for (size_t i = 0; i < n; ++i) {
    for (size_t k = 0; k < fds.size(); ++k) {
      if (owner[k].first == i && fds[k].fd >= 0) close(fds[k].fd);
    }
    int status = 0;
    waitpid(procs[i]->pid_, &status, 0);
    res[i].exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    res[i].timed_out = timed_out;
  }
  return res;
}

}  // namespace anvil::testing
