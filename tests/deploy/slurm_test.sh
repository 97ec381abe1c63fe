#!/usr/bin/env bash
# Slurm deployment test on real Slurm (Debian 12's slurm-wlm 22.05) and munge:
# slurmctld and two slurmd ("n1", "n2"), each in its own network namespace
# with its own address, host name and /etc/hosts (netns_lib.sh), run the
# project's own scripts/slurm/*.sbatch, changed only between their "values a
# user sets" lines (checked: the rest is byte-identical):
#   1. train.sbatch trains a tiny GPT on CPU on 2 nodes to its step count;
#   2. train.sbatch, `scancel --batch --signal=TERM` mid-run (what the time
#      limit's --signal=B:TERM does): the batch shell's trap reaches the
#      launchers, which checkpoint; a resubmission resumes from step > 0 and
#      finishes;
#   3. elastic.sbatch, `scancel --signal=TERM` mid-run (the steps directly):
#      checkpoint, resubmission resumes and finishes;
#   4. train.sbatch with --time=1 --signal=B:TERM@45: Slurm's own time-limit
#      signal leads to a checkpoint before the limit.
# Usage: slurm_test.sh BUILD_DIR SOURCE_DIR. Exit 77 (ctest: skipped) where
# the machine cannot run it: not root, or no network namespaces. Everything
# it starts (daemons, jobs, namespaces) is removed on any exit.
set -euo pipefail
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
HERE=$SRC/tests/deploy
source "$HERE/netns_lib.sh"

skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, Slurm daemons)"
command -v ip >/dev/null || skip "no iproute2"
"$HERE/install_slurm.sh"
for t in slurmctld slurmd sbatch scancel scontrol munged; do
  command -v "$t" >/dev/null || fail "$t missing after install_slurm.sh"
done
probe="anvslurmprobe$$"
ip netns add "$probe" 2>/dev/null || skip "cannot create network namespaces"
ip netns del "$probe"

