#!/usr/bin/env bash
# What the dashboard costs, against three dengined processes on 127.0.0.1 (plain TCP, fsync on):
#   1. its CPU while it watches the cluster under `dengine bench put:64` (the reference put
#      workload, 64 in flight), measured by bench/dashboard_bench in the same seconds;
#   2. its frame times while the key browser holds 100k keys and scrolls every frame.
#   bench/dashboard.sh [BUILD_DIR]        environment: SECONDS_CPU (30), SECONDS_FRAMES (20), KEYS (100000),
#                                         WRAP (a command to run the CPU measurement under: perf record -g)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
secs=${SECONDS_CPU:-30}
fsecs=${SECONDS_FRAMES:-20}
keys=${KEYS:-100000}
for b in src/server/dengined src/cli/dengine bench/dashboard_bench; do
    [ -x "$build/$b" ] || { echo "dashboard.sh: build $build/$b first" >&2; exit 1; }
done
data=$(mktemp -d "${TMPDIR:-/tmp}/dashboard-bench.XXXXXX")
pids=()
cleanup() {
    [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null && wait "${pids[@]}" 2>/dev/null
    rm -rf "$data"
}
trap cleanup EXIT
ports=(7301 7302 7303) cports=(8301 8302 8303)
for i in 1 2 3; do
    cat > "$data/node$i.json" <<JSON
{"nodeId": $i, "dataDirectory": "$data/d$i", "insecure": true,
 "peers": {"1": "127.0.0.1:${ports[0]}", "2": "127.0.0.1:${ports[1]}", "3": "127.0.0.1:${ports[2]}"},
 "server": {"clientAddress": "127.0.0.1:${cports[$((i - 1))]}"}}
JSON
    QT_LOGGING_RULES='dengine.*.warning=false' "$build/src/server/dengined" --config "$data/node$i.json" 2>"$data/node$i.log" &
    pids+=($!)
done
endpoints=127.0.0.1:8301,127.0.0.1:8302,127.0.0.1:8303
echo "== setup: 3 dengined on loopback, fsync on, plain TCP; $(nproc) cores"
echo "== 1. dashboard CPU while dengine bench put:64 runs: $((secs / 2)) s with the events tab shown, $((secs / 2)) s with the key browser"
"$build/src/cli/dengine" --endpoints "$endpoints" --timeout 30000 bench rows put:64 seconds "$((secs + 15))" 2>/dev/null > "$data/load.txt" &
load=$!
sleep 3 # the load is under way before the measurement starts
QT_LOGGING_RULES="dengine.*.info=false;dengine.*.warning=false" ${WRAP:-} "$build/bench/dashboard_bench" --endpoints "$endpoints" --insecure cpu seconds "$((secs / 2))" tab events
QT_LOGGING_RULES="dengine.*.info=false;dengine.*.warning=false" ${WRAP:-} "$build/bench/dashboard_bench" --endpoints "$endpoints" --insecure cpu seconds "$((secs / 2))" tab keys
wait "$load"
echo "   the load beside it:"; sed 's/^/   /' "$data/load.txt"
echo "== 2. frame times with $keys keys in the key browser"
QT_LOGGING_RULES='dengine.*.info=false;dengine.*.warning=false' "$build/bench/dashboard_bench" --endpoints "$endpoints" --insecure frames seconds "$fsecs" keys "$keys"
