#!/usr/bin/env bash
# Runs Python Dask's reference benchmarks (../shared/peer/dask/*.py) and distrib's benchmark
# programs on the same workloads, alternately, and prints one markdown table:
#
#   | workload | Dask | distrib | limit | ratio |
#
# "limit" is the physical limit measured in the same run (bench_loopback_limit: plain-socket
# loopback bandwidth / round trip; bench_seed_array: seed 1 as plain loops), and "ratio" is
# distrib vs Dask with better = higher (Dask time / distrib time, distrib rate / Dask rate), so
# > 1 means distrib is faster or smaller.
#
#   bench/compare_all.sh                              # expects a build in <repo>/build
#   BUILD_DIR=/path/to/build ROUNDS=1 bench/compare_all.sh
#
# It builds nothing. Per round (Dask first in odd rounds, distrib first in even ones):
#   Dask  startup.py latency.py throughput.py   <->  bench_throughput 20000 3
#   Dask  transfer.py                           <->  bench_transfer 3
#   Dask  seed_array.py memory.py               <->  bench_seed_array 3
#   bench_loopback_limit 3
# One round takes about 4 to 7 minutes on a 2-core machine (Dask's throughput.py alone 2 to 4).
#
# Environment (all optional):
#   BUILD_DIR      distrib build directory holding bench/bench_* (default: <repo>/build)
#   DASK_PEER_DIR  Dask's scripts (default: <repo>/../shared/peer/dask)
#   PYTHON         interpreter with dask.distributed (default: /usr/bin/python3, Debian's;
#                  installs python3-distributed with apt-get if it cannot import it)
#   ROUNDS         rounds (default: 2); the table shows the median over rounds
#   OUT_DIR        where the raw outputs go (default: /tmp/distrib-compare-<date>)
#   RUN_TIMEOUT    seconds allowed per run (default: 600); a run that fails or times out
#                  only leaves blank cells
#   TABLE_ONLY     set (with OUT_DIR of an earlier run): run nothing, redraw that run's table
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$REPO/build}"
DASK_PEER_DIR="${DASK_PEER_DIR:-$REPO/../shared/peer/dask}"
PYTHON="${PYTHON:-/usr/bin/python3}"
ROUNDS="${ROUNDS:-2}"
RUN_TIMEOUT="${RUN_TIMEOUT:-600}"
OUT_DIR="${OUT_DIR:-/tmp/distrib-compare-$(date +%Y%m%d-%H%M%S)}"

die() { echo "compare_all: $*" >&2; exit 1; }
log() { echo "compare_all: $*" >&2; }

