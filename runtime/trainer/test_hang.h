// A test-only fault: ANVIL_TEST_ONLY_HANG_AT=RANK:STEP makes rank RANK stop
// making progress after step STEP, outside any collective (it sleeps in
// the training loop), so tests can prove the launcher's hang watchdog
// (--hang_timeout) names it. Unset in every real run; read once.
#pragma once

#include <cstdint>

namespace anvil {

inline constexpr char kEnvTestOnlyHangAt[] = "ANVIL_TEST_ONLY_HANG_AT";

// Never returns on the named rank at the named step; otherwise a no-op.
void MaybeHangForTest(int rank, int64_t step);

}  // namespace anvil
