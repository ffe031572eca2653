#!/usr/bin/env bash
# Tasks that launch tasks on distrib and on Python Dask, alternating, in one run: the
# Fibonacci tree fib(N) where every call is a task that submits its children from inside
# (WorkerClient / worker_client), on 2 workers x 1 thread. Prints each JSON line, then the
# medians of tasks/s and the ratio.
#   bench/compare_fib.sh [pairs=3] [n=15] [rounds=3]
# Needs build/bench/bench_launching_tasks and Debian's python3-distributed (/usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-3}
n=${2:-15}
rounds=${3:-3}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for ((i = 0; i < pairs; i++)); do
  build/bench/bench_launching_tasks "$n" "$rounds" 2>/dev/null | tee -a "$out"
  /usr/bin/python3 bench/peer/dask_fib.py --n "$n" --rounds "$rounds" 2>/dev/null | tee -a "$out"
done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def runs(prefix):
    return [x for r in rows if r["bench"].startswith(prefix) for x in r["runs"]]
d, k = runs("launching_tasks.tasks_per_s"), runs("dask.launching_tasks.tasks_per_s")
print(json.dumps({"bench": "launching_tasks_vs_dask", "distrib_tasks_per_s": statistics.median(d),
                  "dask_tasks_per_s": statistics.median(k),
                  "distrib_over_dask": statistics.median(d) / statistics.median(k),
                  "distrib_cpu_workers_s": statistics.median(runs("launching_tasks.cpu_workers")),
                  "dask_cpu_workers_s": statistics.median(runs("dask.launching_tasks.cpu_workers"))}))
PY
