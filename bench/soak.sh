#!/bin/bash
# soak.sh - a long put load on one fresh single-node metastore-server with
# revision auto-compaction, to see whether memory, the data directory and
# throughput stay bounded (bench/RESULTS.md, "Soak: 10 M puts to 1,000 keys
# with auto-compaction").
#
#   bench/soak.sh BUILD_DIR OUT_DIR
#
# BUILD_DIR holds metastore-server and metastore-bench. The server runs in
# OUT_DIR/data with --auto-compaction-mode revision, a retention of
# RETENTION revisions checked every INTERVAL, and the default
# --snapshot-count. The load is metastore-bench load --op put to KEYS keys
# (VAL-byte values, CLIENTS clients) in chunks of at most CHUNK puts and
# CHUNK_S seconds, PUTS puts in all. After each chunk one JSON line: puts
# done, the chunk's puts/s and p99, the server's RSS (VmRSS), the data
# directory's size (du -sb), metastore_loop_stall_max_seconds,
# metastore_store_bytes, the store revision, the auto-compactions so far
# and the machine's 1-minute load average.
# At the end: min/max of RSS and data directory over the second half, and
# the first and last chunks' throughput. The server is stopped by its PID
# on exit.
#
# Environment (defaults): PUTS (10000000), KEYS (1000), VAL (256),
# CLIENTS (32), CHUNK (500000), CHUNK_S (10), RETENTION (10000),
# INTERVAL (10s; etcd's revision mode, and the server's default, check
# every 5m, which at 30k puts/s lets 9M revisions pile up between
# compactions), STORAGE (memory), PORT (24830).
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: bench/soak.sh BUILD_DIR OUT_DIR" >&2
    exit 2
fi
BUILD=$1
OUT=$2
PUTS=${PUTS:-10000000}
KEYS=${KEYS:-1000}
VAL=${VAL:-256}
CLIENTS=${CLIENTS:-32}
CHUNK=${CHUNK:-500000}
CHUNK_S=${CHUNK_S:-10}
RETENTION=${RETENTION:-10000}
INTERVAL=${INTERVAL:-10s}
STORAGE=${STORAGE:-memory}
PORT=${PORT:-24830}
URL=http://127.0.0.1:$PORT
mkdir -p "$OUT"
rm -rf "$OUT/data"

SPID=
cleanup() {
    if [ -n "$SPID" ]; then
        kill -TERM "$SPID" 2>/dev/null || true
        wait "$SPID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$BUILD/metastore-server" --data-dir "$OUT/data" --listen-client-urls "$URL" \
    --listen-peer-urls "http://127.0.0.1:$((PORT + 1))" --storage "$STORAGE" \
    --auto-compaction-mode revision --auto-compaction-retention "$RETENTION" \
    --auto-compaction-interval "$INTERVAL" >"$OUT/server.log" 2>&1 &
SPID=$!
for _ in $(seq 1 100); do
    curl -s -o /dev/null --max-time 1 "$URL/health" && break
    kill -0 "$SPID" 2>/dev/null || {
        echo "server exited: $(tail -1 "$OUT/server.log")" >&2
        exit 1
    }
    sleep 0.1
done

metrics() { curl -s --max-time 5 "$URL/metrics"; }
metric() { awk -v m="$1" '$1 == m {print $2}' <<<"$M"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$SPID/status"; }

M=$(metrics)
echo "{\"start\":true,\"storage\":\"$STORAGE\",\"puts\":$PUTS,\"keys\":$KEYS,\"val\":$VAL,\"clients\":$CLIENTS,\"retention\":$RETENTION,\"interval\":\"$INTERVAL\",\"rss_kib\":$(rss_kib),\"data_bytes\":$(du -sb "$OUT/data" | cut -f1),\"store_bytes\":$(metric metastore_store_bytes)}" |
    tee "$OUT/soak.jsonl"

done_puts=0
t0=$(date +%s.%N)
while [ "$done_puts" -lt "$PUTS" ]; do
    n=$((PUTS - done_puts < CHUNK ? PUTS - done_puts : CHUNK))
    "$BUILD/metastore-bench" load --endpoints "$URL" --quiet --json \
        --op put --clients "$CLIENTS" --total "$n" --duration "$CHUNK_S" \
        --key-space "$KEYS" --val-size "$VAL" >"$OUT/chunk.json"
    kill -0 "$SPID" 2>/dev/null || {
        echo "server died: $(tail -3 "$OUT/server.log")" >&2
        exit 1
    }
    M=$(metrics)
    python3 - "$OUT/chunk.json" "$done_puts" "$(rss_kib)" \
        "$(du -sb "$OUT/data" | cut -f1)" \
        "$(metric metastore_loop_stall_max_seconds)" \
        "$(metric metastore_store_bytes)" "$(metric metastore_store_revision)" \
        "$(metric metastore_compactions_auto_total)" \
        "$t0" "$(date +%s.%N)" "$(cut -d' ' -f1 /proc/loadavg)" \
        >>"$OUT/soak.jsonl" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
ops = c["ops"] - c["errors"]
print(json.dumps({
    "puts_done": int(sys.argv[2]) + ops,
    "elapsed_s": round(float(sys.argv[10]) - float(sys.argv[9]), 1),
    "chunk_puts": ops, "errors": c["errors"],
    "puts_per_s": round(c["ops_per_sec"]), "p99_ms": c["p99_ms"],
    "max_ms": c["max_ms"], "rss_kib": int(sys.argv[3]),
    "data_bytes": int(sys.argv[4]), "loop_stall_max_s": float(sys.argv[5]),
    "store_bytes": int(float(sys.argv[6])), "revision": int(float(sys.argv[7])),
    "auto_compactions": int(float(sys.argv[8])),
    "loadavg": float(sys.argv[11])}))
EOF
    tail -1 "$OUT/soak.jsonl"
    done_puts=$(tail -1 "$OUT/soak.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["puts_done"])')
    if [ "$(tail -1 "$OUT/soak.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["chunk_puts"])')" -eq 0 ]; then
        echo "a chunk made no puts: stopping" >&2
        exit 1
    fi
done

python3 - "$OUT/soak.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"puts_done"' in l]
half = rows[len(rows) // 2:]
mb = lambda b: "%.1f MB" % (b / 1e6)
print(json.dumps({"summary": True, "chunks": len(rows),
                  "puts": rows[-1]["puts_done"]}))
print("second half (%d chunks): RSS %s .. %s, data dir %s .. %s, store bytes %s .. %s"
      % (len(half), mb(min(r["rss_kib"] for r in half) * 1024),
         mb(max(r["rss_kib"] for r in half) * 1024),
         mb(min(r["data_bytes"] for r in half)), mb(max(r["data_bytes"] for r in half)),
         mb(min(r["store_bytes"] for r in half)), mb(max(r["store_bytes"] for r in half))))
print("whole run: RSS max %s, data dir max %s; longest loop iteration %.1f ms"
      % (mb(max(r["rss_kib"] for r in rows) * 1024), mb(max(r["data_bytes"] for r in rows)),
         rows[-1]["loop_stall_max_s"] * 1e3))
print("throughput: first chunk %d puts/s (p99 %.2f ms), last chunk %d puts/s (p99 %.2f ms), "
      "whole run %d puts/s over %.0f s; %d auto-compactions"
      % (rows[0]["puts_per_s"], rows[0]["p99_ms"], rows[-1]["puts_per_s"], rows[-1]["p99_ms"],
         rows[-1]["puts_done"] / rows[-1]["elapsed_s"], rows[-1]["elapsed_s"],
         rows[-1]["auto_compactions"]))
EOF
