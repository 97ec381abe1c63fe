#!/usr/bin/env bash
# Validates every manifest in k8s/ with kubernetes-validate --strict (unknown
# fields rejected) against the oldest and the newest Kubernetes version the
# tool knows here (1.30 and its default, 1.37 with kubernetes-validate 1.37).
# The tool comes from PyPI into a virtual environment in the build folder,
# made once. Exit 77 (ctest: skipped) when it cannot be installed (no python3
# venv, PyPI unreachable), saying why.
# Usage: k8s_validate_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
VENV=$BUILD/deploy-venv
KV=$VENV/bin/kubernetes-validate
"$SRC/tests/common/make_venv.sh" "$VENV" kubernetes_validate kubernetes-validate || exit $?
newest=$("$KV" --help | grep -o 'Defaults to [0-9.]*' | grep -o '[0-9][0-9.]*[0-9]')
manifests=("$SRC"/k8s/*.yaml)
[ ${#manifests[@]} -ge 6 ] || { echo "FAIL: expected the 6+ manifests of k8s/, found ${#manifests[@]}"; exit 1; }
for v in 1.30 "$newest"; do
  # --quiet prints failures only; the exit code says whether all passed.
  if ! "$KV" --strict --quiet -k "$v" "${manifests[@]}"; then
    echo "FAIL: kubernetes-validate --strict -k $v"
    exit 1
  fi
  echo "k8s_validate_test: ${#manifests[@]} manifests pass --strict against Kubernetes $v"
done
