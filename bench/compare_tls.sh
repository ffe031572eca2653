#!/bin/sh
# TLS against plain TCP on the same LocalCluster workloads, alternating runs (issue 17):
# round trip and 20k map (bench_throughput), 1 GB scatter/gather (bench_transfer), both with
# shared memory off so every byte crosses a socket. Prints each run's JSON lines, tagged.
#   bench/compare_tls.sh [build_dir=build] [rounds=3]
set -eu
build=${1:-build}
rounds=${2:-3}
export DISTRIB_BENCH_SHARED_MEMORY=0
modes="tcp tls"
set_mode() {
  if [ "$1" = tls ]; then export DISTRIB_BENCH_SECURITY=tls; else unset DISTRIB_BENCH_SECURITY; fi
}
. "$(dirname "$0")/alternate_modes.sh"
