#!/bin/sh
# inproc:// against Unix sockets in a threads-mode LocalCluster (processes = false), the
# same build, alternating runs (issue 17): round trip and 20k map (bench_throughput), 1 GB
# scatter/gather (bench_transfer). Prints each run's JSON lines, tagged.
#   bench/compare_inproc.sh [build_dir=build] [rounds=3]
set -eu
build=${1:-build}
rounds=${2:-3}
export DISTRIB_BENCH_PROCESSES=0
i=0
while [ "$i" -lt "$rounds" ]; do
  for mode in unix inproc; do
    if [ "$mode" = unix ]; then export DISTRIB_INPROC=0; else unset DISTRIB_INPROC; fi
    "$build/bench/bench_throughput" 20000 1 map,rtt | sed "s/^{/{\"mode\": \"$mode\", /"
    "$build/bench/bench_transfer" 1 1GB | sed "s/^{/{\"mode\": \"$mode\", /"
  done
  i=$((i + 1))
done
