#!/usr/bin/env bash
# Issue 16's data-larger-than-memory workload on distrib and on Python Dask, alternating, in
# one run: a float64 array of TOTAL bytes persisted on 2 workers x 1 thread limited to LIMIT
# each (Dask's thresholds on both: target 0.6, spill 0.7, pause 0.8, terminate 0.95), then
# three reductions, then released. Prints each JSON line, then the medians and the ratio.
#   bench/compare_spill.sh [pairs=3] [total=1.5GiB] [limit=256MiB]
# Needs build/bench/bench_spill_workload and Debian's python3-distributed (/usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-3}
total=${2:-1.5GiB}
limit=${3:-256MiB}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for ((i = 0; i < pairs; i++)); do
  build/bench/bench_spill_workload "$total" "$limit" 1024 1 2>/dev/null | tee -a "$out"
  /usr/bin/python3 bench/peer/dask_spill.py --total-bytes "$total" --memory-limit "$limit" 2>/dev/null | tee -a "$out"
done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def med(system, field):
    v = [r[field] for r in rows if r.get("system") == system and r.get("ok")]
    return statistics.median(v) if v else float("nan")
d, k = med("distrib", "total_s"), med("dask", "total_s")
print(json.dumps({"bench": "spill_workload_vs_dask", "distrib_total_s": d, "dask_total_s": k,
                  "dask_over_distrib": k / d,
                  "distrib_restarts": [r.get("worker_restarts") for r in rows if r.get("system") == "distrib"],
                  "dask_restarts": [r.get("worker_restarts") for r in rows if r.get("system") == "dask"]}))
PY
