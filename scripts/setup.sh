#!/usr/bin/env bash
# Installs the Debian packages distrib needs (as root) and builds it in ./build.
# Usage: scripts/setup.sh [cmake options...]
# DISTRIB_EXTRA_PACKAGES adds Debian packages (scripts/test.sh adds chromium for the
# dashboard's browser test).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ make cmake pkg-config capnproto libcapnp-dev libasio-dev libspdlog-dev libcli11-dev
          libgtest-dev libbenchmark-dev libxxhash-dev librandom123-dev nlohmann-json3-dev
          libmimalloc-dev liblz4-dev libssl-dev libyaml-cpp-dev)
# shellcheck disable=SC2206
packages+=(${DISTRIB_EXTRA_PACKAGES:-})
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends "${missing[@]}"; then
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
cmake --build build -j2
