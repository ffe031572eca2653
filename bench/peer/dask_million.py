"""Python Dask's side of bench_many_workers' 1M-task graph (issue 18, "Measure").

The same graph: N independent tasks, futures = client.map(inc, range(N)), on Dask's real
scheduler, in its own process (`python3 -m distributed.cli.dask_scheduler`, no dashboard),
so that its CPU time and memory are read from /proc/<pid> apart from the client's; and
WORKERS real distributed.Worker instances (1 thread each, no nanny) sharing one event loop
in one other process: the closest Dask has to bench_many_workers' simulated workers (those
are real protocol peers multiplexed on one thread that answer at once; Dask's run `inc`
for real, which costs them far more per task than answering costs the simulator).

For each size, in a child process of its own (its process group is killed at --timeout):
  submit_s     client.map(inc, range(N)) returned (the graph is handed to the client's
               event loop; Dask sends it from there)
  complete_s   distributed.wait(futures) returned (every task in memory on a worker)
  gather_s     client.gather(futures), fetched from the workers (not in complete_s)
  scheduler_rss_before / _peak / _all_in_memory, scheduler_hwm (bytes, VmRSS sampled
  every 50 ms, VmHWM), rss_per_task_* = (x - before) / N, scheduler_cpu_s over map + wait.

Sizes are tried largest first (default 1000000, then 200000, 100000); the first that
finishes within --timeout seconds ends the run unless --all. One JSON line per attempt on
stdout (ok false with the reason for one that timed out); dask's logs go to stderr.

  nice /usr/bin/python3 bench/peer/dask_million.py [--sizes 1000000,200000,100000]
      [--workers 10] [--timeout 600] [--all]
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

perf = time.perf_counter


def inc(x):
    return x + 1


def status_bytes(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return -1


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_workers(scheduler_file, n):
    """Child role: n Workers in one event loop, until the scheduler goes away."""
    import asyncio
    from distributed import Worker

    async def main():
        workers = [Worker(scheduler_file=scheduler_file, nthreads=1, name=f"w{i}",
                          memory_limit=0, dashboard=False) for i in range(n)]
        await asyncio.gather(*workers)
        await asyncio.gather(*[w.finished() for w in workers])

    asyncio.run(main())


def run_one(n_tasks, n_workers):
    """Child role: one attempt; prints its JSON line."""
    import dask
    import distributed
    from distributed import Client, wait

    out = {"system": "dask", "dask": dask.__version__, "distributed": distributed.__version__,
           "tasks": n_tasks, "workers": n_workers,
           "workers_kind": "distributed.Worker x %d, nthreads=1, no nanny, one process, one event loop" % n_workers,
           "scheduler_kind": "distributed.Scheduler in its own process (dask_scheduler CLI, no dashboard)",
           "worker_saturation": str(dask.config.get("distributed.scheduler.worker-saturation")),
           "loadavg_1m_at_start": os.getloadavg()[0], "ok": False}
    tmp = tempfile.mkdtemp(prefix="dask-million-")
    sfile = os.path.join(tmp, "scheduler.json")
    sched = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                              "--port", "0", "--no-dashboard", "--scheduler-file", sfile],
                             stdout=sys.stderr, stderr=sys.stderr)
    workers = None
    try:
        while not os.path.exists(sfile):
            time.sleep(0.05)
        time.sleep(0.2)
        workers = subprocess.Popen([sys.executable, __file__, "--role", "workers", "--scheduler-file", sfile,
                                    "--workers", str(n_workers)], stdout=sys.stderr, stderr=sys.stderr)
        client = Client(scheduler_file=sfile)
        client.wait_for_workers(n_workers, timeout=120)
        client.gather(client.map(inc, range(-1000, 0)))  # warm-up: ships inc
        time.sleep(0.5)
        pid = sched.pid
        rss0, hwm0 = status_bytes(pid, "VmRSS"), status_bytes(pid, "VmHWM")
        peak = [rss0]
        sampling = [True]

        def sample():
            while sampling[0]:
                peak[0] = max(peak[0], status_bytes(pid, "VmRSS"))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        cpu0 = cpu_seconds(pid)
        t0 = perf()
        futures = client.map(inc, range(n_tasks))
        out["submit_s"] = perf() - t0
        out["scheduler_cpu_during_submit_s"] = cpu_seconds(pid) - cpu0
        wait(futures)
        out["complete_s"] = perf() - t0
        out["scheduler_cpu_s"] = cpu_seconds(pid) - cpu0
        out["tasks_per_s"] = n_tasks / out["complete_s"]
        out["scheduler_cpu_per_task_us"] = out["scheduler_cpu_s"] / n_tasks * 1e6
        rss_done = status_bytes(pid, "VmRSS")
        print(json.dumps(dict(out, partial="before gather")), file=sys.stderr, flush=True)
        t1 = perf()
        res = client.gather(futures)
        out["gather_s"] = perf() - t1
        sampling[0] = False
        sampler.join()
        hwm = status_bytes(pid, "VmHWM")
        assert len(res) == n_tasks and res[-1] == n_tasks
        out.update(scheduler_rss_before=rss0, scheduler_rss_peak=peak[0], scheduler_rss_all_in_memory=rss_done,
                   scheduler_hwm=hwm, rss_per_task_peak=(peak[0] - rss0) / n_tasks,
                   rss_per_task_all_in_memory=(rss_done - rss0) / n_tasks, hwm_per_task=(hwm - hwm0) / n_tasks,
                   ok=True, loadavg_1m_at_end=os.getloadavg()[0])
        del futures, res
        client.close()
    except Exception as e:  # reported, not raised
        out["error"] = repr(e)
    finally:
        for p in (workers, sched):
            if p is not None:
                p.kill()
                p.wait()
    print(json.dumps(out), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", default="driver")
    ap.add_argument("--scheduler-file")
    ap.add_argument("--sizes", default="1000000,200000,100000")
    ap.add_argument("--tasks", type=int)
    ap.add_argument("--workers", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--all", action="store_true")
    a = ap.parse_args()
    if a.role == "workers":
        return run_workers(a.scheduler_file, a.workers)
    if a.role == "one":
        return run_one(a.tasks, a.workers)
    for n in [int(s) for s in a.sizes.split(",") if s]:
        t0 = perf()
        child = subprocess.Popen([sys.executable, __file__, "--role", "one", "--tasks", str(n), "--workers",
                                  str(a.workers)], stdout=subprocess.PIPE, stderr=sys.stderr, text=True,
                                 start_new_session=True)
        try:
            line, _ = child.communicate(timeout=a.timeout)
            print(line.strip(), flush=True)
            ok = json.loads(line.strip().splitlines()[-1]).get("ok", False) if line.strip() else False
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            print(json.dumps({"system": "dask", "tasks": n, "workers": a.workers, "ok": False,
                              "error": "did not finish within %g s" % a.timeout, "elapsed_s": perf() - t0}),
                  flush=True)
            ok = False
        if ok and not a.all:
            break


if __name__ == "__main__":
    main()
