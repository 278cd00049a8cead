#!/usr/bin/env bash
# peer-tls.sh - a 3-member cluster with and without peer TLS, same run,
# rounds interleaved: puts through the leader, ops/s and the members' CPU.
#
# Usage: bench/peer-tls.sh [ROUNDS] [SECONDS]   (defaults 3 and 5)
# Prints one markdown table row per run. Needs openssl, curl, python3.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${MS_BUILD:-$top/build}
rounds=${1:-3} secs=${2:-5}
work=$(mktemp -d /tmp/peer-tls-bench.XXXXXX)
trap '"$top/tools/cluster" stop "$work/c" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

# a throw-away CA and one certificate per member
P=$work/pki
mkdir -p "$P"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$P/ca.key" -out "$P/ca.crt" -days 2 -subj "/CN=bench CA" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$P/ext.cnf"
for n in n1 n2 n3; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$P/$n.key" -out "$P/$n.csr" -subj "/CN=$n" 2>/dev/null
    openssl x509 -req -in "$P/$n.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" \
        -CAcreateserial -out "$P/$n.crt" -days 2 -extfile "$P/ext.cnf" 2>/dev/null
done
TLS=(--peer-cert-file "$P/{name}.crt" --peer-key-file "$P/{name}.key"
     --peer-trusted-ca-file "$P/ca.crt" --peer-client-cert-auth)

cpu_ticks() { # PID...: utime+stime summed, in clock ticks
    local t=0 p f
    for p in "$@"; do
        read -r -a f <"/proc/$p/stat"
        t=$((t + f[13] + f[14]))
    done
    echo "$t"
}

leader_url() {
    local u id
    for _ in $(seq 1 50); do
        for u in $("$top/tools/cluster" urls "$work/c" | tr , ' '); do
            id=$(curl -s --max-time 1 -X POST "$u/v3/maintenance/status" |
                python3 -c 'import json,sys; d=json.load(sys.stdin); print("y" if d.get("leader")==d["header"]["member_id"] else "")' 2>/dev/null || true)
            [ "$id" = y ] && { echo "$u"; return 0; }
        done
        sleep 0.1
    done
    return 1
}

run() { # MODE ROUND LABEL LOAD_ARGS...
    local mode=$1 round=$2 label=$3 pids t0 t1 out leader
    shift 3
    rm -rf "$work/c"
    if [ "$mode" = tls ]; then
        "$top/tools/cluster" start "$work/c" -- --snapshot-count 100000 "${TLS[@]}" >/dev/null
    else
        "$top/tools/cluster" start "$work/c" -- --snapshot-count 100000 >/dev/null
    fi
    leader=$(leader_url)
    pids=$(cat "$work"/c/n*.pid)
    # shellcheck disable=SC2086
    t0=$(cpu_ticks $pids)
    out=$("$build/metastore-bench" load --endpoints "$leader" --duration "$secs" "$@" --json)
    # shellcheck disable=SC2086
    t1=$(cpu_ticks $pids)
    "$top/tools/cluster" stop "$work/c" >/dev/null
    python3 - "$mode" "$round" "$label" "$((t1 - t0))" "$(getconf CLK_TCK)" "$out" <<'EOF'
import json, sys
mode, rnd, label, ticks, hz, out = sys.argv[1:]
d = json.loads(out)
cpu = int(ticks) / int(hz)
errs = f" ({d['errors']:.0f} errors)" if d["errors"] else ""
print(f"| {rnd} | {label} | {mode} | {d['ops_per_sec']:,.0f}{errs} | {d['p50_ms']} | "
      f"{d['p99_ms']} | {cpu:.2f} | {cpu * 1e6 / max(d['ops'], 1):.1f} |")
EOF
}

echo "| round | load | peers | ops/s | p50 ms | p99 ms | members' CPU s | CPU µs/op |"
echo "|---|---|---|---|---|---|---|---|"
for r in $(seq 1 "$rounds"); do
    for mode in tcp tls; do
        run "$mode" "$r" "256 B puts, 64 clients/16 conns" --clients 64 --conns 16 --op put --val-size 256 --key-space 1000000
        run "$mode" "$r" "64 KiB puts, 8 clients" --clients 8 --op put --val-size 65536 --key-space 1000
    done
done
