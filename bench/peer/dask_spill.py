"""Python Dask's side of issue 16's memory benchmark: data three times the workers' memory.

On LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=LIMIT) with
Dask's default memory thresholds (pinned here: target 0.60, spill 0.70, pause 0.80,
terminate 0.95, so a user's dask config cannot change them):

    x = da.random.RandomState(42).random_sample((N, 4096), chunks=(CHUNK_ROWS, 4096))
    x = x.persist(); distributed.wait(x)                  -> persist_s
    x.sum(); (x * 2 + 1).mean(); x.std(axis=0).sum()      -> reduce_s (one after another,
                                                             each result fetched)
    del x (the persisted blocks released)                 -> release_s (until the workers
                                                             hold no key)
    total_s = persist_s + reduce_s + release_s

float64 of TOTAL bytes (default 1.5 GiB: shape (49152, 4096), 48 blocks of 32 MiB) against
2 x 256 MiB: the workers must spill about 1 GiB to --local-directory.

Prints one JSON line per repeat on stdout (a fresh cluster per repeat; its start-up is
startup_s, outside total_s); dask's logs go to stderr.  Failures (workers killed for memory,
KilledWorker, a timeout because the workers paused for good) are reported in the line
("ok": false, "error": ...) rather than raised.  Fields:

  system, total_bytes, memory_limit (per worker, bytes), chunk_bytes, shape, chunks,
  persist_s, reduce_s, reduce_steps_s [sum, mean, std], release_s, total_s, startup_s,
  shutdown_s,
  spilled_bytes_max       max over samples of the sum over workers of the bytes spilled to
                          disk (SpillBuffer.spilled_total: "disk" = pickled size, as the
                          workers report it in their heartbeats, sampled every 0.1 s from the
                          in-process scheduler, live workers only, plus exact client.run
                          reads at the phase ends)
  spilled_sizeof_bytes_max  the same, as sizeof() of the spilled values ("memory" part)
  spill_dir_bytes_max     max over samples of the bytes of files under --local-directory
  spill_dir_files_after   files left under the workers' storage directories after release
                          (spill_dir_files_at_error instead when the repeat failed)
  spill_metrics           per worker: SpillBuffer.get_metrics() at the end (disk write /
                          read counts, bytes, seconds)
  worker_restarts         worker processes started by the nannies beyond the first two
                          (restarts: terminate threshold, or a crash); of which
                          restarts_during_persist before the persist's wait returned
  terminated_for_memory   nanny log lines "exceeded 95% memory budget"
  pause_events, paused_s  transitions to paused seen on the scheduler, and the time (summed
                          over workers) they were seen paused
  worker_rss_max          per worker slot, max sampled RSS (bytes)
  cpu_s                   {"client": CPU seconds of this process (client + scheduler + the
                          two nannies, all in one process), "workers": [per worker slot,
                          summed over its processes], "workers_total": ...}, over persist +
                          reduce + release
  results, results_ok     the three values, and a check of them (sum/n ~ 0.5, the mean is
                          2 * sum / n + 1, each column's std ~ sqrt(1/12))
  ok, error

Run with Debian's interpreter (python3-distributed: dask 2022.12.1):
  nice /usr/bin/python3 bench/peer/dask_spill.py [--total-bytes 1.5GiB] [--memory-limit 256MiB]
      [--chunk-bytes 32MiB] [--repeats 1] [--local-directory DIR] [--timeout 900]
"""
import argparse
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback

perf = time.perf_counter
COLS = 4096
ITEM = 8  # float64

MEMORY_THRESHOLDS = {
    "distributed.worker.memory.target": 0.60,
    "distributed.worker.memory.spill": 0.70,
    "distributed.worker.memory.pause": 0.80,
    "distributed.worker.memory.terminate": 0.95,
}


def emit(d):
    sys.stdout.write(json.dumps(d, sort_keys=True) + "\n")
    sys.stdout.flush()


def env_info():
    import dask
    import distributed
    import numpy

    return {
        "python": sys.version.split()[0],
        "dask": dask.__version__,
        "distributed": distributed.__version__,
        "numpy": numpy.__version__,
        "loadavg_1m_at_start": os.getloadavg()[0],
    }


def dir_usage(path):
    """(bytes, files) of the regular files under path."""
    total = files = 0
    for root, _dirs, names in os.walk(path):
        for n in names:
            try:
                st = os.lstat(os.path.join(root, n))
            except OSError:
                continue
            total += st.st_size
            files += 1
    return total, files


def storage_files(path):
    """Files under the workers' spill directories (.../dask-worker-space/worker-*/storage)."""
    n = 0
    for root, _dirs, names in os.walk(path):
        if "storage" in root.split(os.sep):
            n += len(names)
    return n


