// WorkerGroup implementation; see worker_group.h. Everything between fork()
// and execve() in the child is async-signal-safe: the argv/envp arrays, file
// descriptors and paths are all prepared in the parent beforehand.
#include "launcher/agent/worker_group.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace anvil::launcher {
namespace {

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

int OpenLog(const std::string& dir, const char* name) {
  std::string path = absl::StrCat(dir, "/", name);
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

absl::StatusOr<std::string> ResolveProgram(const std::string& program, const std::string& path_env) {
  if (program.empty()) return absl::InvalidArgumentError("empty program name");
  if (program.find('/') != std::string::npos) {
    if (IsExecutableFile(program)) return program;
    if (::access(program.c_str(), F_OK) == 0) {
      return absl::PermissionDeniedError(absl::StrCat("program '", program, "' is not an executable file"));
    }
    return absl::NotFoundError(absl::StrCat("cannot find program '", program, "'"));
  }
  for (absl::string_view dir : absl::StrSplit(path_env.empty() ? "/usr/bin:/bin" : path_env, ':')) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", program);
    if (IsExecutableFile(candidate)) return candidate;
  }
  return absl::NotFoundError(absl::StrCat("cannot find program '", program, "' in PATH"));
}

void BecomeSubreaper() { ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

int KillStrayChildren(const std::vector<pid_t>& keep) {
  const std::set<pid_t> keep_set(keep.begin(), keep.end());
  const pid_t self = ::getpid();
  int killed = 0;
  // A killed stray's own children are re-parented to us in turn; a few passes
  // catch whole trees.
  for (int pass = 0; pass < 8; ++pass) {
    std::vector<pid_t> strays;
    DIR* proc = ::opendir("/proc");
    if (proc == nullptr) return killed;
    while (dirent* e = ::readdir(proc)) {
      pid_t pid = 0;
      if (!absl::SimpleAtoi(e->d_name, &pid) || keep_set.contains(pid)) continue;
      std::ifstream stat_file(absl::StrCat("/proc/", pid, "/stat"));
      std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
      size_t close = stat.rfind(')');
      if (close == std::string::npos) continue;
      std::vector<absl::string_view> f = absl::StrSplit(absl::string_view(stat).substr(close + 2), ' ');
      pid_t ppid = 0;
      if (f.size() > 1 && absl::SimpleAtoi(f[1], &ppid) && ppid == self) strays.push_back(pid);
    }
    ::closedir(proc);
    if (strays.empty()) break;
    for (pid_t p : strays) {
      ::kill(p, SIGKILL);
      ::waitpid(p, nullptr, 0);
      ++killed;
    }
  }
  return killed;
}

WorkerGroup::WorkerGroup(LogOptions log_options) : log_options_(std::move(log_options)) {}

WorkerGroup::~WorkerGroup() { Stop(SIGKILL, absl::ZeroDuration()); }

std::vector<pid_t> WorkerGroup::pids() const {
  std::vector<pid_t> out;
  for (const Worker& w : workers_) {
    if (w.pid > 0) out.push_back(w.pid);
  }
  return out;
}

std::vector<std::string> WorkerGroup::StderrTail(int i) const {
  if (pump_ == nullptr || i < 0 || i >= size()) return {};
  return pump_->Tail(workers_[i].stderr_stream);
}

absl::Status WorkerGroup::Start(std::vector<WorkerSpec> specs) {
  if (!workers_.empty()) return absl::FailedPreconditionError("worker group already started");
  pump_ = std::make_unique<LogPump>(log_options_.stderr_tail_lines);
  workers_.resize(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) workers_[i].spec = std::move(specs[i]);
  for (Worker& w : workers_) {
    absl::Status s = Spawn(w);
    if (!s.ok()) {
      Stop(SIGKILL, absl::ZeroDuration());
      return s;
    }
  }
  pump_->Start();
  return absl::OkStatus();
}

absl::Status WorkerGroup::Spawn(Worker& w) {
  const WorkerSpec& spec = w.spec;
  if (spec.argv.empty()) return absl::InvalidArgumentError("worker has no program");
  std::string path_env;
  for (const std::string& kv : spec.env) {
    if (absl::StartsWith(kv, "PATH=")) path_env = kv.substr(5);
  }
  ASSIGN_OR_RETURN(std::string program, ResolveProgram(spec.argv[0], path_env));

  std::vector<char*> argv, envp;
  for (const std::string& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const std::string& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  int out_file = -1, err_file = -1;
  if (!spec.log_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(spec.log_dir, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot create log dir ", spec.log_dir, ": ", ec.message()));
    out_file = OpenLog(spec.log_dir, "stdout.log");
    err_file = OpenLog(spec.log_dir, "stderr.log");
    if (out_file < 0 || err_file < 0) {
      CloseFd(out_file);
      CloseFd(err_file);
      return Errno(absl::StrCat("cannot open log files in ", spec.log_dir));
    }
  }
  int out[2], err[2], exec_status[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Errno("pipe");
  if (::pipe2(err, O_CLOEXEC) != 0) return Errno("pipe");
  if (::pipe2(exec_status, O_CLOEXEC) != 0) return Errno("pipe");
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid < 0) return Errno("fork");
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (::getppid() != parent) ::_exit(127);  // the launcher died before prctl
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl;
    std::memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; ++s) ::sigaction(s, &dfl, nullptr);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::execve(program.c_str(), argv.data(), envp.data());
    int e = errno;
    if (::write(exec_status[1], &e, sizeof(e)) < 0) {
    }
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here, so the group exists before we signal it
  ::close(out[1]);
  ::close(err[1]);
  ::close(exec_status[1]);
  if (devnull >= 0) ::close(devnull);
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(exec_status[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  ::close(exec_status[0]);
  if (n == sizeof(child_errno)) {
    ::waitpid(pid, nullptr, 0);
    ::close(out[0]);
    ::close(err[0]);
    CloseFd(out_file);
    CloseFd(err_file);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot execute '", spec.argv[0], "': ", std::strerror(child_errno)));
  }
  w.pid = pid;
  w.running = true;
  const int lr = spec.local_rank;
  const bool on_console = log_options_.console_ranks.empty() || log_options_.console_ranks.contains(lr);
  const int redirected = log_options_.redirects.For(lr);
  const std::string prefix = absl::StrCat("[", spec.label, "] ");
  pump_->Add({out[0], prefix, (on_console && !(redirected & kStdOut)) ? 1 : -1, out_file, false});
  w.stderr_stream = pump_->Add({err[0], prefix, (on_console && !(redirected & kStdErr)) ? 2 : -1, err_file, true});
  return absl::OkStatus();
}

bool WorkerGroup::ReapOne(Worker& w, bool block) {
  if (!w.running) return false;
  siginfo_t info;
  std::memset(&info, 0, sizeof(info));
  int flags = WEXITED | WNOWAIT | (block ? 0 : WNOHANG);
  if (::waitid(P_PID, static_cast<id_t>(w.pid), &info, flags) != 0) {
    if (errno == EINTR) return false;
    // ECHILD: someone else reaped it; record an unknown failure.
    w.running = false;
    exits_.push_back({w.spec.local_rank, w.spec.rank, w.pid, -1, 0, absl::Now()});
    return true;
  }
  if (info.si_pid == 0) return false;
  // The leader is a zombie: its pid (== pgid) cannot be reused yet, so this
  // reaches only what is left of its own group.
  ::kill(-w.pid, SIGKILL);
  int status = 0;
  while (::waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
  }
  w.running = false;
  WorkerExit e{w.spec.local_rank, w.spec.rank, w.pid, -1, 0, absl::Now()};
  if (WIFEXITED(status)) e.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) e.signal = WTERMSIG(status);
  exits_.push_back(e);
  return true;
}

GroupState WorkerGroup::Poll() {
  bool any_running = false;
  for (Worker& w : workers_) {
    ReapOne(w, false);
    any_running |= w.running;
  }
  for (const WorkerExit& e : exits_) {
    if (!e.ok()) return GroupState::kFailed;
  }
  return any_running ? GroupState::kRunning : GroupState::kSucceeded;
}

void WorkerGroup::Signal(int signo) {
  for (Worker& w : workers_) {
    if (w.running) ::kill(-w.pid, signo);
  }
}

void WorkerGroup::Stop(int signo, absl::Duration grace, const std::function<bool()>& cut_short) {
  if (stopped_) return;
  stopped_ = true;
  Signal(signo);
  const absl::Time deadline = absl::Now() + grace;
  for (;;) {
    bool any = false;
    for (Worker& w : workers_) {
      ReapOne(w, false);
      any |= w.running;
    }
    if (!any || absl::Now() >= deadline || (cut_short && cut_short())) break;
    absl::SleepFor(absl::Milliseconds(5));
  }
  Signal(SIGKILL);
  for (Worker& w : workers_) {
    while (w.running) ReapOne(w, true);
  }
  if (pump_ != nullptr) pump_->Close(absl::Now() + absl::Milliseconds(500));
}

}  // namespace anvil::launcher
