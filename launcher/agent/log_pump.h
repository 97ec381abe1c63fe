// LogPump: one thread that reads every worker's stdout/stderr pipe and sends
// each line where LogOptions says: the console with a "[host:rank] " prefix,
// the per-rank file (raw bytes), or both. It also keeps the last lines of
// each worker's stderr for root-cause reports.
// Invariants: a console line is written with one write() under a lock, so
// lines of different workers never interleave mid-line; a partial last line
// is flushed (with a newline) at EOF; Close() returns within its deadline
// even when a stray grandchild still holds a pipe open.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace anvil::launcher {

// Writes `line` (a newline is appended) to fd 1 or 2 under the same lock the
// pumps use, so the agent's own messages never split a worker's line.
void WriteConsoleLine(int fd, const std::string& line);

struct PumpStream {
  int fd = -1;            // read end of the worker's pipe; the pump owns it
  std::string prefix;     // "[host:rank] "
  int console_fd = -1;    // 1, 2 or -1 (not shown)
  int file_fd = -1;       // per-rank log file or -1; the pump owns it
  bool keep_tail = false; // stderr: remember the last lines
};

class LogPump {
 public:
  explicit LogPump(int tail_lines = 20);
  ~LogPump();
  LogPump(const LogPump&) = delete;
  LogPump& operator=(const LogPump&) = delete;

  // Adds a stream and returns its id. Call before Start().
  int Add(PumpStream stream);
  void Start();
  // Waits until every stream reached EOF or `deadline`, then stops the
  // thread and closes every fd. Idempotent.
  void Close(absl::Time deadline);
  // Last lines (oldest first) of stream `id` when keep_tail was set.
  std::vector<std::string> Tail(int id) const;

 private:
  struct Stream {
    PumpStream spec;
    std::string partial;  // bytes after the last newline
    bool eof = false;
    std::deque<std::string> tail;
  };
  void Loop();
  void Consume(Stream& s, const char* data, size_t n);
  void EmitLine(Stream& s, const std::string& line);

  const int tail_lines_;
  std::vector<std::unique_ptr<Stream>> streams_;
  int wake_[2] = {-1, -1};
  std::thread thread_;
  bool started_ = false;
  bool closed_ = false;
  mutable absl::Mutex mu_;  // guards Stream::tail and all_eof_
  bool all_eof_ = false;
};

}  // namespace anvil::launcher
