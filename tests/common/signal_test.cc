// The one signal-name parser and the recording signal handler
// (common/signal_names.h, common/signal_flag.h).
#include <atomic>
#include <csignal>

#include "common/signal_flag.h"
#include "common/signal_names.h"
#include "gtest/gtest.h"

namespace anvil {
namespace {

TEST(SignalNamesTest, ParsesNamesAndNumbersBothWays) {
  EXPECT_EQ(*ParseSignal("term"), SIGTERM);
  EXPECT_EQ(*ParseSignal("SIGUSR1"), SIGUSR1);
  EXPECT_EQ(*ParseSignal(" Usr2 "), SIGUSR2);
  EXPECT_EQ(*ParseSignal("15"), 15);
  EXPECT_EQ(*ParseSignal("SIGWINCH"), SIGWINCH);
  for (const char* bad : {"", "NOPE", "0", "-1", "65", "SIG"}) {
    absl::StatusOr<int> s = ParseSignal(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.status().message().find("unknown signal"), std::string::npos) << s.status();
  }
  EXPECT_EQ(SignalName(SIGTERM), "SIGTERM");
  EXPECT_EQ(SignalName(99), "signal 99");
}

std::atomic<int> g_notified{0};
void Notify(int signo) { g_notified.store(signo); }

TEST(SignalFlagTest, RecordsTheSignalAndNotifies) {
  const SignalFlag& flag = SignalFlag::Catch({SIGUSR2, SIGWINCH}, Notify);
  EXPECT_EQ(flag.received(), 0);
  ASSERT_EQ(raise(SIGUSR2), 0);  // would kill the test if not caught
  EXPECT_EQ(flag.received(), SIGUSR2);
  EXPECT_EQ(g_notified.load(), SIGUSR2);
  ASSERT_EQ(raise(SIGWINCH), 0);
  EXPECT_EQ(flag.received(), SIGWINCH);
  // A later flag takes the signal over; the first keeps what it saw.
  const SignalFlag& later = SignalFlag::Catch({SIGUSR2});
  ASSERT_EQ(raise(SIGUSR2), 0);
  EXPECT_EQ(later.received(), SIGUSR2);
  EXPECT_EQ(flag.received(), SIGWINCH);
}

}  // namespace
}  // namespace anvil
