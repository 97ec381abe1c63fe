#!/usr/bin/env bash
# gpu_check.sh: the GPU checks of issue 12 in one script, in two halves.
#
#   scripts/gpu_check.sh pack     # here: build (no -march=native), pack binaries,
#                                 # the shared libraries they need and small data
#   scripts/gpu_check.sh device   # on the lent GPU machine, from the repo root
#
# pack builds into $BUILD_DIR (default build-gpu, ignored by git) with
# ANVIL_NATIVE=OFF, strips the binaries (train, launcher, tokenize,
# train_bench, comm_bench and every GPU test: tests/* targets named
# *cuda*/*nccl*/*gpu*, and device_select_test), copies the shared libraries
# they load that the GPU machine lacks (everything but glibc and CUDA's own:
# the device image has CUDA 13 with cuBLAS, cuDNN and NCCL in PyTorch's
# wheels; libstdc++/libgcc_s go to lib/compat, used only if the machine's are
# too old), OpenBLAS (dlopened, so not in ldd), byte-level shards of
# /usr/share/common-licenses and 4096 Fashion-MNIST images, and writes one
# tarball, $BUILD_DIR/pack/anvil_gpu.tar.xz, sized for the device tool's
# 64 MiB carry. The device tool sends the session's checkout: run pack in
# that checkout, then call the tool's run with
#   command: bash scripts/gpu_check.sh device    carry: ["build-gpu/pack"]   timeout_s: 600
#
# device unpacks the binaries at the absolute paths they were built at (test
# binaries name other binaries and fixtures by build-time path), finds the
# CUDA libraries, and runs within GPU_CHECK_BUDGET_S (default 450 s, under
# the 8 minutes of the issue), each part with its own time cap:
#   1. every packed GPU test binary (gtest; skips count as skips)
#   2. CPU-vs-GPU parity: GPT, Llama, UNet, DiT in fp32 and GPT in bf16 train
#      a few steps with --device cpu and --device cuda from the same seed and
#      data; every step's loss must agree within a tolerance
#   3. a checkpoint round trip on the GPU (save at step 4, resume to 8: the
#      losses must follow the uninterrupted run) and the launcher binding
#      cuda:LOCAL_RANK (--nproc_per_node=gpu)
#   4. train_bench --device cuda: GPT-2 124M bf16 tokens/s and MFU, llm.c's
#      published figure, PyTorch eager and torch.compile on the same GPU
#   5. comm_bench --device cuda (NCCL busbw, one process per GPU)
# and prints one summary (PASS/FAIL/SKIP per check, the bench lines). With
# $OUT set (the device tool), the whole log is also written to $OUT.
# Exit status: 0 when nothing failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

BUILD_DIR=${BUILD_DIR:-build-gpu}
PACK_DIR=$BUILD_DIR/pack
TARBALL=$PACK_DIR/anvil_gpu.tar.xz
CARRY_LIMIT=$((64 * 1024 * 1024))

die() { echo "gpu_check: $*" >&2; exit 2; }

# ---------------------------------------------------------------- pack (here)

gpu_test_targets() {
  ninja -C "$BUILD_DIR" -t targets all |
    sed -n 's#^\(tests/[^:]*\): CXX_EXECUTABLE_LINKER.*#\1#p' |
    grep -E '/[^/]*(cuda|nccl|gpu)[^/]*$' | sed 's#.*/##' | grep -E '^[A-Za-z0-9_]+$'
  echo device_select_test
}

# Shared libraries to pack: the resolved paths ldd prints, minus glibc's and
# CUDA's (the device machine has its own; ours would not match its driver).
needed_libs() {
  ldd "$@" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
    grep -vE '^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libutil\.so|libresolv\.so|libcuda\.so|libcudart|libcublas|libcublasLt|libnccl|libcudnn|libnvidia|libnvrtc|libnvJitLink|libcufft|libcurand|libcusparse|libcusolver)'
}

