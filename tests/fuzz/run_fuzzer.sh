#!/usr/bin/env bash
# One bounded libFuzzer run: writes the target's seeds, fuzzes for SECONDS,
# prints one summary line (executions, corpus size), and fails with the
# crashing input's path and libFuzzer's report when the target fails.
# Usage: run_fuzzer.sh BINARY WORKDIR SECONDS
set -euo pipefail
bin=$1 work=$2 seconds=$3
name=$(basename "$bin")
scratch=/dev/shm/anvil_fuzz_${name}_$$
export ANVIL_FUZZ_SCRATCH=$scratch
trap 'rm -rf "$scratch"' EXIT
rm -rf "$work"
mkdir -p "$work/seeds" "$work/corpus"
ANVIL_FUZZ_SEEDS="$work/seeds" "$bin" >/dev/null 2>&1 || true
if [ -z "$(ls -A "$work/seeds")" ]; then
  echo "$name: wrote no seeds" >&2
  exit 1
fi
rc=0
"$bin" "$work/corpus" "$work/seeds" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
  -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/" >"$work/log" 2>&1 || rc=$?
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/log" | grep -o '[0-9]*$' || echo "?")
corpus=$(ls "$work/corpus" | wc -l)
echo "fuzz $name: $execs executions in ${seconds} s, corpus $corpus inputs, exit $rc"
if [ "$rc" != 0 ]; then
  grep -E "ERROR|SUMMARY|runtime error|==[0-9]+==" "$work/log" | head -20 >&2 || true
  ls "$work"/crash-* "$work"/timeout-* "$work"/oom-* "$work"/leak-* 2>/dev/null >&2 || true
  tail -40 "$work/log" >&2
  exit 1
fi
