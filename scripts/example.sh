#!/usr/bin/env bash
# Sets up, builds and runs the example on a 2-worker LocalCluster.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
./build/examples/map_gather 10000