def cpu_of(pid):
    try:
        import psutil

        t = psutil.Process(pid).cpu_times()
        return t.user + t.system
    except Exception:
        pass
    try:  # fallback: /proc/<pid>/stat utime + stime
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except Exception:
        return None


def rss_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def self_cpu():
    t = os.times()
    return t.user + t.system


class MemoryLogCounter(logging.Handler):
    """Counts the nanny's "exceeded 95% memory budget" lines (it runs in this process)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.terminated = 0
        self.lines = []

    def emit(self, record):
        try:
            msg = record.getMessage()
        except Exception:
            return
        if "memory budget" in msg:
            self.terminated += 1
            if len(self.lines) < 10:
                self.lines.append(msg[:300])


class Sampler(threading.Thread):
    """Every `interval` s, from this process: the scheduler's view of the workers (spilled
    bytes from heartbeats, paused or not), the nannies' worker pids (restarts), the worker
    processes' CPU seconds and RSS, and the bytes under the local directory."""

    def __init__(self, cluster, local_dir, interval=0.1):
        super().__init__(daemon=True)
        self.cluster, self.local_dir, self.interval = cluster, local_dir, interval
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.pids = {}  # worker slot name -> [pids in start order]
        self.cpu_last = {}  # pid -> last CPU seconds seen
        self.cpu_base = {}  # pid -> CPU seconds at reset (0 for processes started later)
        self.rss_max = {}  # slot -> bytes
        self.reset_measures()

    def reset_measures(self):
        with self.lock:
            self.spilled_disk_max = 0
            self.spilled_sizeof_max = 0
            self.dir_bytes_max = 0
            self.pause_events = 0
            self.paused_s = 0.0
            self.rss_max = {}
            self.was_paused = {}
            self.cpu_base = dict(self.cpu_last)

    def note_spilled(self, disk, sizeof):
        with self.lock:
            self.spilled_disk_max = max(self.spilled_disk_max, disk)
            self.spilled_sizeof_max = max(self.spilled_sizeof_max, sizeof)

    def sample(self, dt):
        # worker processes: pids, CPU, RSS
        try:
            nannies = list(self.cluster.workers.items())
        except Exception:
            nannies = []
        live = set()
        for name, nanny in nannies:
            try:
                pid = nanny.pid
                if pid:
                    live.add(nanny.worker_address)
            except Exception:
                pid = None
            if not pid:
                continue
            with self.lock:
                lst = self.pids.setdefault(name, [])
                if pid not in lst:
                    lst.append(pid)
            c = cpu_of(pid)
            r = rss_of(pid)
            with self.lock:
                if c is not None:
                    self.cpu_last[pid] = c
                if r is not None:
                    self.rss_max[name] = max(self.rss_max.get(name, 0), r)
        # scheduler's view (heartbeats every 0.5 s; status changes sent at once)
        disk = sizeof = 0
        try:
            workers = list(self.cluster.scheduler.workers.values())
        except Exception:
            workers = []
        with self.lock:
            for ws in workers:
                if ws.address not in live:  # a worker being replaced: its data is gone
                    continue
                try:
                    sp = ws.metrics.get("spilled_bytes") or {}
                    disk += int(sp.get("disk", 0))
                    sizeof += int(sp.get("memory", 0))
                    paused = getattr(ws.status, "name", str(ws.status)) == "paused"
                except Exception:
                    continue
                if paused:
                    self.paused_s += dt
                    if not self.was_paused.get(ws.address):
                        self.pause_events += 1
                self.was_paused[ws.address] = paused
            self.spilled_disk_max = max(self.spilled_disk_max, disk)
            self.spilled_sizeof_max = max(self.spilled_sizeof_max, sizeof)
        b, _ = dir_usage(self.local_dir)
        with self.lock:
            self.dir_bytes_max = max(self.dir_bytes_max, b)

    def run(self):
        last = perf()
        while not self.stop_ev.is_set():
            now = perf()
            try:
                self.sample(now - last)
            except Exception:
                pass
            last = now
            self.stop_ev.wait(self.interval)

    def stop(self):
        self.stop_ev.set()
        self.join(5)

    def cpu_by_slot(self):
        with self.lock:
            out = {}
            for name, pids in self.pids.items():
                out[name] = sum(self.cpu_last.get(p, 0.0) - self.cpu_base.get(p, 0.0) for p in pids)
            return out

    def restarts(self):
        with self.lock:
            return sum(max(0, len(p) - 1) for p in self.pids.values())

    def all_pids(self):
        with self.lock:
            return [p for pids in self.pids.values() for p in pids]


