"""Python Dask's side of bench_queue_round_trip (issue 19, "Measure").

From one client of a LocalCluster (1 worker process x 1 thread, no dashboard): N pairs of
distributed.Queue put + get, and N pairs of distributed.Lock acquire + release, per round;
the time per pair in microseconds. One JSON line per figure, as bench_queue_round_trip.
  /usr/bin/python3 bench/peer/dask_queue.py [--n 2000] [--rounds 5]
"""
import argparse
import json
import statistics
import time

from distributed import Client, LocalCluster, Lock, Queue


def report(name, unit, runs):
    print(json.dumps({"bench": name, "unit": unit, "median": statistics.median(runs), "runs": runs}), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        q = Queue("bench-queue", client=client)
        lock = Lock("bench-lock", client=client)
        for i in range(100):
            q.put(i)
            q.get(timeout=10)
        queue_us, lock_us = [], []
        for _ in range(a.rounds):
            t0 = time.perf_counter()
            for i in range(a.n):
                q.put(i)
                assert q.get(timeout=10) == i
            queue_us.append((time.perf_counter() - t0) / a.n * 1e6)
            t0 = time.perf_counter()
            for i in range(a.n):
                lock.acquire()
                lock.release()
            lock_us.append((time.perf_counter() - t0) / a.n * 1e6)
        report(f"dask.queue.put_get_round_trip.n={a.n}", "us", queue_us)
        report(f"dask.lock.acquire_release_round_trip.n={a.n}", "us", lock_us)


if __name__ == "__main__":
    main()
