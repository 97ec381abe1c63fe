#include "runtime/checkpoint/fault_point.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"

namespace anvil::ckpt {
namespace {

struct FaultSpec {
  std::string point;  // empty: none
  int64_t step = -1;  // -1: any
  int rank = -1;      // -1: any
};

FaultSpec Parse() {
  FaultSpec f;
  const char* v = std::getenv("ANVIL_CKPT_FAULT");
  if (v == nullptr || *v == '\0') return f;
  const char* restart = std::getenv("TORCHELASTIC_RESTART_COUNT");
  if (restart != nullptr && std::string(restart) != "0") return f;
  std::string s = v;
  if (const size_t colon = s.find(':'); colon != std::string::npos) {
    if (!absl::SimpleAtoi(s.substr(colon + 1), &f.rank)) f.rank = -1;
    s = s.substr(0, colon);
  }
  if (const size_t at = s.find('@'); at != std::string::npos) {
    if (!absl::SimpleAtoi(s.substr(at + 1), &f.step)) f.step = -1;
    s = s.substr(0, at);
  }
  f.point = s;
  return f;
}

const FaultSpec& Spec() {
  static const FaultSpec spec = Parse();
  return spec;
}

}  // namespace

bool DiskFullInjected(int64_t step, int rank) {
  const FaultSpec& f = Spec();
  return f.point == "disk_full" && (f.step < 0 || step >= f.step) && (f.rank < 0 || f.rank == rank);
}

void MaybeFault(std::string_view point, int64_t step, int rank) {
  const FaultSpec& f = Spec();
  if (f.point.empty() || f.point != point) return;
  if (f.step >= 0 && f.step != step) return;
  if (f.rank >= 0 && f.rank != rank) return;
  std::fprintf(stderr, "ANVIL_CKPT_FAULT: killing rank %d at %s (step %lld)\n", rank,
               std::string(point).c_str(), static_cast<long long>(step));
  std::fflush(stderr);
  ::kill(::getpid(), SIGKILL);
  ::_exit(137);  // not reached
}

}  // namespace anvil::ckpt
