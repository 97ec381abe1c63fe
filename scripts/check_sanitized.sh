#!/usr/bin/env bash
# The checking builds, run by scripts/test.sh after the main suite:
#   asan: clang, AddressSanitizer + UndefinedBehaviorSanitizer (no recovery:
#         the first report fails its test) + libFuzzer coverage; runs the
#         whole suite except the tests listed below (each with its reason),
#         then every fuzzer for ANVIL_FUZZ_SECONDS (label fuzz).
#   tsan: clang, ThreadSanitizer (absl::Mutex annotated, tests/tsan/); runs
#         the in-process collectives, store, launcher and sharding tests
#         (not the gRPC ones: see below).
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
        -DANVIL_FUZZ_SECONDS="${ANVIL_FUZZ_SECONDS:-20}"
      ninja -C build-asan
      export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0
      export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
      ctest --test-dir build-asan --output-on-failure --timeout 600 -LE fuzz -E "$ASAN_EXCLUDE"
      ctest --test-dir build-asan --output-on-failure -L fuzz -V
      ;;
    tsan)
      configure build-tsan thread
      # Only the executables of the selected tests' folders.
      targets=$(ninja -C build-tsan -t targets all |
        grep -oE "^tests/(collectives|store|launcher|sharding)/[a-z_0-9]+: CXX_EXECUTABLE_LINKER" |
        cut -d: -f1)
      # shellcheck disable=SC2086
      ninja -C build-tsan $targets
      # The OpenMP runtime and the Debian libraries (Gloo, gRPC, OpenBLAS) are
      # not instrumented: their internals are out of TSan's view.
      export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ignore_noninstrumented_modules=1 suppressions=$PWD/tests/tsan/suppressions.txt"
      # In-process tests only, gRPC left out: Debian's gRPC is not
      # instrumented and hands work between its threads through absl::Mutex
      # inside the library, so every gRPC path (the gRPC store, the
      # rendezvous, multi-process bootstraps, the launcher end to end)
      # reports its own synchronization as races. StreamRace removes event
      # waits on purpose to show the engine computes wrong results without
      # them: a race by design.
      ctest --test-dir build-tsan --output-on-failure --timeout 600 \
        -L '^(collectives|store|sharding|launcher)$' \
        -E '(Grpc|Process|KilledPeer|KillRecovery|CollectiveTrace|StreamRace)'
      ;;
    *) echo "check_sanitized.sh: unknown mode '$mode' (asan or tsan)" >&2; exit 2 ;;
  esac
done
