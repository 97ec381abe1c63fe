#!/usr/bin/env bash
# Installs Slurm (slurmctld, slurmd, the client commands) and munge for the
# Slurm deployment test, the way scripts/setup.sh installs the build's
# packages: idempotently, apt-get only when something is missing. The
# packages' own services are not used (the test starts its own daemons) and
# are not started here (policy-rc.d refuses service starts during install).
set -euo pipefail

PKGS=(slurm-wlm munge)
missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install_slurm: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
fi
trap '[ "$made_policy" = 1 ] && rm -f "$policy"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
