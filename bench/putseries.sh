#!/bin/bash
# putseries.sh - wrk puts against one fresh metastore-server, with the
# server's metrics read every 0.25 s: shows when the slow log-writer rounds
# (write + fdatasync > 10 / 25 ms) happen, next to snapshots taken, old
# files deleted (and their 1 MiB steps), segments opened and loop iterations
# over 10 ms (bench/RESULTS.md, "Old files deleted in steps").
#
#   bench/putseries.sh [-d SECONDS] [-c CONNECTIONS] [-b BUILD_DIR] [-p PORT] [-- SERVER_FLAGS...]
#
# Defaults: 30 s, 50 connections, ./build, port 24760; the server runs with
# --snapshot-count 5000 (as tools/bench-vs-etcd -s 5000) plus SERVER_FLAGS.
# Waits 6 s first (a previous run's deleted files are discarded in the
# journal commits after it). Prints wrk's figures, then one line per 0.25 s in which something
# happened, then totals. Needs wrk, curl, python3.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dur=30 conns=50 build=$top/build port=24760
while [ $# -gt 0 ]; do
    case $1 in
    -d) dur=$2; shift 2 ;;
    -c) conns=$2; shift 2 ;;
    -b) build=$2; shift 2 ;;
    -p) port=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "putseries: unknown option $1" >&2; exit 2 ;;
    esac
done
command -v wrk >/dev/null || { echo "putseries: wrk not installed" >&2; exit 1; }
tmp=$(mktemp -d)
spid= ppid=
cleanup() {
    [ -n "$ppid" ] && kill "$ppid" 2>/dev/null
    [ -n "$spid" ] && kill "$spid" 2>/dev/null
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
url=http://127.0.0.1:$port
# a previous run's data dir, deleted at its exit, is discarded in the
# journal commits that follow: let them pass first
sync
sleep 6
"$build/metastore-server" --name m1 --data-dir "$tmp/data" --listen-client-urls "$url" \
    --listen-peer-urls "http://127.0.0.1:$((port + 1))" \
    --initial-cluster "m1=http://127.0.0.1:$((port + 1))" --snapshot-count 5000 "$@" \
    >"$tmp/server.log" 2>&1 &
spid=$!
for _ in $(seq 1 100); do
    curl -s -o /dev/null --max-time 1 -X POST "$url/v3/maintenance/status" && break
    sleep 0.1
done
sleep 1
(
    for _ in $(seq 1 $((dur * 4 + 8))); do
        echo "T $(date +%s.%N)"
        curl -s --max-time 1 "$url/metrics" | grep -E '^metastore_(raft_log_write_seconds_bucket|snapshots_taken_total|loop_busy_seconds_bucket|raft_files_deleted_total|raft_file_delete_steps_total|raft_log_segments_created_total|store_keys)( |\{)'
        sleep 0.25
    done
) >"$tmp/series" 2>&1 &
ppid=$!
c0=$(awk '{print $14 + $15}' "/proc/$spid/stat")
t=2
[ "$conns" -lt 2 ] && t=1
wrk -t$t -c"$conns" -d"${dur}s" --latency -s "$top/bench/put.lua" "$url" >"$tmp/wrk.out" 2>&1
c1=$(awk '{print $14 + $15}' "/proc/$spid/stat")
kill "$ppid" 2>/dev/null || true
wait "$ppid" 2>/dev/null || true
ppid=
awk -v cpu=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" '
    /Requests\/sec/ {r = $2} $1 == "50%" {p50 = $2} $1 == "99%" {p99 = $2}
    $1 == "Latency" && m == "" {m = $4}
    END {printf "wrk: %s puts/s, p50 %s, p99 %s, max %s; server CPU %.1f s\n", r, p50, p99, m, cpu / hz}' "$tmp/wrk.out"
python3 - "$tmp/series" <<'EOF'
import re, sys
rows = []
for line in open(sys.argv[1]):
    if line.startswith('T '):
        rows.append({'t': float(line.split()[1])})
        continue
    m = re.match(r'(\S+?)(\{[^}]*\})? (\S+)', line)
    if not m or not rows:
        continue
    name, labels, value = m.groups()
    if labels:
        name += ':' + re.search(r'le="([^"]+)"', labels).group(1)
    rows[-1][name] = float(value)
W = 'metastore_raft_log_write_seconds_bucket:'
L = 'metastore_loop_busy_seconds_bucket:'
tot = {'>10': 0, '>25': 0, '>50': 0, 'loop': 0}
print(' time  keys      rounds >10ms >25ms >50ms  snaps deleted steps segs loop>10ms')
for prev, r in zip(rows, rows[1:]):
    d = lambda k: r.get(k, 0) - prev.get(k, 0)
    n = d(W + '+Inf')
    o10, o25, o50 = n - d(W + '0.01'), n - d(W + '0.025'), n - d(W + '0.05')
    lp = d(L + '+Inf') - d(L + '0.01')
    ev = [d('metastore_snapshots_taken_total'), d('metastore_raft_files_deleted_total'),
          d('metastore_raft_file_delete_steps_total'), d('metastore_raft_log_segments_created_total')]
    tot['>10'] += o10; tot['>25'] += o25; tot['>50'] += o50; tot['loop'] += lp
    if o10 or lp or any(ev):
        print('%5.2f %8d %6d %5d %5d %5d  %5d %7d %5d %4d %4d' % (
            r['t'] - rows[0]['t'], r.get('metastore_store_keys', 0), n, o10, o25, o50,
            *ev, lp))
print('totals: log rounds > 10 ms %d, > 25 ms %d, > 50 ms %d; loop iterations > 10 ms %d' % (
    tot['>10'], tot['>25'], tot['>50'], tot['loop']))
EOF
