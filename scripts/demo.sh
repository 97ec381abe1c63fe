#!/usr/bin/env bash
# The demo, in three parts, each started the way a user would:
#  1. GPT: tokenizes text every Debian machine already has
#     (/usr/share/common-licenses) and trains the default GPT on it with 2
#     ranks (FULL_SHARD) started by the launcher, printing the validation
#     loss it reaches. Extra arguments go to this `train`.
#  2. Classifier: trains the small CNN (--model classifier, one process) on
#     Fashion-MNIST (Debian's dataset-fashion-mnist, installed by setup.sh):
#     the quality metric's feature extractor.
#  3. Diffusion: trains a class-conditional UNet (DEMO_MODEL=dit: the DiT)
#     on Fashion-MNIST with 2 ranks through the launcher, draws a sample grid
#     with DDIM (one row per class) and measures the samples with the
#     classifier: Fréchet distance of its features against real test images,
#     the real-vs-real floor, and the conditional accuracy (README,
#     "Diffusion", says how to read them).
# About 6-7 minutes on 2 idle cores after the first build. Outputs under
# DEMO_DIR (default runs/demo), which each run starts afresh; DEMO_DIFFUSION_STEPS
# and DEMO_EVAL_SAMPLES (per class) make part 3 longer or shorter.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
DEMO_DIR=${DEMO_DIR:-runs/demo}
DEMO_MODEL=${DEMO_MODEL:-unet}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$BUILD_DIR" train tokenize launcher sample
TRAIN="$BUILD_DIR/runtime/trainer/train"
LAUNCH=("$BUILD_DIR/launcher/launcher" --standalone --nproc_per_node=2)
SECONDS=0

echo "== 1/3 GPT on /usr/share/common-licenses (2 ranks, FULL_SHARD)"
DATA=data/licenses
if [ ! -f "$DATA/train_000000.bin" ]; then
  "$BUILD_DIR/runtime/data/tokenize" --out_dir "$DATA" --val_fraction 0.1 /usr/share/common-licenses/*
fi
"${LAUNCH[@]}" "$TRAIN" --threads 1 --batch_size 8 --sharding FULL_SHARD --steps 300 \
  --train_pattern "$DATA/train_*.bin" --val_pattern "$DATA/val_*.bin" "$@"

rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"
echo "== 2/3 classifier on Fashion-MNIST (the quality metric's features; ${SECONDS}s so far)"
"$TRAIN" --model classifier --threads 2 --n_embd 64 --batch_size 64 --lr 2e-2 --grad_clip 0 \
  --weight_decay 0 --steps 400 --log_every 100 --eval_every 400 \
  --checkpoint_dir "$DEMO_DIR/classifier"

echo "== 3/3 class-conditional $DEMO_MODEL on Fashion-MNIST (2 ranks; ${SECONDS}s so far)"
case "$DEMO_MODEL" in
  unet) MODEL_FLAGS=(--model unet --unet_channels 16 --unet_channel_mult 1,2,2
                     --unet_attention_res 7) ;;
  dit) MODEL_FLAGS=(--model dit) ;;
  *) echo "demo: DEMO_MODEL must be unet or dit, got '$DEMO_MODEL'" >&2; exit 2 ;;
esac
"${LAUNCH[@]}" "$TRAIN" "${MODEL_FLAGS[@]}" --threads 1 --batch_size 32 --param_dtype bf16 \
  --steps "${DEMO_DIFFUSION_STEPS:-700}" --log_every 50 --eval_every 0 \
  --checkpoint_dir "$DEMO_DIR/$DEMO_MODEL"

echo "== sampling and measuring (${SECONDS}s so far)"
GRID="$DEMO_DIR/$DEMO_MODEL-samples.png"
"$BUILD_DIR/runtime/diffusion/sample" --checkpoint_dir "$DEMO_DIR/$DEMO_MODEL" --out "$GRID" \
  --sampler ddim --steps 50 --guidance 3 --per_class 10 --dtype bf16 \
  --eval --classifier_dir "$DEMO_DIR/classifier" --eval_samples "${DEMO_EVAL_SAMPLES:-10}"
echo "demo: done in ${SECONDS}s; sample grid (one row per class, Fashion-MNIST classes 0-9:" \
  "T-shirt, trouser, pullover, dress, coat, sandal, shirt, sneaker, bag, ankle boot): $GRID"
