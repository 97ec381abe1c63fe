#!/usr/bin/env bash
# Sets up a fresh machine (apt packages), builds everything (CPU targets, and
# CUDA targets when a toolkit is present) with -Werror, and runs the whole
# test suite with ctest, then the sanitizer and fuzzing builds
# (check_sanitized.sh). Benchmarks are built but not run.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DANVIL_WERROR=ON >/dev/null
ninja -C "$BUILD_DIR"
# One test at a time: many tests bound how long a fault takes to surface, and
# two multi-process tests sharing 2 cores skew those bounds.
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "${CTEST_JOBS:-1}" --timeout 300
# The checking builds: the suite under ASan + UBSan, the fuzzers (bounded),
# the concurrency-heavy tests under TSan (scripts/check_sanitized.sh).
# ANVIL_CHECKS=0 skips them.
if [ "${ANVIL_CHECKS:-1}" != 0 ]; then
  ./scripts/check_sanitized.sh
fi
