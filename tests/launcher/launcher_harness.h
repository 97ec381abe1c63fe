// What the launcher end-to-end tests add to the shared child-process
// harness (tests/common/process.h): the launcher's command line, and the
// pid files the test worker (test_worker_main.cc) writes, so a test can
// check that no worker outlives its launcher.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "tests/common/process.h"

namespace anvil::launcher::testing {

using ::anvil::testing::FreePort;
using ::anvil::testing::Process;
using ::anvil::testing::ProcessAlive;
using ::anvil::testing::ProcessOptions;
using ::anvil::testing::ReadFile;

// `prefix... launcher args...` (the prefix: "ip netns exec ns", "env ...").
inline std::vector<std::string> LauncherArgv(const std::vector<std::string>& prefix,
                                             const std::string& launcher,
                                             const std::vector<std::string>& args) {
  std::vector<std::string> argv = prefix;
  argv.push_back(launcher);
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// pids written by test workers as the first word of DIR/pid_* files.
inline std::vector<pid_t> WorkerPids(const std::string& dir) {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename().string().rfind("pid_", 0) != 0) continue;
    std::istringstream in(ReadFile(e.path().string()));
    pid_t p = 0;
    if (in >> p) out.push_back(p);
  }
  return out;
}

}  // namespace anvil::launcher::testing
