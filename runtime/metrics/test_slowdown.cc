#include "runtime/metrics/test_slowdown.h"

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"

namespace anvil::metrics {
namespace {

struct Slowdown {
  int rank = -1;
  int ms = 0;
};

Slowdown Read() {
  Slowdown s;
  const char* v = std::getenv("ANVIL_TEST_ONLY_SLOW_RANK");
  if (v == nullptr) return s;
  const std::string text = v;
  const size_t colon = text.find(':');
  if (colon == std::string::npos || !absl::SimpleAtoi(text.substr(0, colon), &s.rank) ||
      !absl::SimpleAtoi(text.substr(colon + 1), &s.ms)) {
    return Slowdown{};
  }
  return s;
}

}  // namespace

void TestOnlySlowdown(int rank) {
  static const Slowdown s = Read();
  if (s.rank == rank && s.ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(s.ms));
}

}  // namespace anvil::metrics
