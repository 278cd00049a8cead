#!/bin/sh
# grpc-load.sh - durable puts over gRPC and over the v3 JSON gateway, same
# load, fresh single-node server per cell, rounds interleaved: throughput
# and server CPU per put (utime+stime from /proc/PID/stat around the run).
#
#   bench/grpc-load.sh [ROUNDS] [SECONDS]    (MS_BUILD: default ./build)
#
# With OLD_SERVER=path, a third cell per round runs --api grpc against that
# binary (label grpc-old): an A/B of a server change under the same load.
# Prints one line per cell: round api ops/s p50 p99 errors cpu_s us/put.
set -eu
B=${MS_BUILD:-$(pwd)/build}
ROUNDS=${1:-3}
SECS=${2:-5}
PORT=${PORT:-25300}
DIR=$(mktemp -d /tmp/grpc-load.XXXXXX)
trap 'rm -rf "$DIR"' EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

cell() { # round label
    api=$2 server=$B/metastore-server
    if [ "$2" = grpc-old ]; then api=grpc server=$OLD_SERVER; fi
    rm -rf "$DIR/d"
    "$server" --data-dir "$DIR/d" \
        --listen-client-urls "http://127.0.0.1:$PORT" \
        --listen-peer-urls "http://127.0.0.1:$((PORT + 1))" \
        --snapshot-count 100000 >"$DIR/log" 2>&1 &
    pid=$!
    i=0
    until curl -sf -o /dev/null "http://127.0.0.1:$PORT/health"; do
        i=$((i + 1)); [ $i -lt 100 ] || { cat "$DIR/log"; exit 1; }
        sleep 0.1
    done
    t0=$(cpu_ticks $pid)
    "$B/metastore-bench" load --endpoints "http://127.0.0.1:$PORT" \
        --api "$api" --clients 256 --conns 16 --op put --val-size 256 \
        --key-space 10000000 --duration "$SECS" --json --quiet >"$DIR/out"
    t1=$(cpu_ticks $pid)
    kill -TERM $pid; wait $pid || true
    jq -r --arg r "$1" --arg l "$2" --argjson t "$((t1 - t0))" \
        '[$r, $l, (.ops_per_sec|floor), .p50_ms, .p99_ms, .errors,
          ($t / 100), (($t / 100) / .ops * 1e6 * 10 | round / 10)] | @tsv' \
        "$DIR/out"
}

printf 'round\tapi\tops/s\tp50_ms\tp99_ms\terrors\tcpu_s\tus/put\n'
cells="v3 grpc${OLD_SERVER:+ grpc-old}"
for r in $(seq 1 "$ROUNDS"); do
    # rotate the order each round
    set -- $cells
    shift $(((r - 1) % $#))
    order="$*"
    for c in $cells; do
        case " $order " in *" $c "*) ;; *) order="$order $c" ;; esac
    done
    for c in $order; do cell "$r" "$c"; done
done