pack() {
  command -v cmake >/dev/null || die "cmake not found (run scripts/setup.sh)"
  if [[ ! -f $BUILD_DIR/CMakeCache.txt ]]; then
    local launcher=()
    command -v ccache >/dev/null &&
      launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DANVIL_WERROR=ON \
      -DANVIL_NATIVE=OFF "${launcher[@]}" >/dev/null || die "cmake failed"
  fi
  grep -q '^ANVIL_NATIVE:BOOL=OFF' "$BUILD_DIR/CMakeCache.txt" ||
    die "$BUILD_DIR was configured with -march=native; use another BUILD_DIR"
  ninja -C "$BUILD_DIR" -t targets all | grep '^kernels/cuda/libanvil_kernels_cuda.a:' >/dev/null ||
    die "no CUDA toolkit was found for $BUILD_DIR: the GPU targets are not built"
  local tests
  tests=$(gpu_test_targets | sort -u | tr '\n' ' ')
  echo "gpu_check: building train launcher tokenize train_bench comm_bench $tests"
  # shellcheck disable=SC2086
  ninja -C "$BUILD_DIR" -j"${JOBS:-2}" train launcher tokenize train_bench comm_bench $tests ||
    die "build failed"

  local root build_root stage
  root=$(pwd -P)
  build_root=$(cd "$BUILD_DIR" && pwd -P)
  stage=$BUILD_DIR/pack_stage
  rm -rf "$stage" "$PACK_DIR"
  mkdir -p "$stage/build" "$stage/lib/compat" "$stage/data" "$PACK_DIR"

  # Binaries at their build-relative paths, stripped.
  local bins=()
  for t in train launcher tokenize train_bench comm_bench $tests; do
    local rel
    rel=$(ninja -C "$BUILD_DIR" -t targets all |
          sed -n "s#^\(\([^:]*/\)\?$t\): CXX_EXECUTABLE_LINKER.*#\1#p" | head -1)
    [[ -n $rel && -x $BUILD_DIR/$rel ]] || die "built binary for $t not found"
    mkdir -p "$stage/build/$(dirname "$rel")"
    cp "$BUILD_DIR/$rel" "$stage/build/$rel"
    strip --strip-unneeded "$stage/build/$rel"
    bins+=("$BUILD_DIR/$rel")
  done

  # OpenBLAS is dlopened (kernels/cpu/blas.cc): pack it and what it needs.
  local blas
  blas=$(sed -n 's/^ANVIL_OPENBLAS_OMP_LIBRARY:FILEPATH=//p' "$BUILD_DIR/CMakeCache.txt")
  [[ -f $blas ]] || blas=$(ldconfig -p | awk '/libopenblas\.so\.0 /{print $NF; exit}')
  [[ -f $blas ]] || die "OpenBLAS not found"
  cp -L "$blas" "$stage/lib/libopenblas.so.0"
  while read -r name path; do
    case $name in
      libstdc++.so*|libgcc_s.so*) cp -L "$path" "$stage/lib/compat/$name" ;;
      *) cp -L "$path" "$stage/lib/$name" ;;
    esac
  done < <(needed_libs "${bins[@]}" "$blas")

  # Data: byte-level shards and a Fashion-MNIST subset (4096 train images).
  "$BUILD_DIR/runtime/data/tokenize" --out_dir "$stage/data/licenses" --val_fraction 0.1 \
    /usr/share/common-licenses/* >/dev/null || die "tokenize failed"
  python3 - "$stage/data/fmnist" <<'EOF' || die "cannot write the Fashion-MNIST subset"
import gzip, os, struct, sys
src, out, n = "/usr/share/datasets/fashion-mnist", sys.argv[1], 4096
os.makedirs(out, exist_ok=True)
for kind, hdr in (("images-idx3-ubyte", 16), ("labels-idx1-ubyte", 8)):
    raw = gzip.open(f"{src}/train-{kind}.gz").read()
    head = bytearray(raw[:hdr])
    struct.pack_into(">I", head, 4, n)
    item = 784 if hdr == 16 else 1
    with gzip.GzipFile(f"{out}/train-{kind}.gz", "wb", mtime=0) as f:
        f.write(bytes(head) + raw[hdr:hdr + n * item])
EOF

  {
    echo "BUILD_ROOT='$build_root'"
    echo "SRC_ROOT='$root'"
    echo "COMMIT='$(git rev-parse --short HEAD 2>/dev/null)'"
    echo "GPU_TESTS='$tests'"
    echo "PACKED='$(date -u +%FT%TZ)'"
  } >"$stage/MANIFEST"
  tar -C "$stage" -cf - . | xz -6 -T2 >"$TARBALL" || die "tar failed"
  rm -rf "$stage"

  local size tree
  size=$(stat -c %s "$TARBALL")
  tree=$(git ls-files -z | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
  printf 'gpu_check: packed %s: %.1f MiB (+ %.1f MiB of tracked files = %.1f of 64 MiB carry)\n' \
    "$TARBALL" "$(echo "$size / 1048576" | bc -l)" "$(echo "$tree / 1048576" | bc -l)" \
    "$(echo "($size + $tree) / 1048576" | bc -l)"
  ((size + tree < CARRY_LIMIT)) || die "the pack and the tree exceed the 64 MiB carry"
  echo "gpu_check: device run: command 'bash scripts/gpu_check.sh device', carry [\"$PACK_DIR\"]," \
    "timeout_s 600"
}

# ------------------------------------------------------ device (GPU machine)

SUMMARY=()
FAILED=0
note() { SUMMARY+=("$*"); echo "gpu_check: $*"; }
pass() { note "PASS  $*"; }
fail() { note "FAIL  $*"; FAILED=$((FAILED + 1)); }
skip() { note "SKIP  $*"; }

# Seconds a part may run: its cap, or what is left of the budget.
cap() {
  local left=$((DEADLINE - SECONDS))
  ((left < $1)) && echo $((left > 0 ? left : 1)) || echo "$1"
}

# Prints "step loss" pairs from train's step lines.
losses() { sed -n 's/^step *\([0-9]*\)\/[0-9]* | loss \([-0-9.naif]*\) .*/\1 \2/p' "$1"; }

