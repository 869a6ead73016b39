#!/usr/bin/env bash
# The replicated work queue, DEngine's dqueue against the same pattern on etcd, in one run on this
# machine: 8 producers and 8 consumers (each its own connection, closed loop), 128-byte bodies,
# 3 members on 127.0.0.1, fsync on, fresh data directories on the same disk.
#   1. dqueue bench on three dengined processes (DEngineClient per producer and consumer);
#   2. the same, with the leader killed (kill -9) mid-run and restarted: the longest gap in the
#      flow of acks is the failover's;
#   3. bench/etcd_queue.py on a 3-member etcd (txn-based dequeue through its JSON gateway);
# then each figure and the ratio. About a minute and a half.
#   bench/dqueue-vs-etcd.sh [BUILD_DIR]      environment: SECONDS_PER_ROW (10), PRODUCERS (8), CONSUMERS (8)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
secs=${SECONDS_PER_ROW:-10}
np=${PRODUCERS:-8}
nc=${CONSUMERS:-8}
for tool in etcd python3; do
    command -v "$tool" >/dev/null || { echo "dqueue-vs-etcd: needs $tool (scripts/setup-debian.sh --bench installs it)" >&2; exit 1; }
done
for bin in src/server/dengined src/cli/dengine examples/dqueue/dqueue; do
    [ -x "$build/$bin" ] || { echo "dqueue-vs-etcd: build $build/$bin first" >&2; exit 1; }
done
data=$(pwd)/dqueue-bench.tmp
out=$(mktemp -d "${TMPDIR:-/tmp}/dqueue-bench.XXXXXX")
pids=()
cleanup() {
    [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$data" "$out"
}
trap cleanup EXIT
endpoints=127.0.0.1:8401,127.0.0.1:8402,127.0.0.1:8403
export DENGINE_ENDPOINTS=$endpoints
start_node() {
    QT_LOGGING_RULES='dengine.*.info=false;dengine.*.warning=false' "$build/src/server/dengined" --config "$data/node$1.json" 2>>"$data/node$1.log" &
    pids[$1]=$!
}
start_cluster() {
    rm -rf "$data"
    mkdir -p "$data"
    pids=()
    for i in 1 2 3; do
        cat > "$data/node$i.json" <<JSON
{"nodeId": $i, "dataDirectory": "$data/d$i", "insecure": true,
 "peers": {"1": "127.0.0.1:7401", "2": "127.0.0.1:7402", "3": "127.0.0.1:7403"},
 "server": {"clientAddress": "127.0.0.1:840$i", "insecureClients": true}}
JSON
        start_node "$i"
    done
}
stop_cluster() {
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    pids=()
}
leader() {
    "$build/src/cli/dengine" --timeout 1000 --json status 2>/dev/null | python3 -c 'import json,sys
ls=[json.loads(l) for l in sys.stdin if l.strip()]
ok=[o for o in ls if o.get("ready") and o.get("leader","0")!="0"]
print(ok[0]["leader"] if ok else 0)' 2>/dev/null || echo 0
}
bench() {
    QT_LOGGING_RULES='dengine.*.info=false;dengine.*.warning=false' "$build/examples/dqueue/dqueue" bench --producers "$np" --consumers "$nc" \
        --seconds "$secs" --timeline "$@"
}

echo "== dqueue: $np producers, $nc consumers, 3 dengined, fsync on, ${secs}s"
start_cluster
bench | tee "$out/dqueue.txt"
stop_cluster

echo "== dqueue with the leader killed (kill -9) after $((secs / 2 + 2))s of the run, restarted 3s later"
start_cluster
bench > "$out/failover.txt" &
bench_pid=$!
sleep $((secs / 2 + 2)) # the bench's 2 s warm-up, then half the measured time
victim=$(leader)
if [ "$victim" != 0 ]; then
    kill -9 "${pids[$victim]}"
    echo "killed node $victim (the leader) at $(date +%T.%N | cut -c1-12)"
    sleep 3
    start_node "$victim"
fi
wait "$bench_pid"
cat "$out/failover.txt"
stop_cluster

echo "== etcd: the same queue pattern (bench/etcd_queue.py), $np producers, $nc consumers, ${secs}s"
python3 bench/etcd_queue.py --producers "$np" --consumers "$nc" --duration "$secs" | tee "$out/etcd.txt"

python3 - "$out/dqueue.txt" "$out/failover.txt" "$out/etcd.txt" <<'PY'
import re, sys
def kv(path, prefix):
    for line in open(path):
        if line.startswith(prefix):
            return dict(re.findall(r'(\w+%?)=([-\d.]+)', line))
    return {}
d, f, e = kv(sys.argv[1], 'dqueue msgs'), kv(sys.argv[2], 'dqueue msgs'), kv(sys.argv[3], 'etcd-queue ')
gap = kv(sys.argv[2], 'dqueue longest_gap')
print()
print('| queue, 8 producers + 8 consumers, 3 members | dqueue (DEngine) | etcd pattern | ratio |')
print('|---|---|---|---|')
for name, key in (('messages/s end to end (enqueue+dequeue+ack)', 'msgs_per_s'), ('enqueues/s', 'enqueued_per_s')):
    a, b = float(d.get(key, 0)), float(e.get(key, 0))
    print(f'| {name} | {a:,.0f} | {b:,.0f} | {a / b if b else float("nan"):.2f}x |')
print(f'| claim conflicts per acked message | {int(d.get("conflicts",0)) / max(1,int(d.get("acked",1))):.1f} | '
      f'{int(e.get("conflicts",0)) / max(1,int(e.get("acked",1))):.1f} | |')
print(f'| errors | {d.get("errors")} | {e.get("errors")} | |')
print(f'failover (kill -9 of the leader mid-run): longest gap in acks {gap.get("longest_gap_ms","?")} ms; '
      f'{f.get("msgs_per_s","?")} messages/s over the run, errors {f.get("errors","?")}, lost claims {f.get("lost","?")}')
PY
