// WorkerGroup: the local workers of one attempt, as real processes.
// Each worker is fork/exec'd into its own process group (pgid == pid), with
// stdout/stderr on pipes read by a LogPump, stdin from /dev/null, signal mask
// and dispositions reset, and PR_SET_PDEATHSIG=SIGKILL so it dies with the
// launcher even on kill -9.
// Invariants: a worker's process group is SIGKILLed as soon as its leader is
// seen to exit (observed with WNOWAIT, so the pid cannot be reused before the
// group is killed) and then reaped; Stop() returns only after every worker is
// reaped and every stray descendant (re-parented to the agent, which is a
// child subreaper) is killed; forks happen on the thread that constructed the
// group, which must outlive the workers (PDEATHSIG follows the forking thread).
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "launcher/agent/log_options.h"
#include "launcher/agent/log_pump.h"

namespace anvil::launcher {

struct WorkerSpec {
  int local_rank = 0;
  int rank = 0;
  std::vector<std::string> argv;  // argv[0]: the program, resolved through PATH
  std::vector<std::string> env;   // the complete environment, "KEY=VALUE"
  std::string label;              // "host:rank", the console prefix
  std::string log_dir;            // per-rank dir for stdout.log / stderr.log ("" = none)
  std::string error_file;         // TORCHELASTIC_ERROR_FILE of this worker
};

struct WorkerExit {
  int local_rank = 0;
  int rank = 0;
  pid_t pid = 0;
  int exit_code = -1;  // >= 0 when it exited
  int signal = 0;      // > 0 when a signal killed it
  absl::Time time;     // when the agent saw it exit
  bool ok() const { return exit_code == 0; }
};

enum class GroupState { kRunning, kSucceeded, kFailed };

// Finds `program` the way execvp would (PATH when it has no '/') and checks
// it is an executable regular file. NOT_FOUND: "cannot find program ...".
absl::StatusOr<std::string> ResolveProgram(const std::string& program, const std::string& path_env);

// Makes the calling process a child subreaper, so orphaned descendants of
// workers are re-parented to it and can be cleaned up. Call once at start.
void BecomeSubreaper();

// Kills (SIGKILL) and reaps every child of this process whose pid is not in
// `keep`. Returns how many it killed.
int KillStrayChildren(const std::vector<pid_t>& keep);

class WorkerGroup {
 public:
  explicit WorkerGroup(LogOptions log_options);
  ~WorkerGroup();  // Stop(SIGKILL, 0) if still running
  WorkerGroup(const WorkerGroup&) = delete;
  WorkerGroup& operator=(const WorkerGroup&) = delete;

  // Spawns every worker. If one cannot be started (exec failure), the ones
  // already running are killed and the error names the program and errno.
  absl::Status Start(std::vector<WorkerSpec> specs);

  // Reaps exited workers without blocking and returns the group's state:
  // kFailed as soon as one worker failed, kSucceeded when all exited 0.
  GroupState Poll();

  // Sends `signo` to the process group of every live worker.
  void Signal(int signo);

  // Sends `signo` to every live worker's group, waits up to `grace` for them
  // to exit, then SIGKILLs what is left; returns once all are reaped and the
  // log pump has drained. `cut_short`, polled while waiting, ends the grace
  // period early when it returns true (a second Ctrl-C). Idempotent.
  void Stop(int signo, absl::Duration grace, const std::function<bool()>& cut_short = nullptr);

  // Exits seen so far, in the order they were seen.
  const std::vector<WorkerExit>& exits() const { return exits_; }
  std::vector<pid_t> pids() const;
  int size() const { return static_cast<int>(workers_.size()); }
  const WorkerSpec& spec(int i) const { return workers_[i].spec; }
  std::vector<std::string> StderrTail(int i) const;

 private:
  struct Worker {
    WorkerSpec spec;
    pid_t pid = -1;
    bool running = false;
    int stderr_stream = -1;
  };
  absl::Status Spawn(Worker& w);
  bool ReapOne(Worker& w, bool block);

  LogOptions log_options_;
  std::vector<Worker> workers_;
  std::vector<WorkerExit> exits_;
  std::unique_ptr<LogPump> pump_;
  bool stopped_ = false;
};

}  // namespace anvil::launcher