net_reap_stale anvslurm
W=$(mktemp -d /tmp/anvil_slurm.XXXXXX)
chmod 755 "$W"
cleanup() {
  local rc=$?
  net_destroy
  if [ "$rc" = 0 ]; then
    rm -rf "$W"
  elif [ "$rc" != 77 ]; then
    echo "--- logs kept in $W; tails:" >&2
    for f in "$W"/*.log "$W"/submit/*.out; do
      [ -f "$f" ] && { echo "--- $f" >&2; tail -25 "$f" >&2; }
    done
  fi
}
trap cleanup EXIT
trap 'exit 1' TERM INT

# --- network: ctl, n1, n2 on one bridge.
SUBNET="10.232.$(($$ % 200 + 20))"
net_create "anvslurm$$" "$SUBNET" ctl n1 n2

# --- munge: a private daemon and key on ctl (so that removing the namespaces
# ends it too); its socket is a file, shared by all namespaces.
head -c 1024 /dev/urandom >"$W/munge.key"
chmod 400 "$W/munge.key"
net_run ctl munged -f --socket="$W/munge.sock" --key-file="$W/munge.key" --pid-file="$W/munged.pid" \
  --log-file="$W/munged.log" --seed-file="$W/munged.seed"

# --- slurm.conf: root runs everything; no cgroups, no accounting.
mkdir -p "$W/state" "$W/spool"
cat >"$W/slurm.conf" <<EOF
ClusterName=anvil
SlurmctldHost=ctl(${NET_ADDR[ctl]})
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$W/munge.sock
StateSaveLocation=$W/state
SlurmdSpoolDir=$W/spool/%n
SlurmctldPidFile=$W/slurmctld.pid
SlurmdPidFile=$W/slurmd-%n.pid
SlurmctldLogFile=$W/slurmctld.log
SlurmdLogFile=$W/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=600
KillWait=10
InactiveLimit=0
NodeName=n1 NodeAddr=${NET_ADDR[n1]} CPUs=2 RealMemory=500 State=UNKNOWN
NodeName=n2 NodeAddr=${NET_ADDR[n2]} CPUs=2 RealMemory=500 State=UNKNOWN
PartitionName=debug Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$W/slurm.conf
net_run ctl slurmctld -D -i -f "$SLURM_CONF" >"$W/slurmctld.out" 2>&1 &
for n in n1 n2; do
  mkdir -p "$W/spool/$n"
  net_run "$n" slurmd -D -N "$n" -f "$SLURM_CONF" >"$W/slurmd-$n.out" 2>&1 &
done
ctl() { net_run ctl "$@"; }   # client commands run on the controller's host

# Both nodes idle, within 60 s.
for _ in $(seq 120); do
  idle=$(ctl sinfo -h -N -t idle -o %N 2>/dev/null | sort -u | wc -l || true)
  [ "$idle" = 2 ] && break
  sleep 0.5
done
[ "$idle" = 2 ] || { ctl sinfo -N 2>&1 || true; fail "the two slurmd did not register as idle"; }
echo "slurm_test: slurmctld + 2 slurmd up (${SECONDS}s)"

# --- data: byte-level shards of the license texts.
mkdir -p "$W/submit"
"$BUILD/runtime/data/tokenize" --out_dir "$W/data" --val_fraction 0.1 /usr/share/common-licenses/* >/dev/null

# user_copy SCRIPT OUT: the user's edits, only between the ==== lines.
user_copy() {
  local src=$SRC/scripts/slurm/$1 out=$2
  sed -e '/^# ==== values a user sets ====$/,/^# ==== end of values a user sets ====$/{
      s/^#SBATCH --nodes=.*/#SBATCH --nodes=2/
      /^#SBATCH --gpus-per-node=/d
      s/^#SBATCH --cpus-per-task=.*/#SBATCH --cpus-per-task=1/
      s|^ANVIL_BUILD=\${ANVIL_BUILD:-[^}]*}|ANVIL_BUILD=${ANVIL_BUILD:-'"$BUILD"'}|
      s|^NPROC_PER_NODE=\${NPROC_PER_NODE:-[^}]*}|NPROC_PER_NODE=${NPROC_PER_NODE:-1}|
      s|^NNODES=\${NNODES:-[^}]*}|NNODES=${NNODES:-2}|
      s|^DATA=\${DATA:-[^}]*}|DATA=${DATA:-'"$W/data"'}|
      s|^GRACE_PERIOD=\${GRACE_PERIOD:-[^}]*}|GRACE_PERIOD=${GRACE_PERIOD:-30}|
      s|^CHECKPOINT_EVERY=\${CHECKPOINT_EVERY:-[^}]*}|CHECKPOINT_EVERY=${CHECKPOINT_EVERY:-0}|
    }' "$src" >"$out"
  # The rest of the script is the project's, byte for byte.
  cmp -s <(sed '1,/^# ==== end of values a user sets ====$/d' "$src") \
         <(sed '1,/^# ==== end of values a user sets ====$/d' "$out") ||
    fail "$1: the test changed lines outside the user values"
  grep -q "^NPROC_PER_NODE=\${NPROC_PER_NODE:-1}" "$out" || fail "$1: user block not edited as expected"
  if grep -q '^#SBATCH --gpus-per-node' "$out"; then fail "$1: GPU request left in"; fi
}
user_copy train.sbatch "$W/submit/train.sbatch"
user_copy elastic.sbatch "$W/submit/elastic.sbatch"

MODEL=(--threads 1 --n_layer 2 --n_head 2 --n_embd 32 --max_seq_len 32 --seq_len 32 --batch_size 4
       --log_every 10 --eval_every 0)
# submit NAME SCRIPT TRAIN_FLAGS...: prints the job id.
submit() {
  local name=$1 script=$2; shift 2
  ctl sbatch --parsable --chdir="$W/submit" --job-name="$name" "$W/submit/$script" "${MODEL[@]}" "$@"
}
job_state() { ctl scontrol show job -o "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
# wait_done JOB TIMEOUT_S: waits for a final state, prints it.
wait_done() {
  local s=""
  for _ in $(seq $(($2 * 2))); do
    s=$(job_state "$1")
    case "$s" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED) echo "$s"; return 0 ;; esac
    sleep 0.5
  done
  echo "still ${s:-unknown} after $2 s"
}
# wait_step OUT STEP TIMEOUT_S: waits until a step line at or past STEP is in OUT.
wait_step() {
  for _ in $(seq $(($3 * 4))); do
    if [ -f "$1" ] && awk -v s="$2" '$2 == "step" { split($3, a, "/"); if (a[1] + 0 >= s) f = 1 } END { exit !f }' "$1"; then
      return 0
    fi
    sleep 0.25
  done
  fail "no step $2 in $1 within $3 s"
}
newest_step() { "$BUILD/runtime/checkpoint/ckpt_tool" list "$1" 2>/dev/null | grep -o 'step_[0-9]*' | sort | tail -1 | sed 's/step_0*//'; }

