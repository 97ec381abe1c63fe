#!/usr/bin/env bash
# The checking builds, run by scripts/test.sh after the main suite:
#   asan: clang, AddressSanitizer + UndefinedBehaviorSanitizer (no recovery:
#         the first report fails its test) + libFuzzer coverage; runs the
#         whole suite except the tests listed below (each with its reason),
#         then every fuzzer for ANVIL_FUZZ_SECONDS (label fuzz).
#   tsan: clang, ThreadSanitizer; runs the collectives, store, launcher,
#         rendezvous and sharding tests.
# Usage: check_sanitized.sh [asan] [tsan]   (default: both)
# Build folders: build-asan, build-tsan (CUDA off: nvcc does not take the
# sanitizer flags and no GPU runs here), no benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --test
modes=("$@")
[ ${#modes[@]} -eq 0 ] && modes=(asan tsan)

configure() {  # dir sanitizers extra-cmake-args...
  local dir=$1 san=$2
  shift 2
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang \
    -DCMAKE_CXX_COMPILER=clang++ -DANVIL_WERROR=OFF -DANVIL_CUDA=OFF -DANVIL_NATIVE=OFF -DANVIL_BENCH=OFF \
    -DANVIL_SANITIZE="$san" "$@" >/dev/null
}

# Tests that cannot mean anything under a sanitizer, with the reason:
#   peak-RSS and allocation-count assertions measure the sanitizer's shadow
#   memory and its allocator, not ours;
#   the deploy tests run root-only system services (slurmd, network
#   namespaces) whose timing the instrumented binaries' start-up breaks, and
#   they exercise the same binaries the rest of the suite checks;
#   ConditionalQuality trains a UNet for 300 steps to measure sample quality:
#   the shorter training tests run the same code.
ASAN_EXCLUDE='(Memory|Rss|PeakRss|Allocat|deploy_|ConditionalQuality)'

for mode in "${modes[@]}"; do
  case $mode in
    asan)
      configure build-asan address,undefined -DANVIL_FUZZ=ON \
        -DANVIL_FUZZ_SECONDS="${ANVIL_FUZZ_SECONDS:-30}"
      ninja -C build-asan
      export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0
      export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
      ctest --test-dir build-asan --output-on-failure --timeout 600 -LE fuzz -E "$ASAN_EXCLUDE"
      ctest --test-dir build-asan --output-on-failure -L fuzz -V
      ;;
    tsan)
      configure build-tsan thread
      # Only what the selected tests run (their executables, and the train,
      # launcher and rdzv_server binaries the end-to-end tests start).
      targets=$(ninja -C build-tsan -t targets all |
        grep -oE "^tests/(collectives|store|rendezvous|launcher|sharding)/[a-z_0-9]+: CXX_EXECUTABLE_LINKER" |
        cut -d: -f1)
      # shellcheck disable=SC2086
      ninja -C build-tsan $targets runtime/trainer/train launcher/launcher launcher/server/rdzv_server
      export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp"
      ctest --test-dir build-tsan --output-on-failure --timeout 600 \
        -L '^(collectives|store|rendezvous|launcher|launcher_e2e|sharding)$'
      ;;
    *) echo "check_sanitized.sh: unknown mode '$mode' (asan or tsan)" >&2; exit 2 ;;
  esac
done