def spill_totals(client, timeout=20):
    """{worker address: (sizeof bytes spilled, disk bytes spilled, SpillBuffer metrics)}."""

    def f(dask_worker):
        data = dask_worker.data
        try:
            mem, disk = data.spilled_total
        except AttributeError:
            mem = disk = 0
        try:
            metrics = data.get_metrics()
        except Exception:
            metrics = {}
        return int(mem), int(disk), {k: v for k, v in metrics.items() if isinstance(v, (int, float))}

    res = client.sync(client._run, f, on_error="return", callback_timeout=timeout)
    return {a: v for a, v in res.items() if isinstance(v, tuple)}


def keys_held(client, timeout=20):
    res = client.sync(client._run, lambda dask_worker: len(dask_worker.data), on_error="return",
                      callback_timeout=timeout)
    return sum(v for v in res.values() if isinstance(v, int))


def check_results(res, n):
    s, m, sd = res.get("sum"), res.get("mean"), res.get("std_sum")
    if None in (s, m, sd):
        return False
    mean_x = s / n
    return (abs(mean_x - 0.5) < 1e-3
            and abs(m - (2 * mean_x + 1)) < 1e-9 * max(1.0, abs(m))
            and abs(sd / COLS - math.sqrt(1 / 12)) < 1e-2)