# --- 1. train.sbatch to completion on 2 nodes.
t0=$SECONDS
job=$(submit anvil-train train.sbatch --steps 40)
state=$(wait_done "$job" 120)
out="$W/submit/anvil-train-$job.out"
[ "$state" = COMPLETED ] || fail "train.sbatch job $job: $state"
grep -q 'world size 2' "$out" || fail "train.sbatch job $job did not form a 2-node group"
grep -Eq 'step +40/40 ' "$out" && grep -q 'done: 40 steps' "$out" || fail "train.sbatch job $job did not reach step 40"
[ "$(newest_step "$W/submit/checkpoints/anvil-train")" = 40 ] || fail "no step-40 checkpoint from job $job"
echo "slurm_test: 1. train.sbatch trained 40 steps on n1+n2 (job $job, $((SECONDS - t0))s)"

# preempt_and_resume SCRIPT NAME HOW: HOW is the scancel form that stops it.
preempt_and_resume() {
  local script=$1 name=$2; shift 2
  local t0=$SECONDS job out state at resumed
  job=$(submit "$name" "$script" --steps 100000)
  out="$W/submit/$name-$job.out"
  wait_step "$out" 30 120
  ctl scancel "$@" "$job"
  state=$(wait_done "$job" 90)
  case "$state" in COMPLETED|FAILED) ;; *) fail "$script job $job after scancel $*: $state" ;; esac
  grep -q 'stopping at step' "$out" || fail "$script job $job: no worker stopped at a step boundary"
  if grep -q 'task [0-9]*: Killed' "$out"; then fail "$script job $job: srun killed the step"; fi
  at=$(newest_step "$W/submit/checkpoints/$name")
  [ -n "$at" ] && [ "$at" -gt 0 ] || fail "$script job $job: no checkpoint after scancel $*"
  echo "slurm_test: $script stopped by scancel $* at step $at, checkpoint written (job $job, $((SECONDS - t0))s)"
  t0=$SECONDS
  job=$(submit "$name" "$script" --steps $((at + 20)))
  out="$W/submit/$name-$job.out"
  state=$(wait_done "$job" 120)
  [ "$state" = COMPLETED ] || fail "$script resubmission $job: $state"
  resumed=$(grep -o 'resumed from [^ ]*step_[0-9]*' "$out" | head -1 | grep -o '[0-9]*$' | sed 's/^0*//')
  [ "${resumed:-0}" -gt 0 ] || fail "$script resubmission $job did not resume from a checkpoint"
  [ "$resumed" = "$at" ] || fail "$script resubmission $job resumed from step $resumed, not $at"
  grep -Eq "step +$((at + 20))/$((at + 20)) " "$out" || fail "$script resubmission $job did not finish"
  echo "slurm_test: $script resubmitted: resumed from step $resumed, finished at $((at + 20)) (job $job, $((SECONDS - t0))s)"
}

# --- 2. the batch shell is signalled (time limit, --signal=B:TERM, scancel --batch).
preempt_and_resume train.sbatch anvil-preempt --batch --signal=TERM
# --- 3. the steps are signalled (scancel --signal=TERM), elastic script.
preempt_and_resume elastic.sbatch anvil-elastic --signal=TERM
# --- 4. the real time-limit path: Slurm itself sends --signal=B:TERM@45 to
# the batch shell of a job with --time=1 (when, within the minute, depends on
# slurmctld's periodic check: seconds to ~45 s), the trap reaches the
# launchers, they checkpoint before the limit. SLURM_TEST_TIME_LIMIT=0 skips it.
if [ "${SLURM_TEST_TIME_LIMIT:-1}" = 1 ]; then
  t0=$SECONDS
  job=$(ctl sbatch --parsable --chdir="$W/submit" --job-name=anvil-limit --time=1 --signal=B:TERM@45 \
        "$W/submit/train.sbatch" "${MODEL[@]}" --steps 10000000)
  state=$(wait_done "$job" 150)
  out="$W/submit/anvil-limit-$job.out"
  grep -q 'stopping at step' "$out" || fail "time limit job $job ($state): no stop at a step boundary"
  if grep -q 'task [0-9]*: Killed' "$out"; then fail "time limit job $job: srun killed the step"; fi
  at=$(newest_step "$W/submit/checkpoints/anvil-limit")
  [ -n "$at" ] && [ "$at" -gt 0 ] || fail "time limit job $job: no checkpoint"
  echo "slurm_test: 4. --time=1 --signal=B:TERM@45: checkpoint at step $at before the limit, job $state ($((SECONDS - t0))s)"
fi
echo "slurm_test: PASSED in ${SECONDS}s"
