// Test helper: run a binary as a child process with extra environment
// variables, capture stdout/stderr, optionally signal it once its stdout
// shows some text, and bound the wait (a hang is a test failure).
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace anvil::testing {

struct ProcessResult {
  int exit_code = -1;  // 128 + signal when killed
  std::string out, err;
  bool timed_out = false;
};

class Subprocess {
 public:
  Subprocess(const std::string& bin, const std::vector<std::string>& args,
             const std::map<std::string, std::string>& env = {});
  ~Subprocess();
  // Sends `sig` once stdout contains `text` (at most once).
  void SignalWhen(const std::string& text, int sig);
  // Runs `action` (on the waiting thread) once stdout contains `text`.
  void OnOutput(const std::string& text, std::function<void()> action) {
    trigger_text_ = text;
    trigger_ = std::move(action);
  }
  // Collects output until the child exits or `timeout_s` passes (then SIGKILL).
  ProcessResult Wait(int timeout_s = 60);
  pid_t pid() const { return pid_; }

 private:
  friend std::vector<ProcessResult> RunAll(std::vector<Subprocess*> procs, int timeout_s);
  pid_t pid_ = -1;
  int out_fd_ = -1, err_fd_ = -1;
  std::string trigger_text_;
  std::function<void()> trigger_;
};

// Starts all, waits for all (concurrently draining their pipes).
std::vector<ProcessResult> RunAll(std::vector<Subprocess*> procs, int timeout_s = 60);

inline ProcessResult RunProcess(const std::string& bin, const std::vector<std::string>& args,
                                const std::string& signal_after = "", int sig = 0,
                                int timeout_s = 60) {
  Subprocess p(bin, args);
  if (sig != 0) p.SignalWhen(signal_after, sig);
  return p.Wait(timeout_s);
}

}  // namespace anvil::testing
