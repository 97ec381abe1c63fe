#!/usr/bin/env bash
# The demo: sets up the machine, builds, tokenizes text every Debian machine
# already has (/usr/share/common-licenses), and trains the default GPT on it
# with 2 ranks (FULL_SHARD) started by the launcher, printing the validation
# loss it reaches. Extra arguments go to `train`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$BUILD_DIR" train tokenize launcher
DATA=data/licenses
if [ ! -f "$DATA/train_000000.bin" ]; then
  "$BUILD_DIR/runtime/data/tokenize" --out_dir "$DATA" --val_fraction 0.1 /usr/share/common-licenses/*
fi
"$BUILD_DIR/launcher/launcher" --standalone --nproc_per_node=2 \
  "$BUILD_DIR/runtime/trainer/train" --threads 1 --batch_size 8 --sharding FULL_SHARD \
  --train_pattern "$DATA/train_*.bin" --val_pattern "$DATA/val_*.bin" "$@"
