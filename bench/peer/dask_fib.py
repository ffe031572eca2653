"""Python Dask's side of bench_launching_tasks (issue 19, "Measure").

The same tree: fib(n) where every call is a task (pure=False) that submits its two children
from inside the task with distributed.worker_client() (which secedes while it waits, as
distrib's WorkerClient), on a LocalCluster of 2 worker processes x 1 thread (no dashboard).
One warm-up, then ROUNDS timed rounds: wall time of client.submit(fib, n).result(),
tasks/s (2 * fib(n + 1) - 1 tasks), and the CPU seconds of the scheduler (in this process,
LocalCluster's default), the worker processes, over the round.

Prints one JSON line per figure, as bench_launching_tasks.
  /usr/bin/python3 bench/peer/dask_fib.py [--n 15] [--rounds 5]
"""
import argparse
import json
import os
import statistics
import time

from distributed import Client, LocalCluster, worker_client


def fib(n):
    if n < 2:
        return n
    with worker_client() as c:
        a = c.submit(fib, n - 1, pure=False)
        b = c.submit(fib, n - 2, pure=False)
        return a.result() + b.result()


def fib_value(n):
    return n if n < 2 else fib_value(n - 1) + fib_value(n - 2)


def cpu_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


def report(name, unit, runs):
    print(json.dumps({"bench": name, "unit": unit, "median": statistics.median(runs), "runs": runs}), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=15)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        tasks = 2 * fib_value(a.n + 1) - 1
        assert client.submit(fib, a.n, pure=False).result() == fib_value(a.n)
        wall, rate, cpu_sched, cpu_workers = [], [], [], []
        for _ in range(a.rounds):
            s0, w0 = cpu_of(os.getpid()), sum(cpu_of(p) for p in pids)
            t0 = time.perf_counter()
            got = client.submit(fib, a.n, pure=False).result()
            dt = time.perf_counter() - t0
            assert got == fib_value(a.n), got
            wall.append(dt)
            rate.append(tasks / dt)
            cpu_sched.append(cpu_of(os.getpid()) - s0)
            cpu_workers.append(sum(cpu_of(p) for p in pids) - w0)
        tag = f".n={a.n}.tasks={tasks}"
        report("dask.launching_tasks.wall" + tag, "s", wall)
        report("dask.launching_tasks.tasks_per_s" + tag, "tasks/s", rate)
        report("dask.launching_tasks.cpu_scheduler_and_client" + tag, "s", cpu_sched)
        report("dask.launching_tasks.cpu_workers" + tag, "s", cpu_workers)


if __name__ == "__main__":
    main()
