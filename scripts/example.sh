#!/usr/bin/env bash
# Sets up, builds and runs the seed's first array example on a 2-worker LocalCluster:
# a 10000 x 10000 random array in 1000 x 1000 blocks, (x + x.T).mean(axis=0).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
./build/examples/seed_array_mean
