// launcher_bench_worker: writes "<pid> <unix micros> <WORLD_SIZE>" to
// DIR/start_<RANK>_<ANVIL_RDZV_ROUND> the moment it runs, then exits 0, or
// (mode "hold") sleeps until killed unless WORLD_SIZE equals argv[3].
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  auto env = [](const char* n) { const char* v = std::getenv(n); return std::string(v ? v : ""); };
  const long long now = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  std::ofstream(std::string(argv[2]) + "/start_" + env("RANK") + "_" + env("ANVIL_RDZV_ROUND"))
      << getpid() << " " << now << " " << env("WORLD_SIZE") << "\n";
  if (std::string(argv[1]) == "hold" && argc > 3 && env("WORLD_SIZE") != argv[3]) {
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  return 0;
}
