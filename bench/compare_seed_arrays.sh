#!/usr/bin/env bash
# Runs the seed examples with Python Dask (../shared/peer/dask/seed_array.py) and with distrib
# (bench_seed_array), alternately, and prints a markdown table of the medians.
#
#   bench/compare_seed_arrays.sh
#
# Environment (all optional):
#   DASK_PEER_DIR     Dask's scripts (default: <repo>/../shared/peer/dask)
#   PYTHON            interpreter with dask.distributed (default: /usr/bin/python3, Debian's;
#                     installs python3-distributed with apt-get if it cannot import it)
#   BENCH_SEED_ARRAY  our benchmark binary (default: <repo>/build/bench/bench_seed_array)
#   ROUNDS            dask/distrib rounds (default: 2)
#   REPEATS           warm repeats inside bench_seed_array (default: 3)
#   OUT_DIR           where the raw outputs go (default: a new temporary directory)
#   RUN_TIMEOUT       seconds allowed per run (default: 900)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DASK_PEER_DIR="${DASK_PEER_DIR:-$REPO/../shared/peer/dask}"
PYTHON="${PYTHON:-/usr/bin/python3}"
BENCH_SEED_ARRAY="${BENCH_SEED_ARRAY:-$REPO/build/bench/bench_seed_array}"
ROUNDS="${ROUNDS:-2}"
REPEATS="${REPEATS:-3}"
RUN_TIMEOUT="${RUN_TIMEOUT:-900}"
OUT_DIR="${OUT_DIR:-$(mktemp -d /tmp/compare_seed_arrays.XXXXXX)}"
mkdir -p "$OUT_DIR"

die() { echo "compare_seed_arrays: $*" >&2; exit 1; }

if [[ ! -f "$DASK_PEER_DIR/seed_array.py" || ! -f "$DASK_PEER_DIR/bench_common.py" ]]; then
  die "Dask's peer scripts are missing: no seed_array.py / bench_common.py in DASK_PEER_DIR='$DASK_PEER_DIR' (set DASK_PEER_DIR to the directory holding them)"
fi
[[ -x "$BENCH_SEED_ARRAY" ]] ||
  die "no executable '$BENCH_SEED_ARRAY': build it with 'cmake --build $REPO/build --target bench_seed_array' (or set BENCH_SEED_ARRAY)"
command -v "$PYTHON" >/dev/null 2>&1 || die "no python interpreter '$PYTHON' (set PYTHON)"

if ! "$PYTHON" -c 'import distributed' >/dev/null 2>&1; then
  echo "compare_seed_arrays: '$PYTHON' cannot import distributed; installing python3-distributed" >&2
  if [[ "$(id -u)" -eq 0 ]]; then SUDO=(); elif command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
    die "not root and no sudo: install python3-distributed yourself"
  fi
  "${SUDO[@]}" apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q python3-distributed python3-dask python3-numpy >&2
  "$PYTHON" -c 'import distributed' || die "'$PYTHON' still cannot import distributed (try PYTHON=/usr/bin/python3)"
fi

echo "compare_seed_arrays: raw outputs in $OUT_DIR" >&2
for ((round = 1; round <= ROUNDS; ++round)); do
  echo "compare_seed_arrays: round $round/$ROUNDS: dask" >&2
  if ! (cd "$DASK_PEER_DIR" && timeout -k 10 "$RUN_TIMEOUT" "$PYTHON" seed_array.py) \
      >"$OUT_DIR/dask.$round.json" 2>"$OUT_DIR/dask.$round.stderr"; then
    echo "compare_seed_arrays: dask run $round failed (see $OUT_DIR/dask.$round.stderr)" >&2
  fi
  echo "compare_seed_arrays: round $round/$ROUNDS: distrib" >&2
  if ! timeout -k 10 "$RUN_TIMEOUT" "$BENCH_SEED_ARRAY" "$REPEATS" \
      >"$OUT_DIR/distrib.$round.jsonl" 2>"$OUT_DIR/distrib.$round.stderr"; then
    echo "compare_seed_arrays: distrib run $round failed (see $OUT_DIR/distrib.$round.stderr)" >&2
  fi
