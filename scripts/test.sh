#!/usr/bin/env bash
# Builds DEngine and runs every test: the README's test command, and exactly what CI runs.
#   1. a RelWithDebInfo build: unit tests, the simulation's seed sweep, the simulator's self-tests,
#      the storage's crash-point, property and corpus tests;
#   2. an AddressSanitizer + UndefinedBehaviorSanitizer build of the same, with a shorter sweep;
#   3. a ThreadSanitizer build of the storage tests that run threads (the group-commit writer);
#   4. the libFuzzer targets of the log reader, the wire codec, the handshake, the key-value snapshot, the
#      client protocol and the HTTP gateway's parser (clang), each run for a bounded
#      time over its corpus (20 s and 10 s: DENGINE_FUZZ_SECONDS, DENGINE_FUZZ_CODEC_SECONDS).
# Environment: DENGINE_SIM_SEEDS (default 4000) seeds for the main sweep; DENGINE_QUICK=1 runs step 1 only;
# DENGINE_SLOW_TESTS=1 adds the long checks kept out of CI (a bug the main sweep finds only late).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh

jobs=$(nproc)
seeds=${DENGINE_SIM_SEEDS:-4000}

echo "== build (RelWithDebInfo)"
# -g1: line tables for backtraces, without the full debug information that slows every compile.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
    -DDENGINE_SIM_SEEDS="$seeds" >/dev/null
cmake --build build -j"$jobs"
echo "== tests"
ctest --test-dir build -j"$jobs" --output-on-failure

[ "${DENGINE_QUICK:-0}" = "1" ] && exit 0

echo "== build (address + undefined sanitizers)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g1" -DDENGINE_SANITIZE=address -DDENGINE_SIM_SEEDS=60 \
    -DDENGINE_SIM_SHARDS=2 -DDENGINE_BUILD_BENCHMARKS=OFF -DDENGINE_BUILD_EXAMPLES=OFF -DDENGINE_BUILD_QML=OFF >/dev/null
cmake --build build-asan -j"$jobs"
echo "== tests under address + undefined sanitizers"
# The bug-injection sweeps only re-run the simulator with known bugs on: covered by step 1. The
# package consumer test links an uninstrumented program against the library: covered by step 1.
# The WAL's crash-point sweep runs one of its eight seeds here and the property test none: the
# others replay the same code on other workloads (step 1 runs them all), and CI has 20 minutes.
# The simulator's snapshot and membership sweeps run here as the sim_snapshot and sim_membership
# shards (the same workloads, fewer seeds); the dengine-node process cluster only orchestrates
# processes whose library the other tests run under the sanitizers.
ctest --test-dir build-asan -j"$jobs" --output-on-failure \
    -E 'InjectedBugs|^cmake\.|WalCrashTest\.EveryOperationPoint/seed[2-8]|WalPropertyTest|Simulation\.the(Snapshot|Membership)Sweep|tst_cluster_processes|^chaos\.'

echo "== build (thread sanitizer, storage)"
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DDENGINE_SANITIZE=thread \
    -DDENGINE_BUILD_BENCHMARKS=OFF -DDENGINE_BUILD_EXAMPLES=OFF -DDENGINE_BUILD_QML=OFF >/dev/null
cmake --build build-tsan -j"$jobs" --target tst_storage_runtime
echo "== tests under thread sanitizer"
ctest --test-dir build-tsan -j"$jobs" --output-on-failure -R '^storage\.(LogWriter|SnapshotStore|RaftOnWal)'

echo "== build (libFuzzer, clang)"
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
    -DCMAKE_CXX_COMPILER=clang++ -DDENGINE_FUZZ=ON \
    -DDENGINE_BUILD_BENCHMARKS=OFF -DDENGINE_BUILD_EXAMPLES=OFF -DDENGINE_BUILD_QML=OFF >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_wal_reader fuzz_codec fuzz_hellogate fuzz_kvsnapshot fuzz_clientcodec fuzz_httpparser
echo "== fuzzing the log reader and the wire codec (bounded)"
ctest --test-dir build-fuzz -j"$jobs" --output-on-failure -L fuzz # each fuzzer runs on one core
