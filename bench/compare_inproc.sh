#!/bin/sh
# inproc:// against Unix sockets in a threads-mode LocalCluster (processes = false), the
# same build, alternating runs (issue 17): round trip and 20k map (bench_throughput), 1 GB
# scatter/gather (bench_transfer). Prints each run's JSON lines, tagged.
#   bench/compare_inproc.sh [build_dir=build] [rounds=3]
set -eu
build=${1:-build}
rounds=${2:-3}
export DISTRIB_BENCH_PROCESSES=0
modes="unix inproc"
set_mode() {
  if [ "$1" = unix ]; then export DISTRIB_INPROC=0; else unset DISTRIB_INPROC; fi
}
. "$(dirname "$0")/alternate_modes.sh"
