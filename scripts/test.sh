#!/usr/bin/env bash
# Builds DEngine and runs every test: the README's test command, and exactly what CI runs.
#   1. a RelWithDebInfo build: unit tests, the simulation's seed sweep, the simulator's self-tests;
#   2. an AddressSanitizer + UndefinedBehaviorSanitizer build of the same, with a shorter sweep.
# Environment: DENGINE_SIM_SEEDS (default 2000) seeds for the main sweep; DENGINE_SKIP_ASAN=1 skips step 2.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh

jobs=$(nproc)
seeds=${DENGINE_SIM_SEEDS:-2000}

echo "== build (RelWithDebInfo)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDENGINE_SIM_SEEDS="$seeds" >/dev/null
cmake --build build -j"$jobs"
echo "== tests"
ctest --test-dir build -j"$jobs" --output-on-failure

if [ "${DENGINE_SKIP_ASAN:-0}" != "1" ]; then
    echo "== build (address + undefined sanitizers)"
    cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DDENGINE_SANITIZE=address -DDENGINE_SIM_SEEDS=60 \
        -DDENGINE_SIM_SHARDS=2 -DDENGINE_BUILD_BENCHMARKS=OFF >/dev/null
    cmake --build build-asan -j"$jobs"
    echo "== tests under sanitizers"
    ctest --test-dir build-asan -j"$jobs" --output-on-failure -E 'InjectedBugs'
fi
