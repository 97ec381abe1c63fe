#!/usr/bin/env bash
# Proves the Dockerfile without a Docker engine: makes a clean Debian 12 root
# with debootstrap (standing in for FROM debian:bookworm), then performs the
# Dockerfile's own instructions in it, read from the file (ARG, ENV, WORKDIR,
# COPY honouring .dockerignore, shell-form RUN under chroot), checks that every
# tool is on PATH and trains a small GPT with 2 ranks through the launcher
# inside the root. Prints how long each part took.
#
#   sudo scripts/check_image_recipe.sh [--build-arg NAME=VALUE]... [--keep]
#
# A full build from nothing: 498 s and 864 s on 2 cores shared with other
# jobs (debootstrap ~105 s, setup.sh ~95 s, build 294-664 s, training 4 s),
# so it is not part of CI. Needs root, debootstrap (apt-get install
# debootstrap) and the
# Debian mirror configured in /etc/apt/sources.list*. The root lives in
# $IMAGE_ROOT (default /var/tmp/anvil-image-root), removed at the end unless
# --keep. Mounts are made in a private mount namespace, so they vanish with it.
set -euo pipefail
cd "$(dirname "$0")/.."
CONTEXT=$PWD

declare -A BUILD_ARGS=()
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build-arg) BUILD_ARGS["${2%%=*}"]="${2#*=}"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) echo "check_image_recipe: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" != 0 ]; then
  echo "check_image_recipe: needs root (debootstrap, chroot, mounts)" >&2; exit 2
fi
command -v debootstrap >/dev/null || { echo "check_image_recipe: debootstrap missing (apt-get install debootstrap)" >&2; exit 2; }

# Re-enter in a private mount namespace: /proc, /dev and /sys inside the root
# are unmounted by the kernel however this script ends.
if [ -z "${ANVIL_RECIPE_NS:-}" ]; then
  ANVIL_RECIPE_NS=1 exec unshare -m --propagation private "$0" "$@"
fi

ROOT=${IMAGE_ROOT:-/var/tmp/anvil-image-root}
cleanup() {
  local rc=$?
  for m in sys dev/pts dev proc; do umount -l "$ROOT/$m" 2>/dev/null || true; done
  if [ "$KEEP" = 0 ]; then rm -rf "$ROOT"; fi
  if [ "$KEEP" = 0 ] && [ "$rc" = 0 ]; then rm -f "$ROOT.debootstrap.log" "$ROOT.train.log"; fi
}
trap cleanup EXIT

# The Debian mirror the host uses (deb822 URIs: or one-line deb entries).
MIRROR=$({ cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null || true; } |
  awk '/^URIs:/ && $2 !~ /security/ {print $2; exit} /^deb / && $0 !~ /security/ {for (i=2;i<=NF;i++) if ($i ~ /^http/) {print $i; exit}}')
MIRROR=${MIRROR:-http://deb.debian.org/debian}

SECONDS=0
rm -rf "$ROOT"
mkdir -p "$ROOT"
echo "check_image_recipe: debootstrap bookworm from $MIRROR into $ROOT"
debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >"$ROOT.debootstrap.log" 2>&1 ||
  { tail -20 "$ROOT.debootstrap.log" >&2; exit 1; }
t_debootstrap=$SECONDS
# What a container runtime provides: the apt sources of the base image (the
# host's Debian ones here), name resolution, /proc, /dev, /sys.
rm -f "$ROOT/etc/apt/sources.list"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] && grep -q 'debian' "$f" && cp "$f" "$ROOT/etc/apt/${f#/etc/apt/}"
done
cp /etc/resolv.conf /etc/hosts "$ROOT/etc/"
mount -t proc proc "$ROOT/proc"
mount --rbind /dev "$ROOT/dev"
mount --rbind /sys "$ROOT/sys"

# The Dockerfile, one instruction a line (continuations joined, comments out).
mapfile -t INSTRUCTIONS < <(sed -e '/^[[:space:]]*#/d' Dockerfile |
  awk '{ if (sub(/\\[[:space:]]*$/, "")) { buf = buf $0 " " } else { print buf $0; buf = "" } }' |
  grep -v '^[[:space:]]*$')