# Compares the step losses of two logs: every step of the first must appear in
# the second within tol * max(1, |loss|). Prints the worst difference.
compare_losses() {
  local a=$1 b=$2 tol=$3
  awk -v tol="$tol" 'NR == FNR {want[$1] = $2; next}
    ($1 in want) {
      d = $2 - want[$1]; if (d < 0) d = -d
      m = want[$1] < 0 ? -want[$1] : want[$1]; if (m < 1) m = 1
      if (d / m > worst) worst = d / m
      if (!(d <= tol * m)) bad++
      n++
    }
    END {printf "%d steps compared, worst relative difference %.2e (tolerance %.0e)", n, worst, tol;
         exit (n == 0 || bad > 0)}' <(losses "$a") <(losses "$b")
}

run_gpu_tests() {
  local t bin log rc passed failed skipped
  for t in $GPU_TESTS; do
    bin=$(find "$BUILD_ROOT/tests" -type f -name "$t" | head -1)
    [[ -x $bin ]] || { fail "test $t: binary not in the pack"; continue; }
    log=$LOGS/test_$t.log
    timeout "$(cap 120)" env ANVIL_TRAIN_BIN="$TRAIN" "$bin" --gtest_color=no >"$log" 2>&1
    rc=$?
    passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    failed=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    skipped=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    local counts="${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
    if ((rc == 0)); then
      pass "test $t: $counts"
    else
      fail "test $t: exit $rc ($counts)$( ((rc == 124)) && echo ', timed out')"
      grep -E '^\[  FAILED  \] [A-Za-z]' "$log" | sort -u | head -5 | sed 's/^/        /'
    fi
    grep -E '^gpu model ' "$log" | sed 's/^/        /'
  done
}

# train on cpu and cuda from the same seed and data; compare every step.
parity() {
  local name=$1 tol=$2
  shift 2
  local common=(--steps 6 --log_every 1 --eval_every 0 --seed 7 --warmup_steps 2 "$@")
  local c=$LOGS/parity_${name}_cpu.log g=$LOGS/parity_${name}_cuda.log
  local threads
  threads=$(nproc)
  ((threads > 8)) && threads=8
  timeout "$(cap 90)" "$TRAIN" --device cpu --threads "$threads" "${common[@]}" >"$c" 2>&1 ||
    { fail "parity $name: the cpu run failed: $(tail -1 "$c")"; return; }
  timeout "$(cap 90)" "$TRAIN" --device cuda "${common[@]}" >"$g" 2>&1 ||
    { fail "parity $name: the cuda run failed: $(tail -1 "$g")"; return; }
  local verdict
  if verdict=$(compare_losses "$c" "$g" "$tol"); then
    pass "parity $name: $verdict"
  else
    fail "parity $name: $verdict"
    paste <(losses "$c") <(losses "$g") | head -6 | sed 's/^/        step loss(cpu) | step loss(cuda): /'
  fi
}

