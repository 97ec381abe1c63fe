#!/usr/bin/env bash
# Sourced by the deployment tests: a small virtual network of "hosts", each a
# network namespace with its own address on one bridge, its own host name and
# its own /etc/hosts (a bind mount of /etc/netns/NAME/hosts, as `ip netns exec` does),
# so the hosts reach and resolve each other by name as cluster nodes or pods
# do. The bridge lives in a hub namespace of its own: nothing touches the
# machine's network.
#
# Invariants: every namespace, veth and /etc/netns folder is named after
# NET_PREFIX (which embeds the test's pid), net_destroy removes them all and
# kills every process left inside; net_reap_stale removes those of tests that
# died (their pid no longer runs) before cleaning up.

NET_PREFIX=""   # e.g. anvslurm1234
NET_HOSTS=()    # short names, in creation order
declare -A NET_ADDR=()

# net_reap_stale PATTERN: removes namespaces PATTERN<pid>-* whose pid is gone.
net_reap_stale() {
  local pattern=$1 ns pid
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$pattern[0-9]*-" || true); do
    pid=${ns#"$pattern"}; pid=${pid%%-*}
    if ! kill -0 "$pid" 2>/dev/null; then
      net_kill_ns "$ns"
      ip netns del "$ns" 2>/dev/null || true
      rm -rf "/etc/netns/$ns"
    fi
  done
}

# net_kill_ns NS: SIGKILLs every process in namespace NS.
net_kill_ns() {
  local pids
  pids=$(ip netns pids "$1" 2>/dev/null || true)
  if [ -n "$pids" ]; then kill -9 $pids 2>/dev/null || true; fi
}

# net_create PREFIX SUBNET24 "name[=alias1,alias2...]"...: one namespace per
# name at SUBNET24.2, .3, ...; every /etc/hosts lists every name and alias.
net_create() {
  NET_PREFIX=$1
  local subnet=$2; shift 2
  local hub="$NET_PREFIX-hub" i=2 spec name aliases hosts_file
  ip netns add "$hub"
  ip -n "$hub" link add br0 type bridge
  ip -n "$hub" link set br0 up
  ip -n "$hub" link set lo up
  hosts_file=$(mktemp)
  printf '127.0.0.1 localhost\n' >"$hosts_file"
  for spec in "$@"; do
    name=${spec%%=*}; aliases=""
    [[ "$spec" == *=* ]] && aliases=${spec#*=}
    NET_HOSTS+=("$name")
    NET_ADDR[$name]="$subnet.$i"
    printf '%s %s %s\n' "$subnet.$i" "$name" "${aliases//,/ }" >>"$hosts_file"
    ip netns add "$NET_PREFIX-$name"
    ip -n "$hub" link add "v$i" type veth peer name eth0 netns "$NET_PREFIX-$name"
    ip -n "$hub" link set "v$i" master br0
    ip -n "$hub" link set "v$i" up
    ip -n "$NET_PREFIX-$name" addr add "$subnet.$i/24" dev eth0
    ip -n "$NET_PREFIX-$name" link set eth0 up
    ip -n "$NET_PREFIX-$name" link set lo up
    i=$((i + 1))
  done
  for name in "${NET_HOSTS[@]}"; do
    mkdir -p "/etc/netns/$NET_PREFIX-$name"
    cp "$hosts_file" "/etc/netns/$NET_PREFIX-$name/hosts"
  done
  rm -f "$hosts_file"
}

# net_run NAME CMD...: runs CMD on host NAME: its network, its /etc/hosts
# (bind-mounted in a private mount namespace) and a UTS namespace whose host
# name is NAME. Not `ip netns exec`: it remounts /sys, hiding the cgroup
# file systems that slurmd needs.
net_run() {
  local name=$1; shift
  unshare -m -u --propagation private /bin/sh -c \
    'mount --bind "/etc/netns/$0/hosts" /etc/hosts && hostname "$1" && shift && exec nsenter --net="/run/netns/$0" "$@"' \
    "$NET_PREFIX-$name" "$name" "$@"
}

# net_destroy: kills what runs on the hosts, removes namespaces and files
# (every namespace named NET_PREFIX-*, so it also works from another process).
net_destroy() {
  [ -n "$NET_PREFIX" ] || return 0
  local ns all
  all=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -- "^$NET_PREFIX-" || true)
  for ns in $all; do net_kill_ns "$ns"; done
  sleep 0.2
  for ns in $all; do
    net_kill_ns "$ns"
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
  done
  NET_PREFIX=""
}

# Run as a command (the Python tests do): netns_lib.sh create PREFIX SUBNET
# SPECS... (prints "name address" lines) | destroy PREFIX | reap PATTERN.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    create) shift; net_create "$@"
            for n in "${NET_HOSTS[@]}"; do echo "$n ${NET_ADDR[$n]}"; done ;;
    destroy) NET_PREFIX=$2; net_destroy ;;
    reap) net_reap_stale "$2" ;;
    *) echo "usage: netns_lib.sh create PREFIX SUBNET NAME[=ALIAS,...]... | destroy PREFIX | reap PATTERN" >&2; exit 2 ;;
  esac
fi
