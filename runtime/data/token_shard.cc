#include "runtime/data/token_shard.h"

#include <fcntl.h>
#include <glob.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace anvil {

TokenShard::TokenShard(TokenShard&& o) noexcept { *this = std::move(o); }

TokenShard& TokenShard::operator=(TokenShard&& o) noexcept {
  if (this != &o) {
    if (map_ != nullptr) munmap(map_, map_bytes_);
    path_ = std::move(o.path_);
    map_ = std::exchange(o.map_, nullptr);
    map_bytes_ = std::exchange(o.map_bytes_, 0);
    data_ = std::exchange(o.data_, nullptr);
    count_ = std::exchange(o.count_, 0);
    width_ = o.width_;
  }
  return *this;
}

TokenShard::~TokenShard() {
  if (map_ != nullptr) munmap(map_, map_bytes_);
}

absl::StatusOr<TokenShard> TokenShard::Open(const std::string& path, int vocab_size) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", strerror(errno)));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  const size_t bytes = static_cast<size_t>(st.st_size);
  if (bytes < kShardHeaderBytes) {
    close(fd);
    return absl::DataLossError(absl::StrCat(path, ": truncated: ", bytes,
                                            " bytes, shorter than the 1024-byte header"));
  }
  void* map = mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (map == MAP_FAILED) {
    return absl::InternalError(absl::StrCat(path, ": mmap failed: ", strerror(errno)));
  }
  TokenShard shard;
  shard.path_ = path;
  shard.map_ = map;
  shard.map_bytes_ = bytes;
  int32_t header[3];
  std::memcpy(header, map, sizeof(header));
  if (header[0] == kShardMagicU16 && header[1] == 1) {
    shard.width_ = 2;
  } else if (header[0] == kShardMagicU32 && header[1] == 7) {
    shard.width_ = 4;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": not a token shard: magic ", header[0], " version ", header[1], " (expected ",
        kShardMagicU16, " v1 or ", kShardMagicU32, " v7)"));
  }
  if (header[2] < 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": negative token count ", header[2]));
  }
  shard.count_ = static_cast<size_t>(header[2]);
  const size_t expected = kShardHeaderBytes + shard.count_ * shard.width_;
  if (bytes != expected) {
    return absl::DataLossError(absl::StrCat(path, ": truncated or padded: header says ",
                                            shard.count_, " tokens (", expected,
                                            " bytes) but the file has ", bytes, " bytes"));
  }
  shard.data_ = static_cast<const char*>(map) + kShardHeaderBytes;
  // Validate every token once, here, so training never sees an id >= vocab.
  uint32_t max_token = 0;
  size_t max_at = 0;
  for (size_t i = 0; i < shard.count_; ++i) {
    const uint32_t t = static_cast<uint32_t>(shard[i]);
    if (t > max_token) {
      max_token = t;
      max_at = i;
    }
  }
  if (shard.count_ > 0 && max_token >= static_cast<uint32_t>(vocab_size)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": token id ", max_token, " at index ",
                                                   max_at, " >= vocab size ", vocab_size));
  }
  return shard;
}

void TokenShard::Read(size_t begin, size_t n, int32_t* out) const {
  if (width_ == 2) {
    const uint16_t* p = static_cast<const uint16_t*>(data_) + begin;
    for (size_t i = 0; i < n; ++i) out[i] = p[i];
  } else {
    std::memcpy(out, static_cast<const uint32_t*>(data_) + begin, n * sizeof(int32_t));
  }
}

absl::Status WriteTokenShard(const std::string& path, absl::Span<const uint32_t> tokens,
                             bool force_u32) {
  uint32_t max_token = 0;
  for (uint32_t t : tokens) max_token = std::max(max_token, t);
  const bool u32 = force_u32 || max_token > 0xffff;
  if (tokens.size() > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": too many tokens for one shard"));
  }
  int32_t header[256] = {};
  header[0] = u32 ? kShardMagicU32 : kShardMagicU16;
  header[1] = u32 ? 7 : 1;
  header[2] = static_cast<int32_t>(tokens.size());
  std::vector<char> body;
  if (u32) {
    body.resize(tokens.size() * 4);
    std::memcpy(body.data(), tokens.data(), body.size());
  } else {
    body.resize(tokens.size() * 2);
    uint16_t* p = reinterpret_cast<uint16_t*>(body.data());
    for (size_t i = 0; i < tokens.size(); ++i) p[i] = static_cast<uint16_t>(tokens[i]);
  }
  const std::string tmp = path + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat(tmp, ": cannot create: ", strerror(errno)));
  auto write_all = [&](const void* buf, size_t n) -> bool {
    const char* c = static_cast<const char*>(buf);
    while (n > 0) {
      const ssize_t w = write(fd, c, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      c += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  };
  const bool ok = write_all(header, sizeof(header)) && write_all(body.data(), body.size()) &&
                  fsync(fd) == 0;
  const int saved_errno = errno;
  close(fd);
  if (!ok) {
    unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat(tmp, ": write failed: ", strerror(saved_errno)));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat(path, ": rename failed: ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TokenShard>> OpenShards(const std::string& pattern, int vocab_size) {
  glob_t g{};
  const int rc = glob(pattern.c_str(), 0, nullptr, &g);
  if (rc != 0) {
    globfree(&g);
    return absl::NotFoundError(absl::StrCat(pattern, ": no token shard matches"));
  }
  std::vector<std::string> paths(g.gl_pathv, g.gl_pathv + g.gl_pathc);
  globfree(&g);
  std::vector<TokenShard> shards;
  for (const std::string& p : paths) {
    ASSIGN_OR_RETURN(TokenShard s, TokenShard::Open(p, vocab_size));
    shards.push_back(std::move(s));
  }
  return shards;
}

}  // namespace anvil