device() {
  DEADLINE=$((SECONDS + ${GPU_CHECK_BUDGET_S:-450}))
  [[ -f $TARBALL ]] || die "$TARBALL not found: run 'scripts/gpu_check.sh pack' and carry $PACK_DIR"
  local work=/tmp/anvil_gpu
  rm -rf "$work" && mkdir -p "$work" && xz -dc "$TARBALL" | tar -C "$work" -xf - ||
    die "cannot unpack $TARBALL"
  # shellcheck disable=SC1091
  source "$work/MANIFEST"
  # Binaries go where they were built: tests name binaries and fixtures by
  # their build-time paths.
  mkdir -p "$BUILD_ROOT" && cp -a "$work/build/." "$BUILD_ROOT/" || die "cannot write $BUILD_ROOT"
  [[ -e $SRC_ROOT ]] || { mkdir -p "$(dirname "$SRC_ROOT")" && ln -s "$(pwd -P)" "$SRC_ROOT"; }
  TRAIN=$BUILD_ROOT/runtime/trainer/train
  LOGS=$work/logs
  mkdir -p "$LOGS"
  local data=$work/data

  # CUDA 13's libraries: the toolkit's, else PyTorch's wheels (nvidia/*/lib).
  local cuda_dirs
  cuda_dirs=$(find /usr/local/cuda*/ /usr/lib/x86_64-linux-gnu /opt /usr/local/lib /usr/lib/python3* \
      \( -name 'libcudart.so.13*' -o -name 'libcublasLt.so.13*' -o -name 'libcublas.so.13*' \
         -o -name 'libnccl.so.2*' -o -name 'libcudnn.so.9*' \) -printf '%h\n' 2>/dev/null |
      awk '!seen[$0]++' | paste -sd:)
  export LD_LIBRARY_PATH=$work/lib${cuda_dirs:+:$cuda_dirs}
  if ldd "$TRAIN" 2>&1 | grep 'GLIBCXX\|libstdc++.so.6 => not found' >/dev/null; then
    LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$work/lib/compat
  fi
  export ANVIL_OPENBLAS_LIBRARY=$work/lib/libopenblas.so.0

  echo "gpu_check: pack of commit $COMMIT (packed $PACKED); $(nvidia-smi -L 2>&1 | head -2 | paste -sd';')"
  echo "gpu_check: CUDA libraries from ${cuda_dirs:-nowhere}"
  local missing
  missing=$(for b in "$TRAIN" "$BUILD_ROOT"/bench/*/*_bench; do ldd "$b"; done 2>&1 |
            grep -E 'not found' | sort -u)
  if [[ -n $missing ]]; then
    fail "libraries: $(echo "$missing" | tr -s ' \t\n' ' ')"
  else
    pass "libraries: every packed binary resolves its shared libraries"
  fi

  # 1. GPU tests.
  run_gpu_tests

  # 2. CPU-vs-GPU parity.
  local tok=(--train_pattern "$data/licenses/train_*.bin" --val_pattern "$data/licenses/val_*.bin"
             --n_layer 2 --n_head 4 --n_embd 128 --max_seq_len 128 --seq_len 128 --batch_size 8)
  local img=(--train_images "$data/fmnist/train-images-idx3-ubyte.gz"
             --train_labels "$data/fmnist/train-labels-idx1-ubyte.gz" --batch_size 16)
  parity gpt 2e-3 --model gpt "${tok[@]}"
  parity llama 2e-3 --model llama --n_kv_head 2 "${tok[@]}"
  parity unet 2e-3 --model unet --unet_channels 16 --unet_channel_mult 1,2,2 \
    --unet_attention_res 7 "${img[@]}"
  parity dit 2e-3 --model dit "${img[@]}"
  parity gpt_bf16 3e-2 --model gpt --param_dtype bf16 "${tok[@]}"

  # 3. Checkpoints on the GPU (device -> host -> device), and the launcher.
  local a=$LOGS/ckpt_a.log b=$LOGS/ckpt_b.log full=$LOGS/ckpt_full.log verdict=""
  local gpt=(--model gpt "${tok[@]}" --log_every 1 --eval_every 0 --seed 7 --warmup_steps 2
             --device cuda --checkpoint_async=false)
  if timeout "$(cap 60)" "$TRAIN" "${gpt[@]}" --checkpoint_dir "$work/ckpt" --steps 4 >"$a" 2>&1 &&
     timeout "$(cap 60)" "$TRAIN" "${gpt[@]}" --checkpoint_dir "$work/ckpt" --steps 8 >"$b" 2>&1 &&
     timeout "$(cap 60)" "$TRAIN" "${gpt[@]}" --steps 8 >"$full" 2>&1; then
    if grep -q '^resumed from' "$b" && verdict=$(compare_losses "$full" "$b" 2e-3); then
      pass "checkpoint on cuda: saved at step 4, resumed to 8; $verdict"
    else
      fail "checkpoint on cuda: ${verdict:-the second run did not resume}"
    fi
  else
    fail "checkpoint on cuda: $(tail -qn1 "$a" "$b" "$full" 2>/dev/null | tail -1)"
  fi
  local l=$LOGS/launcher.log
  if timeout "$(cap 60)" "$BUILD_ROOT/launcher/launcher" --standalone --nproc_per_node=gpu \
       "$TRAIN" --device cuda --model gpt "${tok[@]}" --steps 3 --eval_every 0 >"$l" 2>&1 &&
     grep -q 'cuda:0' "$l"; then
    pass "launcher --nproc_per_node=gpu: worker trained on cuda:0"
  else
    fail "launcher --nproc_per_node=gpu: $(tail -1 "$l")"
  fi

  # 4. train_bench: GPT-2 124M bf16 (fp32 if the device lacks a bf16 op).
  local tb=$LOGS/train_bench.log
  local gpt2=(--device cuda --model gpt --n_layer 12 --n_head 12 --n_embd 768 --seq_len 1024
              --vocab_size 50304 --batch_size 16 --steps 10 --warmup 3
              --torch_script "$(pwd -P)/bench/train/torch_train_bench.py"
              --python "env -u LD_LIBRARY_PATH -u ANVIL_OPENBLAS_LIBRARY python3")
  if ((DEADLINE - SECONDS < 60)); then
    skip "train_bench: out of time"
  else
    local dtype=bf16 extra=() rc
    timeout "$(cap 200)" "$BUILD_ROOT/bench/train/train_bench" "${gpt2[@]}" --dtype bf16 >"$tb" 2>&1
    rc=$?
    if ((rc != 0)) && ! grep -q '^anvil ' "$tb" && ((DEADLINE - SECONDS > 40)); then
      note "        bf16 did not run ($(tail -1 "$tb")): fp32 instead"
      dtype=fp32 extra=(--torch_compile=false)
      timeout "$(cap 120)" "$BUILD_ROOT/bench/train/train_bench" "${gpt2[@]}" --dtype fp32 \
        "${extra[@]}" >"$tb" 2>&1
      rc=$?
    fi
    if grep -q '^train_bench: skipped' "$tb"; then
      skip "$(grep '^train_bench: skipped' "$tb")"
    elif ((rc == 0)); then
      pass "train_bench --device cuda GPT-2 124M $dtype"
    else
      fail "train_bench --device cuda GPT-2 124M $dtype: exit $rc: $(tail -1 "$tb")"
    fi
    while read -r line; do note "        $line"; done < <(grep -E '^(gpu|anvil|llm\.c|torch|ratio)' "$tb")
  fi

  # 5. comm_bench: NCCL through the ProcessGroup vs NCCL direct.
  local cb=$LOGS/comm_bench.log
  if ((DEADLINE - SECONDS < 20)); then
    skip "comm_bench: out of time"
  elif timeout "$(cap 90)" "$BUILD_ROOT/bench/comm/comm_bench" --device cuda --min_bytes 1024 \
         --max_bytes $((256 << 20)) --rounds 5 >"$cb" 2>&1; then
    if grep -q '^comm_bench: skipped' "$cb"; then
      skip "$(grep '^comm_bench: skipped' "$cb")"
    else
      pass "comm_bench --device cuda"
    fi
    while read -r line; do note "        $line"; done < <(grep -E '^(# world|all_reduce|all_gather|reduce_scatter) ' "$cb" |
                                                        awk '/^#/ || $2 >= 16777216')
  else
    fail "comm_bench --device cuda: $(tail -1 "$cb")"
  fi

  echo
  echo "== gpu_check summary (commit $COMMIT, $SECONDS s) =="
  printf '%s\n' "${SUMMARY[@]}"
  echo "== $FAILED failed =="
  if [[ -n ${OUT:-} && -d ${OUT:-} ]]; then
    tar -C "$work" -czf "$OUT/gpu_check_logs.tar.gz" logs 2>/dev/null
  fi
  ((FAILED == 0))
}

case "${1:-}" in
  pack) pack ;;
  device)
    if [[ -n ${OUT:-} && -d ${OUT:-} ]]; then
      device 2>&1 | tee "$OUT/gpu_check.log"
      exit "${PIPESTATUS[0]}"
    fi
    device
    ;;
  *) echo "usage: scripts/gpu_check.sh pack | device" >&2; exit 2 ;;
esac
