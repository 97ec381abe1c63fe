#include "runtime/checkpoint/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "xxhash.h"

namespace anvil::ckpt {
namespace {

absl::Status Errno(const std::string& what, const std::string& path, int err = errno) {
  const std::string msg = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(msg);
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(msg);
  return absl::InternalError(msg);
}

XXH3_state_t* NewHashState() {
  XXH3_state_t* s = XXH3_createState();
  XXH3_64bits_reset(s);
  return s;
}

}  // namespace

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

FileWriter::FileWriter(std::string path, int fd, bool direct)
    : path_(std::move(path)), fd_(fd), direct_(direct), state_(NewHashState()) {}

FileWriter::FileWriter(FileWriter&& o) noexcept
    : path_(std::move(o.path_)),
      fd_(o.fd_),
      direct_(o.direct_),
      bytes_(o.bytes_),
      state_(o.state_) {
  o.fd_ = -1;
  o.state_ = nullptr;
}

FileWriter::~FileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (state_ != nullptr) XXH3_freeState(static_cast<XXH3_state_t*>(state_));
}

absl::StatusOr<FileWriter> FileWriter::Create(const std::string& path, bool direct) {
  constexpr int kFlags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
  int fd = -1;
  if (direct) {
    fd = ::open(path.c_str(), kFlags | O_DIRECT, 0644);
    if (fd < 0 && errno != EINVAL) return Errno("cannot create", path);
    direct = fd >= 0;  // EINVAL: the file system has no O_DIRECT
  }
  if (fd < 0) fd = ::open(path.c_str(), kFlags, 0644);
  if (fd < 0) return Errno("cannot create", path);
  return FileWriter(path, fd, direct);
}

void FileWriter::LeaveDirectMode() {
  if (!direct_) return;
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags >= 0) ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT);
  direct_ = false;
}

absl::Status FileWriter::WriteAll(const char* p, size_t left) {
  while (left > 0) {
    const ssize_t w = ::write(fd_, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL && direct_) {  // alignment the device did not take
        LeaveDirectMode();
        continue;
      }
      return Errno("cannot write", path_);
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

absl::Status FileWriter::Write(const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  // The block-aligned head goes straight to the device; a tail (or anything
  // unaligned) goes through the page cache, after which the file stays buffered.
  size_t head = 0;
  if (direct_ && reinterpret_cast<uintptr_t>(p) % kDirectAlignment == 0 &&
      bytes_ % kDirectAlignment == 0) {
    head = n / kDirectAlignment * kDirectAlignment;
  }
  if (head > 0) {
    if (absl::Status s = WriteAll(p, head); !s.ok()) return s;
  }
  if (head < n) {
    LeaveDirectMode();
    if (absl::Status s = WriteAll(p + head, n - head); !s.ok()) return s;
#ifdef __linux__
    // Start writeback of what was just written, so the device works while
    // the next chunk is copied and hashed; Finish()'s fsync waits for less.
    if (n - head >= (1u << 20)) {
      ::sync_file_range(fd_, static_cast<off_t>(bytes_ + head), static_cast<off_t>(n - head),
                        SYNC_FILE_RANGE_WRITE);
    }
#endif
  }
  XXH3_64bits_update(static_cast<XXH3_state_t*>(state_), data, n);
  bytes_ += n;
  return absl::OkStatus();
}

absl::StatusOr<FileDigest> FileWriter::Finish() {
  if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat(path_, " already finished"));
  if (::fsync(fd_) != 0) return Errno("cannot fsync", path_);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return Errno("cannot close", path_);
  return FileDigest{bytes_, XXH3_64bits_digest(static_cast<XXH3_state_t*>(state_))};
}

absl::StatusOr<int> OpenForRead(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open", path);
  return fd;
}

absl::StatusOr<FileDigest> HashFile(const std::string& path, size_t chunk) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open", path);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  XXH3_state_t* st = NewHashState();
  std::vector<char> buf(chunk);
  FileDigest d;
  absl::Status status;
  for (;;) {
    const ssize_t r = ::read(fd, buf.data(), buf.size());
    if (r < 0) {
      if (errno == EINTR) continue;
      status = Errno("cannot read", path);
      break;
    }
    if (r == 0) break;
    // Ask for the next chunk before hashing this one: the device reads while
    // the CPU hashes.
    ::posix_fadvise(fd, static_cast<off_t>(d.bytes + r), static_cast<off_t>(chunk),
                    POSIX_FADV_WILLNEED);
    XXH3_64bits_update(st, buf.data(), static_cast<size_t>(r));
    d.bytes += static_cast<uint64_t>(r);
  }
  d.xxh3 = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  ::close(fd);
  if (!status.ok()) return status;
  return d;
}

absl::Status PreadFull(int fd, void* dst, size_t n, uint64_t offset, const std::string& path) {
  char* p = static_cast<char*>(dst);
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Errno("cannot read", path);
    }
    if (r == 0) {
      return absl::DataLossError(absl::StrCat(path, " ends before byte ", offset + n));
    }
    p += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return absl::OkStatus();
}

absl::Status FsyncPath(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open", path);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return Errno("cannot fsync", path, err);
  return absl::OkStatus();
}

absl::Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return Errno("cannot create", path);
  return absl::OkStatus();
}

absl::Status MakeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return absl::FailedPreconditionError(absl::StrCat("cannot create ", path, ": ", ec.message()));
  if (!std::filesystem::is_directory(path, ec)) {
    return absl::FailedPreconditionError(absl::StrCat("cannot create ", path, ": not a directory"));
  }
  return absl::OkStatus();
}

absl::Status RenamePath(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return Errno(absl::StrCat("cannot rename to ", to, ":"), from);
  }
  return absl::OkStatus();
}

absl::Status RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot remove ", path, ": ", ec.message()));
  return absl::OkStatus();
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

absl::Status WriteFileAtomic(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".tmp";
  {
    auto w = FileWriter::Create(tmp);
    if (!w.ok()) return w.status();
    if (absl::Status s = w->Write(contents.data(), contents.size()); !s.ok()) return s;
    if (auto d = w->Finish(); !d.ok()) return d.status();
  }
  if (absl::Status s = RenamePath(tmp, path); !s.ok()) return s;
  return FsyncPath(std::filesystem::path(path).parent_path().string());
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open", path);
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t r = ::read(fd, buf, sizeof(buf));
    if (r < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return Errno("cannot read", path, err);
    }
    if (r == 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  ::close(fd);
  return out;
}

void EvictFromPageCache(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

}  // namespace anvil::ckpt
