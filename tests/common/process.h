// The test harness for child processes, shared by every test that runs a
// real binary (train, launcher, ckpt_tool, collectives_worker, ...): spawn
// with extra environment variables, output to pipes (read line by line, or
// drained for several processes at once) or to a log file (polled for a
// line), signal the child or its whole process group, and bound every wait
// (a hang is a test failure, never a stuck test).
// Invariants: children are started with posix_spawn (no code runs between
// fork and exec, so the test's own threads, e.g. a gRPC server, are never
// half-copied into a child) in a process group of their own; the destructor
// SIGKILLs that group and reaps the child unless it was already reaped, so
// a failing test leaves no process behind.
#pragma once

#include <sys/types.h>

#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace anvil::testing {

struct ProcessOptions {
  ProcessOptions() = default;
  // Implicit, so that a call can pass just the environment: `{{"K", "V"}}`.
  ProcessOptions(std::map<std::string, std::string> e) : env(std::move(e)) {}         // NOLINT
  ProcessOptions(std::initializer_list<std::pair<const std::string, std::string>> e)  // NOLINT
      : env(e) {}

  std::map<std::string, std::string> env;  // added to this process's environment
  std::string log_path;                    // stdout and stderr go to this file; empty: two pipes
  bool quiet = false;                      // pipes: stderr to /dev/null instead
  bool inherit_stderr = false;             // pipes: stderr to the test's own stderr

  static ProcessOptions Log(std::string path, std::map<std::string, std::string> env = {}) {
    ProcessOptions o;
    o.env = std::move(env);
    o.log_path = std::move(path);
    return o;
  }
};

struct ProcessResult {
  int exit_code = -1;  // 128 + signal when killed
  std::string out, err;
  bool timed_out = false;
};

class Process {
 public:
  // argv[0] is a path, or a name looked up on PATH ("ip").
  explicit Process(const std::vector<std::string>& argv, ProcessOptions options = {});
  Process(const std::string& bin, const std::vector<std::string>& args,
          ProcessOptions options = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  void Signal(int signo) const;  // to the child only
  void Kill() const;             // SIGKILL to its whole process group

  // Pipes: the next line of stdout, or nullopt at EOF or the deadline.
  std::optional<std::string> ReadLine(absl::Time deadline);
  // Pipes: drains stdout and stderr until the child exits or `timeout_s`
  // passes (then its group is killed), and reaps it.
  ProcessResult Finish(int timeout_s = 60);
  // Pipes, for Finish/RunAll: runs `action` once stdout contains `text`.
  void OnOutput(const std::string& text, std::function<void()> action);
  // Sends `sig` once stdout contains `text` (at most once).
  void SignalWhen(const std::string& text, int sig);

  // Log file: its contents so far.
  std::string Output() const;
  // Log file: true once it contains `text`; false when the child exits
  // without it or `timeout` passes.
  bool WaitForText(const std::string& text, absl::Duration timeout);

  // Exit code (128 + signal when killed); nullopt while still running at
  // the deadline (it keeps running; the destructor kills it).
  std::optional<int> Wait(absl::Duration timeout);
  absl::Duration took() const { return took_; }  // start to exit, once reaped

  // Direct children whose command name is `comm`.
  std::vector<pid_t> Children(const std::string& comm) const;

 private:
  friend std::vector<ProcessResult> RunAll(std::vector<Process*> procs, int timeout_s);
  bool Reap(bool block);

  pid_t pid_ = -1;
  int out_fd_ = -1, err_fd_ = -1;
  std::string log_path_;
  std::string line_buffer_;
  absl::Time start_;
  absl::Duration took_;
  std::optional<int> exit_code_;
  std::string trigger_text_;
  std::function<void()> trigger_;
};

// Drains the pipes of all (concurrently) until all exit or `timeout_s`
// passes (then all are killed), and reaps them.
std::vector<ProcessResult> RunAll(std::vector<Process*> procs, int timeout_s = 60);

// Runs `bin args` to its end (pipes); signals it with `sig` once stdout
// shows `signal_after` when `sig` != 0.
ProcessResult RunProcess(const std::string& bin, const std::vector<std::string>& args,
                         const std::string& signal_after = "", int sig = 0, int timeout_s = 60);

std::string ReadFile(const std::string& path);
// A loopback port nothing listens on right now (bound once, then released).
int FreePort();
// True while `pid` exists and is not a zombie.
bool ProcessAlive(pid_t pid);

}  // namespace anvil::testing
