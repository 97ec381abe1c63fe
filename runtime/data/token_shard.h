// TokenShard: a memory-mapped token file in llm.c's format.
//
// Header: 256 little-endian int32; [0] magic, [1] version, [2] token count.
//   magic 20240520, version 1: uint16 tokens;
//   magic 20240801, version 7: uint32 tokens.
// The file is exactly 1024 + count * width bytes. Open() validates all of
// that, and every token against the vocabulary, so a bad file is one clear
// error at start rather than a crash mid-run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace anvil {

inline constexpr int32_t kShardMagicU16 = 20240520;
inline constexpr int32_t kShardMagicU32 = 20240801;
inline constexpr size_t kShardHeaderBytes = 256 * sizeof(int32_t);

class TokenShard {
 public:
  // Maps `path`; checks header, size and that every token is < vocab_size.
  static absl::StatusOr<TokenShard> Open(const std::string& path, int vocab_size);
  TokenShard(TokenShard&& other) noexcept;
  TokenShard& operator=(TokenShard&& other) noexcept;
  TokenShard(const TokenShard&) = delete;
  TokenShard& operator=(const TokenShard&) = delete;
  ~TokenShard();

  size_t size() const { return count_; }
  const std::string& path() const { return path_; }
  int32_t operator[](size_t i) const {
    return width_ == 2 ? static_cast<const uint16_t*>(data_)[i]
                       : static_cast<int32_t>(static_cast<const uint32_t*>(data_)[i]);
  }
  // Copies tokens [begin, begin+n) as int32.
  void Read(size_t begin, size_t n, int32_t* out) const;

 private:
  TokenShard() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  const void* data_ = nullptr;
  size_t count_ = 0;
  int width_ = 2;
};

// Writes a shard atomically (temp file + fsync + rename). uint16 unless a
// token needs more, or `force_u32`.
absl::Status WriteTokenShard(const std::string& path, absl::Span<const uint32_t> tokens,
                             bool force_u32 = false);

// Opens every file matching the glob `pattern` (sorted). Error when none match.
absl::StatusOr<std::vector<TokenShard>> OpenShards(const std::string& pattern, int vocab_size);

}  // namespace anvil
