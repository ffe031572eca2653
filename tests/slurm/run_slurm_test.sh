#!/usr/bin/env bash
# A one-node Slurm, started here as root (munged, slurmctld, slurmd, all in a temporary
# directory with their own socket, ports and state, so the host's Slurm or munge setup, if
# any, is left alone), then:
#   1. srun -n 4 drun ./app: the scheduler, the program and two workers as job steps;
#   2. a job script written by distrib::SlurmJob (slurm_job_writer), run with sbatch --wait;
#   3. the same job through SlurmJob::submit(), drun's default scheduler file and Slurm's
#      own output file, waited for through scontrol.
# Each must print "sum=24502500 workers=2". Exits 77 (ctest: skipped) if not root or Slurm
# or munge is not installed (Debian: slurm-wlm munge); non-zero with the daemons' logs if
# Slurm does not start.
#   run_slurm_test.sh DRUN APP_WORKER_HELPER SLURM_JOB_WRITER
set -euo pipefail

(($# == 3)) || { echo "usage: $0 DRUN APP_WORKER_HELPER SLURM_JOB_WRITER" >&2; exit 2; }
# Absolute: the job steps run in another directory.
drun=$(realpath "$1") app=$(realpath "$2") writer=$(realpath "$3")
readonly drun app writer
readonly expected="sum=24502500 workers=2"

skip() {
  echo "SKIP: $*"
  exit 77
}
[[ $(id -u) == 0 ]] || skip "needs root to start slurmctld, slurmd and munged"
for tool in munged slurmctld slurmd srun sbatch scontrol sinfo squeue scancel; do
  PATH=$PATH:/usr/sbin:/sbin command -v "$tool" > /dev/null ||
    skip "$tool is not installed (Debian: apt-get install slurm-wlm munge)"
done
export PATH=$PATH:/usr/sbin:/sbin

tmp=$(mktemp -d /tmp/distrib-slurm-test.XXXXXX)
# munged refuses a socket directory others may write to; 711 lets job steps reach it.
chmod 711 "$tmp"
mkdir -m 711 "$tmp/munge"
mkdir -p "$tmp/state" "$tmp/spool" "$tmp/work"
pids=()

show_logs() {
  for log in "$tmp"/munge/munged.log "$tmp"/*.log "$tmp"/*.out; do
    [[ -f $log ]] || continue
    echo "----- $log"
    tail -n 60 "$log"
  done
}

cleanup() {
  local code=$?
  set +e
  if [[ -n ${SLURM_CONF:-} ]] && ((${#pids[@]} > 1)); then
    # Jobs left by a failure: their steps (slurmstepd) would outlive slurmd.
    scancel --quiet --user=root 2> /dev/null
    for _ in $(seq 1 20); do
      [[ -z $(squeue -h 2> /dev/null) ]] && break
      sleep 0.5
    done
  fi
  for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2> /dev/null; done
  ((code == 0 || code == 77)) || show_logs
  rm -rf "$tmp"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

fail() {
  echo "FAIL: $*"
  exit 1
}

# A port nothing listens on (a connection to it is refused).
free_port() {
  local port
  while true; do
    port=$((20000 + RANDOM % 40000))
    (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null || break
  done
  echo "$port"
}

# --- munge: its own key and socket, so an installed munged (or none) does not matter.
key=$tmp/munge/munge.key
if command -v mungekey > /dev/null; then
  mungekey --create --keyfile="$key"
else
  dd if=/dev/urandom of="$key" bs=1 count=1024 status=none
fi
chmod 400 "$key"
# --force: munged otherwise refuses to run as root.
munged --foreground --force --key-file="$key" --socket="$tmp/munge/munge.socket" \
  --pid-file="$tmp/munge/munged.pid" --log-file="$tmp/munge/munged.log" \
  --seed-file="$tmp/munge/munged.seed" > "$tmp/munged.out" 2>&1 &
pids+=($!)

# --- slurm.conf: one node, this host, no cgroups (proctrack/linuxproc, task/none).
node=$(hostname -s)
cpus=$(nproc)
memory=$(($(free -m | awk '/^Mem:/ {print $2}') - 512))
((memory > 0)) || memory=1
ctld_port=$(free_port)
slurmd_port=$(free_port)
while ((slurmd_port == ctld_port)); do slurmd_port=$(free_port); done
cat > "$tmp/slurm.conf" << EOF
ClusterName=distribtest
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$tmp/munge/munge.socket
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE
EOF
export SLURM_CONF=$tmp/slurm.conf
slurmctld -D -f "$SLURM_CONF" > "$tmp/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" > "$tmp/slurmd.out" 2>&1 &
pids+=($!)

# --- wait (at most 60 s) for the node to be idle, or for a daemon to die.
state=
for _ in $(seq 1 120); do
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2> /dev/null || fail "a Slurm or munge daemon exited while starting (logs below)"
  done
  state=$(scontrol show node "$node" 2> /dev/null | grep -o 'State=[A-Z+_]*' | head -n 1) || true
  [[ $state == State=IDLE* ]] && break
  sleep 0.5
done
[[ $state == State=IDLE* ]] || fail "node $node not idle after 60 s (${state:-no state}) (logs below)"
sinfo
cd "$tmp/work"

# --- 1. srun: 4 tasks on this host's CPUs (--overcommit: more tasks than CPUs).
echo "== srun -n 4 drun"
if ! out=$(timeout 120 srun -n 4 --overcommit "$drun" --scheduler-file "$tmp/s.json" --dashboard-address none \
  --nthreads 1 "$app" 2 2>&1); then
  echo "$out"
  fail "srun -n 4 drun exited non-zero"
fi
echo "$out"
grep -qF "$expected" <<< "$out" || fail "srun's output lacks \"$expected\""
[[ ! -e $tmp/s.json ]] || fail "the scheduler file outlived the job"

# --- 2. a SlurmJob script, run with sbatch --wait.
echo "== SlurmJob script, sbatch --wait"
"$writer" ntasks=4 nthreads=1 output="$tmp/work/job-%j.out" drun="$drun" scheduler_file="$tmp/job.json" \
  directive=--overcommit drun_arg=--dashboard-address drun_arg=none -- "$app" 2 > "$tmp/job.sh"
cat "$tmp/job.sh"
grep -qx '#SBATCH --ntasks=4' "$tmp/job.sh" || fail "the script lacks #SBATCH --ntasks=4"
grep -qx "srun --cpus-per-task=1 $drun --scheduler-file $tmp/job.json --nthreads 1 --dashboard-address none $app 2" "$tmp/job.sh" ||
  fail "the script's srun line is not as expected"
timeout 150 sbatch --wait "$tmp/job.sh" || fail "sbatch --wait: the job failed (exit $?)"
job_out=$(cat "$tmp"/work/job-*.out)
echo "$job_out"
grep -qF "$expected" <<< "$job_out" || fail "the job's output lacks \"$expected\""

# --- 3. SlurmJob::submit(), drun's default scheduler file, Slurm's default output file.
echo "== SlurmJob::submit()"
id=$("$writer" --submit ntasks=4 drun="$drun" directive=--overcommit drun_arg=--dashboard-address \
  drun_arg=none -- "$app" 2)
[[ $id =~ ^[0-9]+$ ]] || fail "submit() returned \"$id\", not a job id"
job_state=
for _ in $(seq 1 240); do
  job_state=$(scontrol show job "$id" | grep -o 'JobState=[A-Z_]*') || true
  case $job_state in JobState=PENDING | JobState=RUNNING | JobState=CONFIGURING | JobState=COMPLETING | "") ;; *) break ;; esac
  sleep 0.5
done
[[ $job_state == JobState=COMPLETED ]] || fail "job $id ended as ${job_state:-unknown}"
cat "slurm-$id.out"
grep -qF "$expected" "slurm-$id.out" || fail "slurm-$id.out lacks \"$expected\""
compgen -G 'distrib-scheduler-*' > /dev/null && fail "drun's default scheduler file outlived the job: $(ls)"
echo "PASS"