declare -A ENVS=()
WORKDIR=/
run_env() {  # the environment a RUN sees: Docker's PATH, ARGs, ENVs
  local e=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root)
  for k in "${!BUILD_ARGS[@]}"; do e+=("$k=${BUILD_ARGS[$k]}"); done
  for k in "${!ENVS[@]}"; do e+=("$k=${ENVS[$k]}"); done
  printf '%s\0' "${e[@]}"
}
in_root() {  # in_root CMD: runs CMD with /bin/sh -c in the root at WORKDIR
  local envs
  mapfile -d '' envs < <(run_env)
  chroot "$ROOT" /usr/bin/env -i "${envs[@]}" /bin/sh -c "cd '$WORKDIR' && $1"
}
copy_in() {  # copy_in SRC DEST: Docker's COPY from the context, minus .dockerignore
  local src=$1 dest=$2 excludes=()
  if [ -f .dockerignore ]; then
    while IFS= read -r p; do
      [ -z "$p" ] || [ "${p#\#}" != "$p" ] && continue
      p=${p#/}; excludes+=("--exclude=./${p%/}")
    done < .dockerignore
  fi
  if [ -d "$src" ]; then
    mkdir -p "$ROOT$dest"
    tar -C "$CONTEXT/$src" --anchored "${excludes[@]}" -cf - . | tar -C "$ROOT$dest" -xf -
  else
    mkdir -p "$(dirname "$ROOT$dest")"
    cp "$CONTEXT/$src" "$ROOT$dest"
  fi
}

for line in "${INSTRUCTIONS[@]}"; do
  read -r op rest <<<"$line"
  echo "check_image_recipe: [$((SECONDS))s] $op ${rest:0:100}"
  case "${op^^}" in
    FROM)
      [ "$rest" = debian:bookworm ] ||
        { echo "check_image_recipe: the root stands in for debian:bookworm, the Dockerfile says FROM $rest" >&2; exit 1; } ;;
    ARG)
      name=${rest%%=*}
      if [ -z "${BUILD_ARGS[$name]+x}" ]; then
        if [[ "$rest" == *=* ]]; then BUILD_ARGS[$name]=${rest#*=}; else BUILD_ARGS[$name]=; fi
      fi ;;
    ENV) ENVS[${rest%%=*}]=${rest#*=} ;;
    WORKDIR) WORKDIR=$rest; mkdir -p "$ROOT$WORKDIR" ;;
    COPY) read -r src dest <<<"$rest"; copy_in "$src" "$dest" ;;
    RUN) in_root "$rest" ;;
    *) echo "check_image_recipe: instruction $op is not performed by this check" >&2; exit 1 ;;
  esac
done
t_recipe=$((SECONDS - t_debootstrap))

echo "check_image_recipe: [$((SECONDS))s] tools on PATH and a 2-rank training inside the root"
in_root 'for t in launcher train sample rdzv_server ckpt_tool tokenize; do command -v $t || exit 1; done'
in_root 'tokenize --out_dir data /usr/share/common-licenses/* --val_fraction 0.1 >/dev/null &&
  launcher --standalone --nproc_per_node=2 train --threads 1 --n_layer 2 --n_head 2 --n_embd 32 \
    --max_seq_len 32 --seq_len 32 --batch_size 4 --steps 20 --log_every 5 --eval_every 20 \
    --train_pattern "data/train_*.bin" --val_pattern "data/val_*.bin" --checkpoint_dir ckpt &&
  ckpt_tool show ckpt >/dev/null' | tee "$ROOT.train.log"
grep -Eq 'step +20/20 ' "$ROOT.train.log" && grep -q 'done: 20 steps' "$ROOT.train.log" ||
  { echo "check_image_recipe: the training inside the root did not reach step 20" >&2; exit 1; }
t_train=$((SECONDS - t_debootstrap - t_recipe))
echo "check_image_recipe: OK: debootstrap ${t_debootstrap}s, Dockerfile steps ${t_recipe}s, training ${t_train}s, total ${SECONDS}s"