def one_repeat(args, rep, local_root):
    import dask
    import dask.array as da
    from dask.distributed import Client, LocalCluster, wait

    deadline = perf() + args.timeout

    def left(cap=None):
        r = deadline - perf()
        if r <= 1:
            raise TimeoutError(f"the run's {args.timeout:.0f} s budget is spent")
        return r if cap is None else min(r, cap)

    chunk_rows = max(1, args.chunk_bytes // (COLS * ITEM))
    rows = max(1, args.total_bytes // (COLS * ITEM))
    out = env_info()
    out.update(system="dask", repeat=rep, total_bytes=rows * COLS * ITEM,
               memory_limit=args.memory_limit, chunk_bytes=chunk_rows * COLS * ITEM,
               shape=[rows, COLS], chunks=[chunk_rows, COLS],
               n_blocks=math.ceil(rows / chunk_rows), n_workers=2, threads_per_worker=1,
               thresholds={k.rsplit(".", 1)[1]: v for k, v in MEMORY_THRESHOLDS.items()},
               ok=False, error=None, persist_s=None, reduce_s=None, release_s=None,
               total_s=None, reduce_steps_s=[], results={}, results_ok=False)

    local_dir = tempfile.mkdtemp(prefix=f"repeat{rep}.", dir=local_root)
    out["local_directory"] = local_dir
    counter = MemoryLogCounter()
    for name in ("distributed.nanny", "distributed.worker.memory"):
        logging.getLogger(name).addHandler(counter)

    cluster = client = sampler = None
    phase = "startup"
    cpu0 = None
    t_persist = None
    try:
        t0 = perf()
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               memory_limit=args.memory_limit, dashboard_address=None,
                               local_directory=local_dir)
        client = Client(cluster)
        client.wait_for_workers(2, timeout=left(120))
        out["startup_s"] = perf() - t0

        sampler = Sampler(cluster, local_dir)
        sampler.sample(0.0)
        sampler.reset_measures()
        sampler.start()
        cpu0 = self_cpu()

        rs = da.random.RandomState(42 + rep)
        x = rs.random_sample((rows, COLS), chunks=(chunk_rows, COLS))

        phase = "persist"
        t_persist = perf()
        x = x.persist()
        wait(x, timeout=left())
        out["persist_s"] = perf() - t_persist
        out["restarts_during_persist"] = sampler.restarts()
        try:
            tot = spill_totals(client)
            sampler.note_spilled(sum(v[1] for v in tot.values()), sum(v[0] for v in tot.values()))
            out["spilled_after_persist"] = sum(v[1] for v in tot.values())
        except Exception as e:
            out["spill_totals_error"] = repr(e)

        phase = "reduce"
        t1 = perf()
        steps = [("sum", lambda: x.sum()),
                 ("mean", lambda: (x * 2 + 1).mean()),
                 ("std_sum", lambda: x.std(axis=0).sum())]
        for name, build in steps:
            phase = f"reduce:{name}"
            ts = perf()
            fut = client.compute(build())
            out["results"][name] = float(fut.result(timeout=left()))
            del fut
            out["reduce_steps_s"].append(perf() - ts)
            try:
                tot = spill_totals(client)
                sampler.note_spilled(sum(v[1] for v in tot.values()), sum(v[0] for v in tot.values()))
                out["spill_metrics"] = {a: v[2] for a, v in sorted(tot.items())}
            except Exception as e:
                out["spill_totals_error"] = repr(e)
        out["reduce_s"] = perf() - t1
        out["results_ok"] = check_results(out["results"], rows * COLS)

        phase = "release"
        t2 = perf()
        del x
        held = None
        while perf() < deadline:
            held = keys_held(client, timeout=left(20))
            if held == 0:
                break
            time.sleep(0.02)
        out["release_s"] = perf() - t2
        out["keys_held_after_release"] = held
        out["total_s"] = perf() - t_persist
        out["spill_dir_files_after"] = storage_files(local_dir)
        out["ok"] = bool(out["results_ok"] and held == 0)
        if not out["results_ok"]:
            out["error"] = "wrong results"
        elif held != 0:
            out["error"] = f"{held} keys still held after release"
    except BaseException as e:  # noqa: BLE001 - report, never crash
        out["ok"] = False
        what = str(e) or ("timed out (--timeout is %.0f s per repeat)" % args.timeout
                          if isinstance(e, TimeoutError) else "")
        out["error"] = f"{phase}: {type(e).__name__}: {what}"[:2000]
        out["traceback_tail"] = traceback.format_exc().splitlines()[-6:]
        if t_persist is not None and out["total_s"] is None:
            out["elapsed_until_error_s"] = perf() - t_persist
        if isinstance(e, KeyboardInterrupt):
            raise
    finally:
        if cpu0 is not None:
            out["cpu_s"] = {"client": self_cpu() - cpu0}
        if sampler is not None:
            try:
                sampler.sample(0.0)
            except Exception:
                pass
            sampler.stop()
            slots = sampler.cpu_by_slot()
            names = sorted(slots)
            out.setdefault("cpu_s", {})["workers"] = [slots[n] for n in names]
            out["cpu_s"]["workers_total"] = sum(slots.values())
            out["worker_restarts"] = sampler.restarts()
            out["spilled_bytes_max"] = sampler.spilled_disk_max
            out["spilled_sizeof_bytes_max"] = sampler.spilled_sizeof_max
            out["spill_dir_bytes_max"] = sampler.dir_bytes_max
            out["pause_events"] = sampler.pause_events
            out["paused_s"] = sampler.paused_s
            out["worker_rss_max"] = [sampler.rss_max.get(n) for n in names]
            pids = sampler.all_pids()
        else:
            pids = []
        out["terminated_for_memory"] = counter.terminated
        if counter.lines:
            out["memory_log"] = counter.lines
        for name in ("distributed.nanny", "distributed.worker.memory"):
            logging.getLogger(name).removeHandler(counter)
        if out.get("spill_dir_files_after") is None:  # an error: what is left at that point
            out["spill_dir_files_at_error"] = storage_files(local_dir)
        out["shutdown_s"] = shutdown(client, cluster, pids)
        shutil.rmtree(local_dir, ignore_errors=True)
    return out


def shutdown(client, cluster, pids, timeout=60):
    """Close client and cluster in a thread, bounded; kill our worker processes if stuck."""
    t0 = perf()

    def close():
        try:
            if client is not None:
                client.close(timeout=timeout / 2)
        except Exception:
            pass
        try:
            if cluster is not None:
                cluster.close(timeout=timeout / 2)
        except Exception:
            pass

    th = threading.Thread(target=close, daemon=True)
    th.start()
    th.join(timeout)
    for pid in pids:  # only the worker processes this script's nannies started
        try:
            os.kill(pid, 0)
        except OSError:
            continue
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    return perf() - t0


def main():
    from dask.utils import parse_bytes

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--total-bytes", default="1.5GiB", help="array size (default 1.5GiB)")
    ap.add_argument("--memory-limit", default="256MiB", help="per worker (default 256MiB)")
    ap.add_argument("--chunk-bytes", default="32MiB", help="block size (default 32MiB)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--local-directory", default=None,
                    help="parent of the workers' directories (default: a new temp dir, removed)")
    ap.add_argument("--timeout", type=float, default=900.0,
                    help="seconds allowed per repeat, start-up to shutdown (default 900)")
    args = ap.parse_args()
    args.total_bytes = parse_bytes(args.total_bytes)
    args.memory_limit = parse_bytes(args.memory_limit)
    args.chunk_bytes = parse_bytes(args.chunk_bytes)

    import dask

    dask.config.set(MEMORY_THRESHOLDS)
    owned = args.local_directory is None
    root = tempfile.mkdtemp(prefix="dask_spill.") if owned else args.local_directory
    os.makedirs(root, exist_ok=True)
    try:
        for rep in range(args.repeats):
            emit(one_repeat(args, rep, root))
    finally:
        if owned:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
