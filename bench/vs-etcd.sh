#!/usr/bin/env bash
# DEngine and etcd side by side, in one run on this machine, under the reference workload of
# ../shared/bench/README.md: runs bench/engine_bench (embedded), then `dengine bench` through
# DEngineClient against three dengined processes (the standalone deployment, over the client
# protocol), then etcd's own wrk script against dengined's HTTP gateway, then
# ../shared/bench/etcd-baseline.sh (3 members), and prints each figure with its ratio to etcd's. Both use fresh data directories on the
# same disk. About four minutes; keep the machine otherwise idle (this disk's rates drift).
#   bench/vs-etcd.sh [BUILD_DIR]        environment: SECONDS_PER_ROW (5), ROUNDS (1), PAIRS (0)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shared=${SHARED_BENCH:-../shared/bench}
secs=${SECONDS_PER_ROW:-5}
rounds=${ROUNDS:-1}
for tool in etcd wrk python3 curl; do
    command -v "$tool" >/dev/null || { echo "vs-etcd: needs $tool (scripts/setup-debian.sh --bench installs it)" >&2; exit 1; }
done
[ -x "$build/bench/engine_bench" ] || { echo "vs-etcd: build $build/bench/engine_bench first" >&2; exit 1; }
out=$(mktemp -d "${TMPDIR:-/tmp}/vs-etcd.XXXXXX")
trap 'rm -rf "$out"' EXIT
data=$(pwd)/vs-etcd.tmp
[ -x "$build/src/server/dengined" ] && [ -x "$build/src/cli/dengine" ] || { echo "vs-etcd: build dengined and dengine first" >&2; exit 1; }
# Three dengined on 127.0.0.1 (plain TCP between them and to clients, as etcd's baseline runs;
# fsync on; lease reads allowed, for the leaseget row), a fresh cluster for every row as
# engine_bench does (a row does not pay for the snapshots of the one before), then a graceful stop. start_cluster leaves the pids in $pids.
start_cluster() {
    local ports=(7201 7202 7203) cports=(8201 8202 8203) hports=(8281 8282 8283) i
    mkdir -p "$data"
    pids=()
    for i in 1 2 3; do
        cat > "$data/node$i.json" <<JSON
{"nodeId": $i, "dataDirectory": "$data/d$i", "insecure": true, "leaseReads": true,
 "peers": {"1": "127.0.0.1:${ports[0]}", "2": "127.0.0.1:${ports[1]}", "3": "127.0.0.1:${ports[2]}"},
 "server": {"clientAddress": "127.0.0.1:${cports[$((i - 1))]}", "httpAddress": "127.0.0.1:${hports[$((i - 1))]}"}}
JSON
        QT_LOGGING_RULES='dengine.*.warning=false' "$build/src/server/dengined" --config "$data/node$i.json" 2>"$data/node$i.log" &
        pids+=($!)
    done
}
stop_cluster() {
    kill -TERM "${pids[@]}"
    wait "${pids[@]}" || true
    rm -rf "$data"
}
endpoints=127.0.0.1:8201,127.0.0.1:8202,127.0.0.1:8203
# `dengine bench` through DEngineClient (the client protocol), one row per fresh cluster.
run_standalone() {
    local row
    : > "$1"
    for row in put:1 put:16 put:64 lget:16 leaseget:16 sget:16; do
        start_cluster
        "$build/src/cli/dengine" --endpoints "$endpoints" --timeout 30000 bench rows "$row" seconds "$secs" 2>/dev/null | tee -a "$1"
        stop_cluster
    done
}
# The same wrk script and settings that drive etcd's gateway (../shared/bench/etcd_kv.lua, one
# thread, keep-alive), against the leader's HTTP gateway, one row per fresh cluster.
gateway_row() { # MODE CLIENTS FILE: one row on a fresh cluster, appended to FILE
    local mode=$1 c=$2 leader line
    start_cluster
    leader=0
    for _ in $(seq 1 300); do
        leader=$("$build/src/cli/dengine" --endpoints "$endpoints" --timeout 500 --json status 2>/dev/null \
            | python3 -c 'import json,sys
ls=[json.loads(l) for l in sys.stdin if l.strip()]
ok=[o for o in ls if o.get("ready") and o.get("leader","0")!="0"]
print(ok[0]["leader"] if len(ok)==3 else 0)' 2>/dev/null || echo 0)
        [ "$leader" != 0 ] && break
        sleep 0.1
    done
    "$build/src/cli/dengine" --endpoints "$endpoints" put readkey000000000 "$(head -c 128 /dev/zero | tr '\0' v)" >/dev/null
    wrk -t1 -c"$c" -d"${secs}s" --timeout 10s -s "$shared/etcd_kv.lua" "http://127.0.0.1:828$leader" -- "$mode" 100000 128 readkey000000000 1 \
        >"$out/wrk-gw.txt" 2>&1 || true
    line=$(grep '^WRKRESULT' "$out/wrk-gw.txt" || true)
    if [ -n "$line" ]; then
        python3 - "$line" "$mode" "$c" <<'PY' | tee -a "$3"
import sys
f = dict(kv.split("=", 1) for kv in sys.argv[1].split()[1:])
print(f"3   dhttp   {sys.argv[2]:<8} {int(sys.argv[3]):4d} {float(f['rps']):10.0f} {float(f['p50_us'])/1000:9.2f} {float(f['p99_us'])/1000:9.2f} {int(float(f['errors'])):6d}      -")
PY
    else
        echo "3   dhttp   $mode $c FAILED (see $out/wrk-gw.txt)" | tee -a "$3"
    fi
    stop_cluster
}
run_gateway() {
    local row
    : > "$1"
    for row in put:1 put:16 put:64 lget:16 sget:16; do
        gateway_row "${row%%:*}" "${row##*:}" "$1"
    done
}
# The allocator is part of the setup: dengined and dengine link tcmalloc unless built with
# DENGINE_ALLOCATOR=system (cmake/DEngineAllocator.cmake); engine_bench uses the system's.
allocator=system
if ldd "$build/src/server/dengined" 2>/dev/null | grep -q tcmalloc; then allocator=tcmalloc; fi
echo "vs-etcd: dengined and dengine with the $allocator allocator; engine_bench with the system's"
for r in $(seq "$rounds"); do
    echo "== round $r: DEngine (engine_bench)"
    "$build/bench/engine_bench" --dir "$data" --seconds "$secs" | tee "$out/dengine$r.txt"
    rm -rf "$data"
    echo "== round $r: DEngine on mutual TLS (engine_bench --tls, the put c=64 and linearizable get rows)"
    "$build/bench/engine_bench" --dir "$data" --seconds "$secs" --tls --rows put:64,lget:16 --node "" | tee "$out/dengtls$r.txt"
    rm -rf "$data"
    echo "== round $r: DEngine standalone (3 dengined, dengine bench through DEngineClient)"
    run_standalone "$out/dclient$r.txt"
    echo "== round $r: DEngine standalone, HTTP gateway (3 dengined, wrk with etcd's script)"
    run_gateway "$out/dhttp$r.txt"
    echo "== round $r: etcd ($shared/etcd-baseline.sh, 3 members)"
    VARIANTS=3 DURATION="$secs" RESULTS_FILE="$out/etcd$r.txt" "$shared/etcd-baseline.sh" >/dev/null 2>"$out/etcd$r.log" || {
        tail -20 "$out/etcd$r.log" >&2; exit 1; }
    cat "$out/etcd$r.txt"
done
# PAIRS=N: the row most at the mercy of the disk's flush latency, which drifts over minutes here
# (put c=1: one fsync-bound write at a time), measured in N pairs, each the gateway's row and
# etcd's on fresh clusters one right after the other, so both meet the same disk; the ratio of each
# pair, and their median. The order alternates (odd pairs DEngine first, even pairs etcd first), so
# a disk that slows down or speeds up during the run favours neither.
pair_etcd() { # P
    VARIANTS=3 DURATION="$secs" WORKLOADS=put:1 FAILOVER_TRIALS=0 FSYNC_PROBE=0 RESULTS_FILE="$out/pair-e$1.txt" \
        "$shared/etcd-baseline.sh" >/dev/null 2>"$out/pair-e$1.log" || { tail -20 "$out/pair-e$1.log" >&2; exit 1; }
    grep -E '^3 +wrk' "$out/pair-e$1.txt"
}
pairs=${PAIRS:-0}
for p in $(seq "$pairs"); do
    : > "$out/pair-d$p.txt"
    if [ $((p % 2)) = 1 ]; then
        echo "== pair $p: put c=1, DEngine's gateway then etcd's"
        gateway_row put 1 "$out/pair-d$p.txt"
        pair_etcd "$p"
    else
        echo "== pair $p: put c=1, etcd's then DEngine's gateway"
        pair_etcd "$p"
        gateway_row put 1 "$out/pair-d$p.txt"
    fi
done
python3 - "$out" "$rounds" "$pairs" <<'PY'
import re, statistics, sys
out, rounds, pairs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def rows(path, tool):
    r = {}
    for line in open(path):
        f = line.split()
        if len(f) >= 8 and f[0] == "3" and f[1] == tool:
            try:
                r[(f[2], f[3])] = (float(f[4]), float(f[5]), float(f[6]))
            except ValueError:
                pass
        m = re.match(r"N=3\s+(ready|failover)\S*:.*all=\[([\d -]*)\]", line)
        if m and m.group(2).split():
            r[m.group(1)] = [int(x) for x in m.group(2).split()]
    return r
d = [rows(f"{out}/dengine{i}.txt", "dengine") for i in range(1, rounds + 1)]
t = [rows(f"{out}/dengtls{i}.txt", "dengtls") for i in range(1, rounds + 1)]
s = [rows(f"{out}/dclient{i}.txt", "dclient") for i in range(1, rounds + 1)]
h = [rows(f"{out}/dhttp{i}.txt", "dhttp") for i in range(1, rounds + 1)]
e = [rows(f"{out}/etcd{i}.txt", "wrk") for i in range(1, rounds + 1)]
def med(runs, key, i):
    xs = [x[key][i] for x in runs if key in x]
    return statistics.median(xs) if xs else float("nan")
ALL = [("put", "1", "put"), ("put", "16", "put"), ("put", "64", "put"), ("lget", "16", "lget"), ("leaseget", "16", "lget"), ("sget", "16", "sget")]
def against_etcd(title, column, runs, rows, latency, etcd_column="etcd", name_etcd_row=True):
    # One table: each row's median ops/s beside etcd's (the row etcd ran for it), and the ratio;
    # p50 and p99 too where latency(load, c).
    print()
    print(title)
    print(f"| row | {column} | {etcd_column} | ratio |")
    print("|---|---|---|---|")
    for load, c, etcdLoad in rows:
        k, ek = (load, c), (etcdLoad, c)
        ours, theirs = med(runs, k, 0), med(e, ek, 0)
        named = f" ({etcdLoad})" if name_etcd_row else ""
        print(f"| {load} c={c} ops/s | {ours:.0f} | {theirs:.0f}{named} | {ours / theirs:.2f}x |")
        if latency(load, c):
            for i, name in ((1, "p50"), (2, "p99")):
                o, theirs = med(runs, k, i), med(e, ek, i)
                print(f"| {load} c={c} {name} ms | {o:.2f} | {theirs:.2f} | {o / theirs:.2f}x (lower is better) |")
if rounds:
    against_etcd(f"DEngine / etcd on this machine, medians of {rounds} round(s); etcd driven by wrk over its HTTP gateway", "DEngine", d, ALL,
                 lambda load, c: load == "put" and c in ("1", "64"))
    for key in ("ready", "failover"):
        ours = [v for x in d if key in x for v in x[key]]
        theirs = [v for x in e if key in x for v in x[key]]
        if ours and theirs:
            mo, mt = statistics.median(ours), statistics.median(theirs)
            print(f"| {key} ms (median) | {mo:.0f} | {mt:.0f} | {mo / mt:.2f}x (lower is better) |")
    against_etcd("DEngine standalone (3 dengined, DEngineClient over the client protocol) / etcd (wrk over its HTTP gateway), same run",
                 "DEngine standalone", s, ALL, lambda load, c: load == "put" and c == "64")
    against_etcd("DEngine's HTTP gateway / etcd's, the same wrk script (../shared/bench/etcd_kv.lua) against each leader, same run",
                 "DEngine gateway", h, [(l, c, l) for l, c, _ in ALL if l != "leaseget"], lambda load, c: c == "64", "etcd gateway", False)
    print()
    print("DEngine with mutual TLS 1.3 between the nodes / plain TCP, same run")
    print("| row | TLS | plain TCP | TLS / plain |")
    print("|---|---|---|---|")
    for load, c in [("put", "64"), ("lget", "16")]:
        k = (load, c)
        on, off = med(t, k, 0), med(d, k, 0)
        print(f"| {load} c={c} ops/s | {on:.0f} | {off:.0f} | {on / off:.2f}x |")
        o1, o2 = med(t, k, 1), med(d, k, 1)
        print(f"| {load} c={c} p50 ms | {o1:.2f} | {o2:.2f} | {o1 / o2:.2f}x |")
if pairs:
    ratios = []
    for p in range(1, pairs + 1):
        o, t = rows(f"{out}/pair-d{p}.txt", "dhttp"), rows(f"{out}/pair-e{p}.txt", "wrk")
        if ("put", "1") in o and ("put", "1") in t:
            ratios.append(o[("put", "1")][0] / t[("put", "1")][0])
            print(f"pair {p}: gateway put c=1 {o[('put', '1')][0]:.0f} ops/s, etcd {t[('put', '1')][0]:.0f}: {ratios[-1]:.2f}x")
    if ratios:
        print(f"put c=1, gateway / etcd, {len(ratios)} pairs: median {statistics.median(ratios):.2f}x (min {min(ratios):.2f}x, max {max(ratios):.2f}x)")
PY
