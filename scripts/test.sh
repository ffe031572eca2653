#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
DISTRIB_EXTRA_PACKAGES="chromium fonts-liberation openmpi-bin openssh-server openssh-client python3-yaml slurm-wlm munge" scripts/setup.sh
cd build
ctest --output-on-failure --timeout 600 -j2
