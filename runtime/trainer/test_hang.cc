// The test-only hang; see test_hang.h.
#include "runtime/trainer/test_hang.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace anvil {
namespace {

// {rank, step}, or {-1, -1} when unset or malformed.
std::pair<int, int64_t> Target() {
  static const std::pair<int, int64_t> t = [] {
    const char* v = std::getenv(kEnvTestOnlyHangAt);
    if (v == nullptr) return std::pair<int, int64_t>{-1, -1};
    std::vector<std::string> p = absl::StrSplit(v, ':');
    std::pair<int, int64_t> out{-1, -1};
    if (p.size() != 2 || !absl::SimpleAtoi(p[0], &out.first) || !absl::SimpleAtoi(p[1], &out.second)) {
      return std::pair<int, int64_t>{-1, -1};
    }
    return out;
  }();
  return t;
}

}  // namespace

void MaybeHangForTest(int rank, int64_t step) {
  const auto [r, s] = Target();
  if (r != rank || s != step) return;
  std::fprintf(stderr, "train: rank %d: %s: hanging after step %lld (test only)\n", rank, kEnvTestOnlyHangAt,
               static_cast<long long>(step));
  std::fflush(stderr);
  for (;;) absl::SleepFor(absl::Seconds(1));
}

}  // namespace anvil
