#!/bin/bash
# stall.sh - event-loop stalls of metastore-server while 1M revisions are
# compacted, while a 1M-key store snapshots, and while a watcher catches up
# through 300k revisions (bench/RESULTS.md).
#
#   bench/stall.sh BUILD_DIR OUT_DIR [compact|snapshot|watch]...
#
# BUILD_DIR holds metastore-server and metastore-bench. Each phase starts a
# fresh single-node server in OUT_DIR (memory; STORAGE=rocksdb for rocksdb), loads it, runs a probe load
# during the event and prints: the probe's latency, the loop iterations
# longer than 5 / 10 / 25 ms during the event (from the
# metastore_loop_busy_seconds histogram), and the longest loop iteration
# since start before and after. snapshot also straces the loop thread
# (io_destroy, and the fork of the snapshot child); NOSTRACE=1 leaves the
# tracer out (it stops the loop thread at every system call it traces and
# so adds to the iterations it measures).
#
# SERVER_FLAGS="..." adds flags to every server started (e.g.
# --huge-pages=false). The snapshot phase also prints the time each
# snapshot kept the loop (the fork, from the server's log).
#
# HOG=N (compact only) runs N busy-looping processes (nice 0, at most 10 s)
# during the event, to reproduce a loaded machine the same way every time.
set -euo pipefail

BUILD=$1
OUT=$2
shift 2
PHASES=${*:-compact snapshot}
PORT=${PORT:-24790}
URL=http://127.0.0.1:$PORT
mkdir -p "$OUT"

