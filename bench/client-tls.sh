#!/usr/bin/env bash
# client-tls.sh - server CPU per request on the client port, plain vs TLS,
# one member, same run: N keep-alive GETs and N PUTs from one Python
# client (http.client, one connection), then N GETs with a new connection
# each. CPU = utime+stime of the server (/proc/PID/stat) over each phase.
# Usage: bench/client-tls.sh [N]   (needs openssl, python3)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
server=${MS_BUILD:-$top/build}/metastore-server
N=${1:-5000}
T=$(mktemp -d)
trap 'kill $(cat "$T"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$T"' EXIT
cd "$T"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
    -out ca.crt -days 2 -subj "/CN=bench CA" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >ext.cnf
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout s.key -out s.csr \
    -subj /CN=s 2>/dev/null
openssl x509 -req -in s.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out s.crt -days 2 \
    -extfile ext.cnf 2>/dev/null
run() { # name scheme port [flags]
    local name=$1 scheme=$2 port=$3
    shift 3
    "$server" --data-dir "$T/$name" --listen-client-urls "$scheme://127.0.0.1:$port" \
        --listen-peer-urls "http://127.0.0.1:$((port + 1))" --log-level warn "$@" \
        >"$T/$name.log" 2>&1 &
    echo $! >"$T/$name.pid"
}
run plain http 24791
run tls https 24793 --cert-file s.crt --key-file s.key
sleep 1.5
python3 - "$N" "$(cat plain.pid)" "$(cat tls.pid)" <<'PY'
import http.client, ssl, sys, os
n, ppid, tpid = int(sys.argv[1]), sys.argv[2], sys.argv[3]
tick = os.sysconf("SC_CLK_TCK")
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick
ctx = ssl.create_default_context(cafile="ca.crt")
def conn(tls):
    if tls:
        return http.client.HTTPSConnection("127.0.0.1", 24793, context=ctx)
    return http.client.HTTPConnection("127.0.0.1", 24791)
def phase(tls, what):
    pid = tpid if tls else ppid
    c = conn(tls)
    c0 = cpu(pid)
    for i in range(n):
        if what == "new":
            c = conn(tls)
        if what == "put":
            c.request("PUT", f"/kv/k{i % 100}", body=b"x" * 256)
        else:
            c.request("GET", "/kv/k1")
        r = c.getresponse(); r.read()
        if r.status not in (200, 404):
            raise SystemExit(f"status {r.status}")
        if what == "new":
            c.close()
    return (cpu(pid) - c0) / n * 1e6
print(f"| load (N={n}, one client) | plain µs CPU/req | TLS µs CPU/req |")
print("|---|---|---|")
for what, label in (("put", "256-B PUT, keep-alive"), ("get", "GET, keep-alive"),
                    ("new", "GET, new connection each")):
    p = phase(False, what); t = phase(True, what)
    print(f"| {label} | {p:.1f} | {t:.1f} |")
PY