done

"$PYTHON" - "$OUT_DIR" "$ROUNDS" "$DASK_PEER_DIR" <<'EOF'
import json, os, statistics, sys

out_dir, rounds, peer = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def json_lines(path):
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        yield json.loads(line)
                    except ValueError:
                        pass
    except OSError:
        return

dask, ours, errors = {}, {}, []
for r in range(1, rounds + 1):
    for d in json_lines(f"{out_dir}/dask.{r}.json"):
        for k, v in d.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                dask.setdefault(k, []).append(v)
    for d in json_lines(f"{out_dir}/distrib.{r}.jsonl"):
        if "error" in d:
            errors.append(f"distrib round {r}: {d.get('bench')}: {d['error']}")
        elif "median" in d:
            ours.setdefault(d["bench"], []).append(d["median"])

# Dask's memory figures are not re-measured here: they come from its reference run.
dask_ref = {}
try:
    with open(os.path.join(peer, "results.json")) as f:
        figs = json.load(f)["benches"]["memory"]["figures"]
    dask_ref = {k: v["median"] for k, v in figs.items() if isinstance(v.get("median"), (int, float))}
    for role in ("idle", "peak"):
        a, b = dask_ref.get(f"worker_a_{role}_rss_mib"), dask_ref.get(f"worker_b_{role}_rss_mib")
        if a is not None and b is not None:
            dask_ref[f"worker_max_{role}_rss_mib"] = max(a, b)
except (OSError, KeyError, ValueError):
    pass

def med(d, k):
    v = d.get(k)
    return statistics.median(v) if v else None

def ours_sum(*keys):
    vals = [med(ours, k) for k in keys]
    return None if any(v is None for v in vals) else sum(vals)

def fmt(v):
    if v is None:
        return "—"
    if isinstance(v, float) and not v.is_integer() or abs(v) < 1:
        return f"{v:.4g}" if abs(v) < 1000 else f"{v:,.1f}"
    return f"{v:,.0f}"

