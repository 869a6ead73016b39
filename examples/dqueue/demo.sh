#!/usr/bin/env bash
# The work queue while its cluster's leader is killed: three dengined on 127.0.0.1 (plain TCP,
# fresh data under a temporary directory), two producers (300 messages each, idempotent, 100 a
# second each) and two consumers (5 ms per message) as dqueue processes. Half a second at a time it prints what was
# enqueued and acked; after a second it kills the leader (kill -9), two seconds later
# restarts it, and at the end checks that every enqueued message was acked and none twice.
#   examples/dqueue/demo.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
for bin in src/server/dengined src/cli/dengine examples/dqueue/dqueue; do
    [ -x "$build/$bin" ] || { echo "demo: build $build/$bin first (cmake --build $build)" >&2; exit 1; }
done
dir=$(mktemp -d "${TMPDIR:-/tmp}/dqueue-demo.XXXXXX")
declare -A node
workers=()
cleanup() {
    kill -TERM "${workers[@]}" "${node[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
export DENGINE_ENDPOINTS=127.0.0.1:8501,127.0.0.1:8502,127.0.0.1:8503
export QT_LOGGING_RULES='dengine.*.debug=false;dengine.*.info=false;dengine.*.warning=false'
start_node() {
    "$build/src/server/dengined" --config "$dir/node$1.json" 2>>"$dir/node$1.log" &
    node[$1]=$!
    disown "$!" # its kill -9 below is the point, not news for the shell
}
for i in 1 2 3; do
    cat > "$dir/node$i.json" <<JSON
{"nodeId": $i, "dataDirectory": "$dir/d$i", "insecure": true,
 "peers": {"1": "127.0.0.1:7501", "2": "127.0.0.1:7502", "3": "127.0.0.1:7503"},
 "server": {"clientAddress": "127.0.0.1:850$i", "insecureClients": true}}
JSON
    start_node "$i"
done
leader() {
    "$build/src/cli/dengine" --timeout 1000 --json status 2>/dev/null | python3 -c 'import json,sys
ls=[json.loads(l) for l in sys.stdin if l.strip()]
ok=[o for o in ls if o.get("ready") and o.get("leader","0")!="0"]
print(ok[0]["leader"] if ok else 0)' 2>/dev/null || echo 0
}
until [ "$(leader)" != 0 ]; do sleep 0.2; done
echo "cluster up: leader is node $(leader)"
for p in 1 2; do
    "$build/examples/dqueue/dqueue" produce demo --count 300 --prefix "p$p" --idempotent --interval 10 >"$dir/producer$p.out" &
    workers+=($!)
done
for c in 1 2; do
    "$build/examples/dqueue/dqueue" consume demo --process-ms 5 --visibility 3000 >"$dir/consumer$c.out" &
    workers+=($!)
done
count() { cat "$dir"/$1*.out 2>/dev/null | grep -c "^$2 " || true; }
t=0 killed=0 victim=0
while :; do
    sleep 0.5
    t=$((t + 5))
    enq=$(($(count producer ENQ) + $(count producer DUP)))
    ack=$(count consumer ACK)
    printf 't=%2d.%ds  enqueued %4d  acked %4d\n' $((t / 10)) $((t % 10)) "$enq" "$ack"
    if [ $killed = 0 ] && [ $t -ge 10 ]; then
        victim=$(leader)
        kill -9 "${node[$victim]}"
        killed=1
        echo "        kill -9 of node $victim, the leader"
    fi
    if [ $killed = 1 ] && [ $t -ge 30 ]; then
        start_node "$victim"
        killed=2
        echo "        node $victim started again (it catches up, a follower now: leader $(leader))"
    fi
    [ "$enq" -ge 600 ] && [ "$ack" -ge 600 ] && break
    [ $t -ge 600 ] && { echo "demo: not done after a minute" >&2; exit 1; }
done
dups=$(cat "$dir"/consumer*.out | awk '$1 == "ACK" {print $2}' | sort | uniq -d | wc -l)
again=$(cat "$dir"/consumer*.out | awk '$1 == "GOT" {print $2}' | sort | uniq -d | wc -l)
echo "done: $(count producer ENQ) enqueued ($(count producer DUP) retries found already in: not added again)," \
     "$(cat "$dir"/consumer*.out | awk '$1 == "ACK" {print $2}' | sort -u | wc -l) distinct messages acked;" \
     "$again delivered again after a lost claim, $dups acked twice"
