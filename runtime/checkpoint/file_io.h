// Durable file I/O for checkpoints: POSIX calls wrapped into absl::Status
// (every error names the path and the errno text), a writer that hashes
// (xxh3) what it writes, whole-file hashing, positioned reads, and the small
// steps of the commit protocol (fsync of a directory, atomic replace).
//
// Invariants: a FileWriter's Finish() returns only after fsync succeeded, so
// "finished" means "on disk"; WriteFileAtomic never leaves a half-written
// target (temp file + fsync + rename + fsync of the directory).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace anvil::ckpt {

struct FileDigest {
  uint64_t bytes = 0;
  uint64_t xxh3 = 0;
};

// Sequential writer of a new file; hashes the bytes as they go out.
// `direct`: block-aligned writes from block-aligned memory bypass the page
// cache (O_DIRECT: no copy, no dirty pages for the kernel to flush while
// training runs); anything unaligned, or a file system without O_DIRECT,
// falls back to buffered writes. Large buffered writes start their writeback
// at once (sync_file_range), so hashing and the next write overlap the
// device's work.
class FileWriter {
 public:
  static constexpr size_t kDirectAlignment = 4096;
  // Creates (truncates) `path`.
  static absl::StatusOr<FileWriter> Create(const std::string& path, bool direct = false);
  FileWriter(FileWriter&& o) noexcept;
  FileWriter& operator=(FileWriter&&) = delete;
  FileWriter(const FileWriter&) = delete;
  ~FileWriter();  // closes without fsync if Finish was not called

  absl::Status Write(const void* data, size_t n);
  // fsync + close. The digest covers every byte written.
  absl::StatusOr<FileDigest> Finish();
  uint64_t bytes() const { return bytes_; }

 private:
  FileWriter(std::string path, int fd, bool direct);
  absl::Status WriteAll(const char* p, size_t n);
  void LeaveDirectMode();
  std::string path_;
  int fd_ = -1;
  bool direct_ = false;
  uint64_t bytes_ = 0;
  void* state_ = nullptr;  // XXH3_state_t
};

// Size and xxh3 of a whole file, read in `chunk`-byte pieces.
absl::StatusOr<FileDigest> HashFile(const std::string& path, size_t chunk = 8u << 20);

// Reads exactly n bytes at `offset` (pread, retried on short reads).
absl::Status PreadFull(int fd, void* dst, size_t n, uint64_t offset, const std::string& path);

// Opens for reading; the caller closes.
absl::StatusOr<int> OpenForRead(const std::string& path);

absl::Status FsyncPath(const std::string& path);  // file or directory
absl::Status MakeDir(const std::string& path);    // ok when it exists
// MakeDir with the missing parents too (mkdir -p): a job's --checkpoint_dir
// may name a folder inside one nobody made yet.
absl::Status MakeDirs(const std::string& path);
absl::Status RenamePath(const std::string& from, const std::string& to);
// Removes a file or a directory tree; ok when absent.
absl::Status RemoveTree(const std::string& path);
bool PathExists(const std::string& path);

// Replaces `path` with `contents` atomically and durably.
absl::Status WriteFileAtomic(const std::string& path, const std::string& contents);
absl::StatusOr<std::string> ReadSmallFile(const std::string& path);

// Drops the file's pages from the page cache (benchmarks: cold reads).
void EvictFromPageCache(const std::string& path);

std::string JoinPath(const std::string& dir, const std::string& name);

}  // namespace anvil::ckpt
