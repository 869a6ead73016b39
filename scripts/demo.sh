#!/usr/bin/env bash
# The main job: builds DEngine and runs examples/helloworld, three embedded nodes in one process
# printing their lifecycle signals, doing key-value calls and surviving the leader's stop.
# DENGINE_DEMO=sim runs the simulator's narrated cluster instead. Arguments go to the program.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
if [ "${DENGINE_DEMO:-}" = sim ]; then
    cmake --build build -j"$(nproc)" --target simcluster
    exec build/examples/simcluster "$@"
fi
cmake --build build -j"$(nproc)" --target helloworld
exec build/examples/helloworld "$@"