metric() { curl -s "$URL/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

# over LE [HIST]: loop iterations longer than LE seconds so far (one
# scrape); HIST metastore_loop_busy_cpu_seconds counts their CPU time
over() {
    local h=${2:-metastore_loop_busy_seconds}
    curl -s "$URL/metrics" | awk -v b="${h}_bucket{le=\"$1\"}" -v c="${h}_count" '
        $1 == b {le = $2} $1 == c {n = $2}
        END {printf "%d\n", n - le}'
}

start() {
    rm -rf "$OUT/data"
    "$BUILD/metastore-server" --data-dir "$OUT/data" --listen-client-urls "$URL" \
        --listen-peer-urls "http://127.0.0.1:$((PORT + 1))" --storage "${STORAGE:-memory}" \
        "$@" ${SERVER_FLAGS:-} >"$OUT/server.log" 2>&1 &
    SPID=$!
    trap 'kill "$SPID" 2>/dev/null || true' EXIT
    for _ in $(seq 1 100); do
        if curl -s -o /dev/null --max-time 1 "$URL/health"; then
            sleep 0.2
            kill -0 "$SPID" 2>/dev/null && return 0
            echo "server exited (port $PORT taken?): $(tail -1 "$OUT/server.log")" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "server did not start" >&2
    exit 1
}

stop() { kill -TERM "$SPID"; wait "$SPID" || true; }

# sched: the loop thread's CPU time and its time runnable but waiting for a
# CPU (ns, /proc schedstat): a long iteration with the waiting grown is
# the machine's doing, not the loop's work
sched() { cat "/proc/$SPID/task/$SPID/schedstat" 2>/dev/null || echo "0 0 0"; }

# steal: CPU time the hypervisor took from this machine's CPUs (all of
# them, ms; /proc/stat): on a virtual machine a loop iteration can be long
# with the loop thread "running" and doing nothing
steal() { awk '$1 == "cpu" {print $9 * 1000 / '"$(getconf CLK_TCK)"'}' /proc/stat; }

report() { # label
    echo "$1: loop iterations > 5 ms: $(($(over 0.005) - O5)), > 10 ms: $(($(over 0.01) - O10)), > 25 ms: $(($(over 0.025) - O25)); with > 5 ms of CPU: $(($(over 0.005 metastore_loop_busy_cpu_seconds) - K5)), > 10 ms: $(($(over 0.01 metastore_loop_busy_cpu_seconds) - K10)); longest since start: before $S0 s, after $(metric metastore_loop_stall_max_seconds) s; most CPU in one iteration: before $K0 s, after $(metric metastore_loop_stall_max_cpu_seconds) s"
    set -- "$1" $(sched)
    echo "$1: loop thread meanwhile: $(( ($2 - C0) / 1000000 )) ms on a CPU, $(( ($3 - W0) / 1000000 )) ms runnable but waiting for one; hypervisor steal $(( $(steal) - ST0 )) ms (all CPUs); load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

mark() {
    O5=$(over 0.005); O10=$(over 0.01); O25=$(over 0.025)
    K5=$(over 0.005 metastore_loop_busy_cpu_seconds)
    K10=$(over 0.01 metastore_loop_busy_cpu_seconds)
    ST0=$(steal)
    S0=$(metric metastore_loop_stall_max_seconds)
    K0=$(metric metastore_loop_stall_max_cpu_seconds)
    set -- $(sched)
    C0=$1 W0=$2
}

load() {
    "$BUILD/metastore-bench" load --endpoints "$URL" --quiet "$@"
}

for phase in $PHASES; do
case $phase in
watch)
    # 300,000 puts to 100 keys, then a watch of every key from revision 2
    # (a catch-up through the whole history) while one connection reads
    start --snapshot-count 100000000
    load --op put --clients 32 --total 300000 --key-space 100 --val-size 64 >/dev/null
    mark
    load --op range --consistency s --clients 1 --duration 6 --key-space 100 >"$OUT/watch-probe.txt" &
    LPID=$!
    sleep 1
    bytes=$( (timeout 4 curl -s -N -X POST "$URL/v3/watch" \
        -d '{"create_request":{"key":"AA==","range_end":"AA==","start_revision":"2"}}' || true) | wc -c)
    wait "$LPID"
    echo "watch: $bytes bytes of events received in 4 s"
    report watch
    awk '/max_ms/ {print; getline; print}' "$OUT/watch-probe.txt" | sed 's/^/watch probe: /'
    stop
    ;;
compact)
    # 1,000,000 puts to 100 keys (64-byte values), no snapshot meanwhile
    start --snapshot-count 100000000
    load --op put --clients 32 --total 1000000 --key-space 100 --val-size 64 >"$OUT/compact-load.txt"
    rev=$(curl -s -X POST "$URL/v3/kv/range" -d '{"key":"eA=="}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
    echo "compact: revision $rev, RSS $(ps -o rss= -p "$SPID") KiB, store bytes $(metric metastore_store_bytes)"
    mark
    HPIDS=()
    for _ in $(seq 1 "${HOG:-0}"); do
        timeout 10 sh -c 'while :; do :; done' &
        HPIDS+=($!)
    done
    # probe: serializable gets on one connection for 6 s; compaction at 1 s
    load --op range --consistency s --clients 1 --duration 6 --key-space 100 >"$OUT/compact-probe.txt" &
    LPID=$!
    sleep 1
    curl -s -o /dev/null -w "compact: /v3/kv/compaction answered in %{time_total} s\n" \
        -X POST "$URL/v3/kv/compaction" -d "{\"revision\":\"$rev\"}"
    for _ in $(seq 1 100); do
        [ "$(metric metastore_compaction_pending)" != 1 ] && break
        sleep 0.05
    done
    wait "$LPID"
    for p in "${HPIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    report compact
    awk '/max_ms/ {print; getline; print}' "$OUT/compact-probe.txt" | sed 's/^/compact probe: /'
    grep -E "swept" "$OUT/server.log" | tail -1 | sed 's/^/compact: /' || true
    echo "compact: RSS after $(ps -o rss= -p "$SPID") KiB, store bytes $(metric metastore_store_bytes)"
    stop
    ;;
snapshot)
    # 1,000,000 keys (64-byte values), then puts on one connection for 20 s
    # with --snapshot-count 5000: a snapshot of the 1M-key store every
    # 5000 entries
    start --snapshot-count 5000 --snapshot-log-percent 0
    load --op put --clients 32 --total 1000000 --key-space 1000000 --val-size 64 >"$OUT/snap-load.txt"
    echo "snapshot: ${STORAGE:-memory}, RSS $(ps -o rss= -p "$SPID") KiB, keys $(metric metastore_store_keys)"
    n0=$(metric metastore_snapshots_taken_total)
    L0=$(wc -l <"$OUT/server.log")
    mark
    : >"$OUT/strace.txt"
    TPID=
    if [ -z "${NOSTRACE:-}" ]; then
        strace -T -e trace=io_destroy,clone,clone3,fork,munmap,fdatasync,fsync,unlink,rename -p "$SPID" -o "$OUT/strace.txt" &
        TPID=$!
        sleep 0.5
    fi
    load --op put --clients 1 --duration 20 --key-space 1000000 --val-size 64 >"$OUT/snap-probe.txt"
    if [ -n "$TPID" ]; then kill -INT "$TPID"; wait "$TPID" || true; fi
    echo "snapshot: snapshots taken during the probe: $(( $(metric metastore_snapshots_taken_total | cut -d. -f1) - ${n0%.*} ))"
    report snapshot
    awk '/max_ms/ {print; getline; print}' "$OUT/snap-probe.txt" | sed 's/^/snapshot probe: /'
    tail -n +$((L0 + 1)) "$OUT/server.log" | grep -oE '\(([0-9.]+) ms on the loop' | tr -d '(' | awk '
        {n++; s += $1; if ($1 > m) m = $1}
        END {if (n) printf "snapshot: on the loop per snapshot (fork): mean %.2f ms, max %.2f ms, %d snapshots\n", s / n, m, n}'
    echo "snapshot: loop-thread syscalls, slowest first:"
    grep -E "io_destroy|clone|fork|munmap|fdatasync|fsync|unlink|rename" "$OUT/strace.txt" | sed -E 's/.*(io_destroy|clone3?|fork|munmap|fdatasync|fsync|unlink|rename)\(.*<([0-9.]+)>$/\1 \2/' |
        sort -k2 -rn | head -5 | sed 's/^/  /'
    echo "snapshot: io_destroy calls $(grep -c io_destroy "$OUT/strace.txt"), total $(grep io_destroy "$OUT/strace.txt" | sed -E 's/.*<([0-9.]+)>$/\1/' | awk '{s+=$1} END {print s+0}') s"
    stop
    ;;
esac
done
