#!/usr/bin/env bash
# The main job: builds DEngine and runs its demo cluster (a narrated 3-node cluster with a failover).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target simcluster
exec build/examples/simcluster "$@"
