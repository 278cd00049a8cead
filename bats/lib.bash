# lib.bash - shared helpers for the bats suites: binaries, free ports,
# servers started in a temp dir and stopped by PID.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

MS_BUILD=${MS_BUILD:-$BATS_TEST_DIRNAME/../build}
SERVER=$MS_BUILD/metastore-server

# port_free PORT: true when nothing listens on 127.0.0.1:PORT.
port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# free_port: prints a port p such that p and p+1 are free.
free_port() {
    local p i
    for i in $(seq 1 50); do
        p=$(( (RANDOM % 12000) + 20000 ))
        if port_free "$p" && port_free $((p + 1)); then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# start_server NAME [FLAGS...]: starts a server with data in
# $BATS_TEST_TMPDIR/NAME on fresh ports; sets PORT, URL, PID, DATA and LOG.
# Waits (at most 20 s) until /health answers 200.
start_server() {
    local name=$1
    shift
    PORT=${PORT:-$(free_port)}
    URL=http://127.0.0.1:$PORT
    DATA=$BATS_TEST_TMPDIR/$name
    LOG=$BATS_TEST_TMPDIR/$name.log
    "$SERVER" --data-dir "$DATA" --listen-client-urls "$URL" \
        --listen-peer-urls "http://127.0.0.1:$((PORT + 1))" \
        --heartbeat-interval 20 --election-timeout 200 "$@" >>"$LOG" 2>&1 &
    PID=$!
    wait_healthy "$URL" || { cat "$LOG" >&2; return 1; }
}

# wait_healthy URL: polls URL/health for up to 20 s.
wait_healthy() {
    local i
    for i in $(seq 1 200); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1/health")" = 200 ]; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# stop_server [PID]: SIGTERM, then wait (at most 10 s); returns the exit
# status. A failed stop prints the end of the server's log (LOG, when the
# PID is the last server started) on stderr, shown with the failing test.
stop_server() {
    local pid=${1:-$PID} i rc=0
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"
        rc=99
    else
        wait "$pid" || rc=$?
    fi
    if [ "$rc" -ne 0 ] && [ "$pid" = "${PID:-}" ] && [ -f "${LOG:-}" ]; then
        echo "# server $pid stopped with status $rc; the end of $LOG:" >&2
        tail -n 40 "$LOG" >&2
    fi
    return "$rc"
}

# b64 STRING: base64 of the string.
b64() {
    printf '%s' "$1" | base64 -w0
}

# json_get FIELD_PATH: reads JSON on stdin, prints a field (python syntax
# after the root, e.g. '["header"]["revision"]').
json_get() {
    python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"
}
