#!/usr/bin/env bash
# Installs every Debian package the build needs. Idempotent: packages already
# present are skipped, and apt-get runs only when something is missing.
# --test adds what only the test suite uses: clang with its sanitizer and
# libFuzzer runtimes, and clang's OpenMP (the checking build).
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config git
  libabsl-dev
  libprotobuf-dev protobuf-compiler
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc
  libcpp-httplib-dev
  libgloo-dev
  libopenblas-dev libopenblas-openmp-dev
  libdnnl-dev
  libgtest-dev libgmock-dev
  libxxhash-dev
  libssl-dev
  libpng-dev zlib1g-dev
  dataset-fashion-mnist
  iproute2 procps
)

if [ "${1:-}" = "--test" ]; then
  PKGS+=(clang libclang-rt-dev libomp-dev)
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
