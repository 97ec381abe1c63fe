#include "runtime/checkpoint/save_signal.h"

#include <csignal>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace anvil::ckpt {
namespace {

volatile std::sig_atomic_t g_received = 0;

void OnSignal(int sig) { g_received = sig; }

}  // namespace

absl::StatusOr<int> ParseSignalName(const std::string& name) {
  std::string s = absl::AsciiStrToUpper(name);
  if (absl::StartsWith(s, "SIG")) s = s.substr(3);
  int n = 0;
  if (absl::SimpleAtoi(s, &n) && n > 0 && n < 65) return n;
  if (s == "USR1") return SIGUSR1;
  if (s == "USR2") return SIGUSR2;
  if (s == "TERM") return SIGTERM;
  if (s == "INT") return SIGINT;
  if (s == "HUP") return SIGHUP;
  return absl::InvalidArgumentError(absl::StrCat("--save_signal: unknown signal '", name,
                                                 "' (USR1, USR2, TERM, INT, HUP or a number)"));
}

void InstallSaveSignal(int signo) {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(signo, &sa, nullptr);
}

int SaveSignalReceived() { return g_received; }

}  // namespace anvil::ckpt
