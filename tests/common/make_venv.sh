#!/usr/bin/env bash
# Makes (once) a Python virtual environment with packages from PyPI, for the
# tests that check our output with the tool users read it with (TensorBoard's
# reader, kubernetes-validate). Exit 0 when VENV/bin/python imports MODULE;
# 77 (ctest: skipped) with the reason when it cannot be made (no python3
# venv, PyPI unreachable).
# Usage: make_venv.sh VENV MODULE PACKAGE...
set -euo pipefail
venv=$1 module=$2
shift 2
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import $module" 2>/dev/null; then
  exit 0
fi
rm -rf "$venv"
python3 -m venv "$venv" >/dev/null 2>&1 ||
  { rm -rf "$venv"; echo "SKIPPED: python3 -m venv failed (apt-get install python3-venv)"; exit 77; }
if ! timeout 240 "$venv/bin/pip" install -q --disable-pip-version-check "$@" >"$venv.log" 2>&1; then
  tail -3 "$venv.log"
  rm -rf "$venv"
  echo "SKIPPED: pip could not install $* (is PyPI reachable?)"
  exit 77
fi
"$venv/bin/python" -c "import $module"
