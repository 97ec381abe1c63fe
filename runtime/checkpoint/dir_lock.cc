// CheckpointDirLock: flock on <dir>/owner plus a text owner record.
#include "runtime/checkpoint/dir_lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "runtime/checkpoint/file_io.h"

namespace anvil::ckpt {
namespace {

struct Owner {
  std::string run_id, host, started;
  int64_t pid = 0;
  int64_t pid_start = 0;  // /proc/<pid>/stat field 22 (clock ticks since boot)
};

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "?";
  return buf;
}

// Start time of a process, 0 when it does not exist (or is unreadable).
int64_t ProcessStart(int64_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return 0;
  std::vector<std::string> fields = absl::StrSplit(stat.substr(close + 2), ' ');
  int64_t start = 0;
  // Field 22 of the whole line is field 20 after "pid (comm) ".
  if (fields.size() < 20 || !absl::SimpleAtoi(fields[19], &start)) return 0;
  return start;
}

std::string Format(const Owner& o) {
  return absl::StrCat("run_id: ", o.run_id, "\nhost: ", o.host, "\npid: ", o.pid,
                      "\npid_start: ", o.pid_start, "\nstarted: ", o.started, "\n");
}

Owner Parse(const std::string& text) {
  Owner o;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    const size_t colon = line.find(": ");
    if (colon == absl::string_view::npos) continue;
    const absl::string_view key = line.substr(0, colon), value = line.substr(colon + 2);
    if (key == "run_id") o.run_id = std::string(value);
    if (key == "host") o.host = std::string(value);
    if (key == "started") o.started = std::string(value);
    if (key == "pid") (void)absl::SimpleAtoi(value, &o.pid);
    if (key == "pid_start") (void)absl::SimpleAtoi(value, &o.pid_start);
  }
  return o;
}

std::string Describe(const Owner& o) {
  return absl::StrCat("run '", o.run_id.empty() ? "(no run id)" : o.run_id, "' on host ", o.host,
                      ", pid ", o.pid, ", started ", o.started);
}

absl::StatusOr<std::string> ReadFd(int fd) {
  std::string text;
  char buf[4096];
  for (off_t off = 0;;) {
    const ssize_t n = ::pread(fd, buf, sizeof(buf), off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError(std::strerror(errno));
    if (n == 0 || text.size() > (64u << 10)) break;
    text.append(buf, static_cast<size_t>(n));
    off += n;
  }
  return text;
}

absl::Status WriteFd(int fd, const std::string& text) {
  if (::ftruncate(fd, 0) != 0) return absl::InternalError(std::strerror(errno));
  for (size_t done = 0; done < text.size();) {
    const ssize_t n = ::pwrite(fd, text.data() + done, text.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::InternalError(std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return absl::InternalError(std::strerror(errno));
  return absl::OkStatus();
}

absl::Status InUse(const std::string& dir, const Owner& o) {
  return absl::FailedPreconditionError(absl::StrCat(
      "--checkpoint_dir ", dir, " is in use by another job: ", Describe(o),
      " (two jobs sharing one checkpoint directory overwrite each other's training; use another "
      "--checkpoint_dir, or --resume_from ", dir, " to start from its checkpoints)"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<CheckpointDirLock>> CheckpointDirLock::Acquire(
    const std::string& dir, const std::string& run_id, std::string* note) {
  const std::string path = JoinPath(dir, kOwnerFileName);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("--checkpoint_dir ", dir, ": cannot open ", path, ": ", std::strerror(errno)));
  }
  auto fail = [fd](absl::Status s) {
    ::close(fd);
    return s;
  };
  absl::StatusOr<std::string> previous = ReadFd(fd);
  if (!previous.ok()) return fail(previous.status());
  const Owner old = Parse(*previous);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) {
      return fail(absl::FailedPreconditionError(
          absl::StrCat("--checkpoint_dir ", dir, ": cannot lock ", path, ": ", std::strerror(errno))));
    }
    // Held: re-read, the holder may have written its record meanwhile.
    absl::StatusOr<std::string> now = ReadFd(fd);
    return fail(InUse(dir, Parse(now.ok() ? *now : *previous)));
  }
  Owner me;
  me.run_id = run_id;
  me.host = HostName();
  me.pid = ::getpid();
  me.pid_start = ProcessStart(me.pid);
  me.started = absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::LocalTimeZone());
  if (old.pid > 0) {
    // flock was free, yet a record is left. On this host the record's
    // process may still run (a filesystem where flock does not bind).
    const bool alive_here = old.host == me.host && old.pid != me.pid &&
                            old.pid_start != 0 && ProcessStart(old.pid) == old.pid_start;
    if (alive_here) return fail(InUse(dir, old));
    if (note != nullptr) {
      *note = absl::StrCat("took over the lock of --checkpoint_dir ", dir, " from ", Describe(old),
                           ": that job is gone");
    }
  }
  const std::string record = Format(me);
  if (absl::Status s = WriteFd(fd, record); !s.ok()) {
    return fail(absl::FailedPreconditionError(
        absl::StrCat("--checkpoint_dir ", dir, ": cannot write ", path, ": ", s.message())));
  }
  return std::unique_ptr<CheckpointDirLock>(new CheckpointDirLock(path, fd, record));
}

CheckpointDirLock::~CheckpointDirLock() {
  // Unlink before unlocking: a job that opens the file after this sees a
  // fresh one, never a record of a job that is gone.
  ::unlink(path_.c_str());
  ::close(fd_);
}

absl::Status CheckDirOwner(const std::string& dir, const std::string& expected) {
  absl::StatusOr<std::string> seen = ReadSmallFile(JoinPath(dir, kOwnerFileName));
  if (!seen.ok() || *seen != expected) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--checkpoint_dir ", dir, ": this rank does not see rank 0's lock record (",
        seen.ok() ? absl::StrCat("it sees ", Describe(Parse(*seen))) : "no owner file",
        "); every rank must see the same shared directory"));
  }
  return absl::OkStatus();
}

}  // namespace anvil::ckpt
