// TEST ONLY: makes one rank artificially slow, so that tests of the
// straggler report (tests/metrics/straggler_train_test.cc) have a straggler.
// Set ANVIL_TEST_ONLY_SLOW_RANK=<rank>:<milliseconds>; that rank then sleeps
// that long inside every training step. Unset (every real run), the call is
// a load of a cached flag. Not a tuning knob: never set it outside tests.
#pragma once

namespace anvil::metrics {

// Sleeps when ANVIL_TEST_ONLY_SLOW_RANK names `rank` (read once).
void TestOnlySlowdown(int rank);

}  // namespace anvil::metrics