[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer (got '$ROUNDS')"
[[ "$RUN_TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "RUN_TIMEOUT must be a positive integer of seconds (got '$RUN_TIMEOUT')"

# ---- what we need -------------------------------------------------------------------------
DASK_SCRIPTS=(startup latency throughput transfer seed_array memory)
DISTRIB_BINS=(bench_throughput bench_transfer bench_seed_array bench_loopback_limit)

missing=()
for s in "${DASK_SCRIPTS[@]}" bench_common; do
  [[ -f "$DASK_PEER_DIR/$s.py" ]] || missing+=("$DASK_PEER_DIR/$s.py")
done
((${#missing[@]} == 0)) ||
  die "Dask's peer scripts are missing (set DASK_PEER_DIR to the directory holding them): ${missing[*]}"

missing=()
for b in "${DISTRIB_BINS[@]}"; do
  [[ -x "$BUILD_DIR/bench/$b" ]] || missing+=("$b")
done
if ((${#missing[@]} > 0)); then
  die "missing benchmark binaries in '$BUILD_DIR/bench': ${missing[*]}
  this script builds nothing; build them first, e.g.
    cmake -S $REPO -B $BUILD_DIR -DCMAKE_BUILD_TYPE=RelWithDebInfo
    cmake --build $BUILD_DIR -j --target ${DISTRIB_BINS[*]}
  or point BUILD_DIR at an existing build"
fi

command -v timeout >/dev/null 2>&1 || die "no 'timeout' (coreutils) on PATH"
command -v "$PYTHON" >/dev/null 2>&1 || die "no python interpreter '$PYTHON' (set PYTHON)"
if ! "$PYTHON" -c 'import distributed, numpy' >/dev/null 2>&1; then
  log "'$PYTHON' cannot import distributed; installing python3-distributed"
  if [[ "$(id -u)" -eq 0 ]]; then SUDO=(); elif command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
    die "not root and no sudo: install python3-distributed python3-dask python3-numpy python3-psutil yourself"
  fi
  "${SUDO[@]}" apt-get update -q >&2 || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q \
    python3-distributed python3-dask python3-numpy python3-psutil >&2 || die "apt-get install failed"
  "$PYTHON" -c 'import distributed, numpy' || die "'$PYTHON' still cannot import distributed (try PYTHON=/usr/bin/python3)"
fi

RUNS_TSV="$OUT_DIR/runs.tsv"
if [[ -n "${TABLE_ONLY:-}" ]]; then
  [[ -f "$RUNS_TSV" ]] || die "TABLE_ONLY: no earlier run in OUT_DIR '$OUT_DIR'"
else
mkdir -p "$OUT_DIR" || die "cannot create OUT_DIR '$OUT_DIR'"
printf 'round\tside\tname\trc\tseconds\tloadavg_1m\n' >"$RUNS_TSV"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(uname -srm), $(nproc) cpus"
  echo "repo: $REPO ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo ', with local changes'))"
  echo "build: $BUILD_DIR ($(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null))"
  echo "python: $PYTHON, distributed $("$PYTHON" -c 'import distributed; print(distributed.__version__)' 2>/dev/null)"
  echo "rounds: $ROUNDS, run timeout: $RUN_TIMEOUT s"
} >"$OUT_DIR/env.txt"
fi
log "raw outputs in $OUT_DIR"

# run <round> <side> <name> <stdout file> <command...>: one run under a timeout, never fatal.
run() {
  local round=$1 side=$2 name=$3 out=$4
  shift 4
  local load t0 rc
  load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')
  log "round $round/$ROUNDS: $side $name (load $load)"
  t0=$(date +%s.%N)
  # timeout runs the command in its own process group and signals the whole group, so
  # Dask's spawned workers and distrib's worker processes go too.
  timeout -k 10 "$RUN_TIMEOUT" "$@" >"$out" 2>"${out%.*}.stderr"
  rc=$?
  local secs
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$side" "$name" "$rc" "$secs" "$load" >>"$RUNS_TSV"
  if ((rc == 124 || rc == 137)); then
    log "  $side $name TIMED OUT after $RUN_TIMEOUT s (see ${out%.*}.stderr)"
  elif ((rc != 0)); then
    log "  $side $name failed with exit status $rc (see ${out%.*}.stderr)"
  else
    log "  done in ${secs} s"
  fi
  return 0
}

dask() {  # dask <round> <script>
  run "$1" dask "$2.py" "$OUT_DIR/dask.$2.$1.json" \
    bash -c 'cd "$1" && exec "$2" "$3.py"' _ "$DASK_PEER_DIR" "$PYTHON" "$2"
}
distrib() {  # distrib <round> <binary> [args...]
  local round=$1 bin=$2
  shift 2
  run "$round" distrib "$bin" "$OUT_DIR/distrib.$bin.$round.jsonl" "$BUILD_DIR/bench/$bin" "$@"
}

for ((round = 1; round <= ROUNDS; ++round)); do
  [[ -n "${TABLE_ONLY:-}" ]] && break  # only redraw the table from an earlier OUT_DIR
  pairs=(throughput transfer seed)
  for pair in "${pairs[@]}"; do
    case $pair in
      throughput)
        dask_side() { dask "$round" startup; dask "$round" latency; dask "$round" throughput; }
        distrib_side() { distrib "$round" bench_throughput 20000 3; } ;;
      transfer)
        dask_side() { dask "$round" transfer; }
        distrib_side() { distrib "$round" bench_transfer 3; } ;;
      seed)
        dask_side() { dask "$round" seed_array; dask "$round" memory; }
        distrib_side() { distrib "$round" bench_seed_array 3; } ;;
    esac
    if ((round % 2)); then dask_side; distrib_side; else distrib_side; dask_side; fi
  done
  distrib "$round" bench_loopback_limit 3
done

# ---- the table ----------------------------------------------------------------------------
"$PYTHON" - "$OUT_DIR" "$ROUNDS" <<'EOF' | tee "$OUT_DIR/table.md"
import csv, json, os, statistics, sys

out_dir, rounds = sys.argv[1], int(sys.argv[2])

def json_lines(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return []
    try:  # one JSON document (also the indented files run_all.py writes) ...
        d = json.loads(text)
        return [d] if isinstance(d, dict) else []
    except ValueError:
        pass
    out = []  # ... or JSON lines, among other output
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if isinstance(d, dict):
                out.append(d)
    return out

def num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None

# dask[(script, key)] and ours[(program, bench)] -> values over rounds
dask, ours, errors = {}, {}, []
for r in range(1, rounds + 1):
    for script in ("startup", "latency", "throughput", "transfer", "seed_array", "memory"):
        for d in json_lines(f"{out_dir}/dask.{script}.{r}.json"):
            data = d.get("data", d) if isinstance(d.get("data"), dict) else d
            for k, v in data.items():
                if num(v) is not None:
                    dask.setdefault((script, k), []).append(v)
            a, b = num(data.get("worker_a_idle_rss_mib")), num(data.get("worker_b_idle_rss_mib"))
            if a is not None and b is not None:
                dask.setdefault((script, "worker_max_idle_rss_mib"), []).append(max(a, b))
    for prog in ("bench_throughput", "bench_transfer", "bench_seed_array", "bench_loopback_limit"):
        for d in json_lines(f"{out_dir}/distrib.{prog}.{r}.jsonl"):
            if "error" in d:
                errors.append(f"{prog} round {r}: {d.get('bench')}: {d['error']}")
            elif num(d.get("median")) is not None and "bench" in d:
                ours.setdefault((prog, d["bench"]), []).append(d["median"])

def D(script, key, scale=1.0):
    v = dask.get((script, key))
    return statistics.median(v) * scale if v else None

def O(prog, bench, scale=1.0):
    v = ours.get((prog, bench))
    return statistics.median(v) * scale if v else None

HI, LO = "higher", "lower"  # which way is better
TP, TR, SA, LL = "bench_throughput", "bench_transfer", "bench_seed_array", "bench_loopback_limit"
bw = O(LL, "loopback_bandwidth_1GB")
bw64 = O(LL, "loopback_bandwidth_1GB_64KiB_reads")
seed1_limit = O(SA, "seed1_limit_2threads")

rows = [  # (label, unit, dask, distrib, limit, better)
    ("LocalCluster start, 2 worker processes, client ready", "s",
     D("startup", "startup_total_s"), O(TP, "localcluster_start"), None, LO),
]
if D("startup", "first_task_s") is not None:
    rows.append(("first task on a fresh cluster", "ms", D("startup", "first_task_s", 1e3), O(TP, "first_task"), None, LO))
rows += [
    ("trivial round trip `submit(inc).result()`, median", "µs",
     D("latency", "lat_median_us"), O(TP, "round_trip_median"), O(LL, "loopback_round_trip_median"), LO),
]
if D("latency", "lat_p99_us") is not None:
    rows.append(("trivial round trip, p99", "µs",
                 D("latency", "lat_p99_us"), O(TP, "round_trip_p99"), O(LL, "loopback_round_trip_p99"), LO))
rows += [
    ("20k `map(inc)` + gather", "tasks/s", D("throughput", "map_tasks_per_s"), O(TP, "map_gather"), None, HI),
    ("20k `submit(inc)` loop + gather", "tasks/s", D("throughput", "loop_tasks_per_s"), O(TP, "submit_loop_gather"), None, HI),
    ("20k tree reduction (19,999 tasks)", "tasks/s", D("throughput", "tree_tasks_per_s"), O(TP, "tree_reduction"), None, HI),
]
has_transfer = any(script == "transfer" for script, _ in dask)
for size in ("100MB", "1GB"):
    pretty = size.replace("MB", " MB").replace("GB", " GB")
    for op in ("scatter", "gather"):
        for mode, note in (("default", "Dask default"), ("direct", "Dask `direct=True`" + (", `hash=False`" if op == "scatter" else ""))):
            # the direct rows only if Dask's transfer.py reports them (or gave nothing at all)
            if mode == "direct" and has_transfer and D("transfer", f"{op}_{mode}_{size}_GBps") is None:
                continue
            rows.append((f"{op} {pretty} ({note})", "GB/s",
                         D("transfer", f"{op}_{mode}_{size}_GBps"), O(TR, f"{op}_{size}"), bw, HI))
            if mode == "direct" and O(TR, f"{op}_{size}_ndarray") is not None:
                # numpy arrays in Dask, NDArray here: both decode without a copy
                rows.append((f"{op} {pretty} ({note}; distrib: `NDArray`)", "GB/s",
                             D("transfer", f"{op}_{mode}_{size}_GBps"), O(TR, f"{op}_{size}_ndarray"), bw, HI))
rows += [
    ("worker→worker 200 MB, end to end (distrib: `std::vector<double>`)", "GB/s",
     D("transfer", "w2w_e2e_GBps"), O(TR, "worker_to_worker_200MB"), bw, HI),
    ("worker→worker 200 MB, end to end (distrib: `NDArray`)", "GB/s",
     D("transfer", "w2w_e2e_GBps"), O(TR, "worker_to_worker_200MB_ndarray"), bw, HI),
    ("seed 1 `(x + x.T).mean(0)` 10k², cold", "s", D("seed_array", "seed1_cold_s"), O(SA, "seed1_cold"), seed1_limit, LO),
    ("seed 1, warm", "s", D("seed_array", "seed1_warm_s"), O(SA, "seed1_warm"), seed1_limit, LO),
    ("seed 2 `normal(100000×1000).mean()`", "s", D("seed_array", "seed2_mean_s"), O(SA, "seed2_mean"), None, LO),
    ("seed 2 `.std()`", "s", D("seed_array", "seed2_std_s"), O(SA, "seed2_std"), None, LO),
    ("idle RSS of one worker (the larger)", "MiB",
     D("memory", "worker_max_idle_rss_mib"), O(SA, "idle_rss_worker_max"), None, LO),
]

def fmt(v):
    if v is None:
        return ""
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"

def ratio(a, b, better):
    if a is None or b is None or a <= 0 or b <= 0:
        return ""
    r = b / a if better == HI else a / b
    return f"{r:.2f}×" if r < 100 else f"{r:,.0f}×"

try:
    with open(f"{out_dir}/env.txt") as f:
        env = [l.strip() for l in f if l.strip()]
except OSError:
    env = []

print()
print("| workload | Dask | distrib | limit | ratio |")
print("|---|---:|---:|---:|---:|")
for label, unit, a, b, lim, better in rows:
    print(f"| {label} ({unit}) | {fmt(a)} | {fmt(b)} | {fmt(lim)} | {ratio(a, b, better)} |")
print()
print(f"Medians over {rounds} round(s), Dask and distrib alternating; each distrib figure is itself the "
      "median of its program's 3 repeats, each Dask transfer figure the median of its 3 repetitions. "
      "ratio = distrib vs Dask, better-is-better (Dask time / distrib time, distrib rate / Dask rate): "
      "> 1 means distrib is faster or smaller. "
      "limit: plain-socket loopback TCP measured in the same run by bench_loopback_limit "
      "(1 GB in 4 MiB writes, thread to thread; 8-byte ping-pong between two threads), and for seed 1 "
      "the same computation as plain loops on 2 threads in one process (bench_seed_array)"
      + (f"; the socket path alone, the receiver reading 64 KiB at a time, moved {fmt(bw64)} GB/s. "
         if bw64 is not None else ". ") +
      "distrib's scatter sends straight to a worker and its gather fetches straight from it, "
      "so the `direct=True` rows are the like-for-like ones. "
      "A blank cell: the figure is not measured by that side, or its run failed.")
if env:
    print()
    print("; ".join(env))

fails, loads = [], []
try:
    with open(f"{out_dir}/runs.tsv") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            try:
                loads.append(float(row["loadavg_1m"]))
            except (KeyError, TypeError, ValueError):
                pass
            if row["rc"] != "0":
                why = "timed out" if row["rc"] in ("124", "137") else f"exit status {row['rc']}"
                fails.append(f"round {row['round']}: {row['side']} {row['name']}: {why}")
except (OSError, KeyError):
    pass
if loads:
    print(f"\n1-minute load average at the start of the runs: {min(loads):.2f} to {max(loads):.2f} "
          f"(this machine has {os.cpu_count()} cpus; anything else running shows in the figures).")
if fails or errors:
    print()
    print(f"Failures (stderr in {out_dir}):")
    for e in fails + errors:
        print(f"- {e}")
EOF
