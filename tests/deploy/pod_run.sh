#!/usr/bin/env bash
# Runs one container of a Kubernetes pod the way a node would, for
# k8s_pods_test.py: a root file system of its own (an overlay of this
# machine's, writes kept in a tmpfs, as an image's container layer), the
# pod's volumes mounted at their mountPaths, the pod's host name and
# /etc/hosts, its network namespace, and the container's environment only.
# The command execs in place, so this process's pid becomes the container's
# pid 1 (what SIGTERM on pod deletion reaches).
#
#   unshare -m -u --propagation private pod_run.sh NETNS HOSTNAME HOSTS_FILE SCRATCH \
#       [-v SRC:DST[:ro]]... [-e NAME=VALUE]... [-w WORKDIR] -- COMMAND...
set -euo pipefail
netns=$1 host=$2 hosts=$3 scratch=$4
shift 4
mounts=() envs=() workdir=/
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  case "$1" in
    -v) mounts+=("$2") ;;
    -e) envs+=("$2") ;;
    -w) workdir=$2 ;;
    *) echo "pod_run: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
shift

mkdir -p "$scratch"
mount -t tmpfs tmpfs "$scratch"
mkdir "$scratch/upper" "$scratch/work" "$scratch/root"
R=$scratch/root
mount -t overlay overlay -o "lowerdir=/,upperdir=$scratch/upper,workdir=$scratch/work" "$R"
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount --rbind /sys "$R/sys"
for m in "${mounts[@]}"; do
  IFS=: read -r src dst mode <<<"$m"
  mkdir -p "$R$dst"
  mount --bind "$src" "$R$dst"
  if [ "${mode:-}" = ro ]; then mount -o remount,bind,ro "$R$dst"; fi
done
cp "$hosts" "$R/etc/hosts"
hostname "$host"
mkdir -p "$R$workdir"
exec nsenter --net="/run/netns/$netns" chroot "$R" env -i -C "$workdir" "${envs[@]}" "$@"
