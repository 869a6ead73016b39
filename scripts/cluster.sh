#!/usr/bin/env bash
# A standalone DEngine cluster on this machine: three dengined processes on 127.0.0.1 (peers on
# 7101-7103, clients on 8101-8103 and the HTTP/JSON gateway on 8181-8183, all over mutual TLS with
# certificates made here: an authority, one per member, and one client certificate,
# DIR/certs/client-cli.*), each with its data
# directory under DIR (default /tmp/dengine-cluster), logs in DIR/node<N>.log.
#
#   scripts/cluster.sh start     builds dengined, dengine and dengine-ctl if needed, starts the three
#   scripts/cluster.sh status    what each member says (build/src/cli/dengine status)
#   scripts/cluster.sh stop      SIGTERM to each (a leader hands over first), waits for them
#
# Then, with the environment `start` prints (DENGINE_ENDPOINTS, DENGINE_CACERT, DENGINE_CERT,
# DENGINE_KEY): build/src/cli/dengine put k v
# DENGINE_CLUSTER_DIR changes DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${DENGINE_CLUSTER_DIR:-/tmp/dengine-cluster}
endpoints=127.0.0.1:8101,127.0.0.1:8102,127.0.0.1:8103
# The command line's TLS files (its client certificate, made at start).
export DENGINE_CACERT="$dir/certs/ca.pem" DENGINE_CERT="$dir/certs/client-cli.pem" DENGINE_KEY="$dir/certs/client-cli.key"

case "${1:-}" in
start)
    if [ ! -x build/src/server/dengined ] || [ ! -x build/src/cli/dengine ] || [ ! -x build/src/tools/dengine-ctl ]; then
        scripts/setup-debian.sh
        cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
        cmake --build build -j"$(nproc)" --target dengined dengine-cli dengine-ctl
    fi
    mkdir -p "$dir/certs"
    [ -f "$dir/certs/ca.pem" ] || build/src/tools/dengine-ctl certs init "$dir/certs" --cluster 1
    [ -f "$dir/certs/client-cli.pem" ] || build/src/tools/dengine-ctl certs client "$dir/certs" cli --cluster 1
    for i in 1 2 3; do
        [ -f "$dir/certs/node-$i.pem" ] || build/src/tools/dengine-ctl certs node "$dir/certs" --cluster 1 --node "$i"
        cat > "$dir/node$i.json" <<JSON
{"nodeId": $i, "clusterId": 1, "dataDirectory": "$dir/data$i",
 "peers": {"1": "127.0.0.1:7101", "2": "127.0.0.1:7102", "3": "127.0.0.1:7103"},
 "tlsCaFile": "certs/ca.pem", "tlsCertificateFile": "certs/node-$i.pem", "tlsKeyFile": "certs/node-$i.key",
 "server": {"clientAddress": "127.0.0.1:810$i", "httpAddress": "127.0.0.1:818$i"}}
JSON
        if [ -f "$dir/node$i.pid" ] && kill -0 "$(cat "$dir/node$i.pid")" 2>/dev/null; then
            echo "node $i runs already (pid $(cat "$dir/node$i.pid"))"
            continue
        fi
        build/src/server/dengined --config "$dir/node$i.json" >>"$dir/node$i.log" 2>&1 &
        echo $! >"$dir/node$i.pid"
        echo "node $i: pid $!, peers 127.0.0.1:710$i, clients 127.0.0.1:810$i, log $dir/node$i.log"
    done
    # Wait (bounded) until every member is ready.
    for _ in $(seq 1 100); do
        if [ "$(build/src/cli/dengine --endpoints "$endpoints" --timeout 500 status 2>/dev/null | grep -c '  ready  ')" = 3 ]; then
            build/src/cli/dengine --endpoints "$endpoints" status
            echo
            echo "for the command line (build/src/cli/dengine put k v):"
            echo "export DENGINE_ENDPOINTS=$endpoints DENGINE_CACERT=$DENGINE_CACERT DENGINE_CERT=$DENGINE_CERT DENGINE_KEY=$DENGINE_KEY"
            echo "the HTTP gateway (a member's certificate names it n<id>.c1.dengine):"
            echo "curl --cacert $DENGINE_CACERT --cert $DENGINE_CERT --key $DENGINE_KEY --resolve n1.c1.dengine:8181:127.0.0.1 https://n1.c1.dengine:8181/health"
            exit 0
        fi
        sleep 0.1
    done
    echo "the cluster did not become ready within 10 s; see $dir/node*.log" >&2
    exit 1
    ;;
status)
    exec build/src/cli/dengine --endpoints "$endpoints" status
    ;;
stop)
    for i in 1 2 3; do
        [ -f "$dir/node$i.pid" ] || continue
        pid=$(cat "$dir/node$i.pid")
        kill -TERM "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
        rm -f "$dir/node$i.pid"
        echo "node $i stopped"
    done
    ;;
*)
    echo "usage: scripts/cluster.sh start|status|stop" >&2
    exit 2
    ;;
esac