# (label, dask value, distrib value, ratio?) ; ratio = Dask / distrib (> 1: distrib faster or smaller)
rows = [
    ("start-up: LocalCluster + client ready (s)", med(dask, "startup_total_s"), med(ours, "localcluster_start"), True),
    ("seed1 `(x + x.T).mean(0)` 10k², cold (s)", med(dask, "seed1_cold_s"), med(ours, "seed1_cold"), True),
    ("seed1 warm (s)", med(dask, "seed1_warm_s"), med(ours, "seed1_warm"), True),
    ("seed1 z.sum() (≈10000)", med(dask, "seed1_z_sum"), med(ours, "seed1_z_sum"), False),
    ("seed1 graph tasks, as built", med(dask, "seed1_graph_tasks"), med(ours, "seed1_graph_tasks"), False),
    ("seed1 graph tasks, optimized", med(dask, "seed1_graph_tasks_optimized"), med(ours, "seed1_graph_tasks_optimized"), False),
    ("seed2 `normal(100000×1000).mean()` (s)", med(dask, "seed2_mean_s"), med(ours, "seed2_mean"), True),
    ("seed2 `.std()` (s)", med(dask, "seed2_std_s"), med(ours, "seed2_std"), True),
    ("seed2 mean value (≈0)", med(dask, "seed2_mean_value"), med(ours, "seed2_mean_value"), False),
    ("seed2 std value (≈1)", med(dask, "seed2_std_value"), med(ours, "seed2_std_value"), False),
    ("seed2 mean graph tasks, as built / optimized",
     None if med(dask, "seed2_mean_graph_tasks") is None else f"{fmt(med(dask, 'seed2_mean_graph_tasks'))} / {fmt(med(dask, 'seed2_mean_graph_tasks_optimized'))}",
     None if med(ours, "seed2_mean_graph_tasks") is None else f"{fmt(med(ours, 'seed2_mean_graph_tasks'))} / {fmt(med(ours, 'seed2_mean_graph_tasks_optimized'))}", False),
    ("seed2 std graph tasks, as built / optimized",
     None if med(dask, "seed2_std_graph_tasks") is None else f"{fmt(med(dask, 'seed2_std_graph_tasks'))} / {fmt(med(dask, 'seed2_std_graph_tasks_optimized'))}",
     None if med(ours, "seed2_std_graph_tasks") is None else f"{fmt(med(ours, 'seed2_std_graph_tasks'))} / {fmt(med(ours, 'seed2_std_graph_tasks_optimized'))}", False),
    ("seed2, seed's flow: scatter + submit(mean) + submit(std) + gather, warm (s)", None, med(ours, "seed2_scatter_mean_std_total"), False),
    ("  the same, first run on the cluster (s)", None, med(ours, "seed2_scatter_mean_std_total_first"), False),
    ("  of which mean ready (s)", None, med(ours, "seed2_scatter_mean_ready"), False),
    ("  the client.scatter(x) call itself (s)", None, med(ours, "seed2_scatter_call"), False),
    ("seed2 mean over blocks already in memory (s)", None, med(ours, "seed2_resident_mean"), False),
    ("seed2 std over blocks already in memory (s)", None, med(ours, "seed2_resident_std"), False),
    ("seed1 locally, `z.compute()` thread pool, cold (s)", None, med(ours, "seed1_local_cold"), False),
    ("seed1 locally, warm (s)", None, med(ours, "seed1_local_warm"), False),
    ("seed1 limit: plain loops, 2 threads, one process (s)", None, med(ours, "seed1_limit_2threads"), False),
    ("seed1 limit: plain loops, 1 thread (s)", None, med(ours, "seed1_limit_1threads"), False),
    ("shutdown (s)", med(dask, "shutdown_s"), med(ours, "shutdown"), True),
    ("idle RSS, client + scheduler (MiB)¹", dask_ref.get("main_idle_rss_mib"), ours_sum("idle_rss_main", "idle_rss_scheduler"), True),
    ("idle RSS, one worker (MiB)¹", dask_ref.get("worker_max_idle_rss_mib"), med(ours, "idle_rss_worker_max"), True),
    ("peak RSS, client + scheduler, seed1 + seed2 (MiB)¹ ²", dask_ref.get("main_peak_rss_mib"), ours_sum("peak_rss_main", "peak_rss_scheduler"), True),
    ("peak RSS, larger worker, seed1 + seed2 (MiB)¹", dask_ref.get("worker_max_peak_rss_mib"), med(ours, "peak_rss_worker_max"), True),
    ("peak RSS, larger worker, seed's scatter flow (MiB)", None, med(ours, "peak_rss_scatter_worker_max"), False),
]

print(f"\n{rounds} rounds each, alternating (dask, distrib, ...); medians over rounds "
      "(distrib's warm figures are themselves medians of its repeats).\n")
print("| workload | Dask | distrib | ratio (Dask / distrib) |")
print("|---|---:|---:|---:|")
for label, a, b, ratio in rows:
    r = ""
    if ratio and isinstance(a, (int, float)) and isinstance(b, (int, float)) and b > 0:
        r = f"{a / b:.2f}×"
    a_s = a if isinstance(a, str) else fmt(a)
    b_s = b if isinstance(b, str) else fmt(b)
    print(f"| {label} | {a_s} | {b_s} | {r} |")
print("\nratio > 1: distrib is faster / smaller. "
      "¹ Dask's RSS figures are the medians of its reference run (results.json, memory.py), not re-measured here; "
      "Dask's client, scheduler and nannies share one process. "
      "² distrib: sum of the two processes' peaks.")
if errors:
    print("\nErrors reported by bench_seed_array:")
    for e in errors:
        print(f"- {e}")
missing = [f"dask.{r}" for r in range(1, rounds + 1) if not list(json_lines(f"{out_dir}/dask.{r}.json"))]
missing += [f"distrib.{r}" for r in range(1, rounds + 1) if not list(json_lines(f"{out_dir}/distrib.{r}.jsonl"))]
if missing:
    print(f"\nNo output from: {', '.join(missing)} (see the .stderr files in {out_dir})")
EOF
