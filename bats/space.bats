#!/usr/bin/env bats
# space.bats - a member whose disk runs low (a small tmpfs data directory):
# writes refused with etcd's "database space exceeded", reads served (also
# after a restart), and recovery by itself once space is freed.

load lib

MIB=$((1024 * 1024))

setup() {
    MNT=$BATS_TEST_TMPDIR/mnt
    mkdir -p "$MNT"
    [ "$(id -u)" = 0 ] || skip "mounting a tmpfs needs root (uid $(id -u))"
    if ! err=$(mount -t tmpfs -o size=256m tmpfs "$MNT" 2>&1); then
        skip "cannot mount a tmpfs here: $err"
    fi
    MOUNTED=1
}

teardown() {
    if [ -n "${PID:-}" ] && kill -0 "$PID" 2>/dev/null; then
        kill -KILL "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    if [ -n "${CDIR:-}" ]; then
        "$CLUSTER" stop "$CDIR" >/dev/null 2>&1 || true
    fi
    local m
    for m in ${MORE_MOUNTS:-}; do
        umount "$m" || true
    done
    if [ -n "${MOUNTED:-}" ]; then
        umount "$MNT"
    fi
}

CLUSTER=$BATS_TEST_DIRNAME/../tools/cluster

# start_on_tmpfs [FLAGS...]: the server with its data on the tmpfs (the log
# stays outside, so that it can be written when the disk is full). Waits
# until /health answers at all (it says 503 while the alarm is raised).
start_on_tmpfs() {
    PORT=${PORT:-$(free_port)}
    URL=http://127.0.0.1:$PORT
    LOG=$BATS_TEST_TMPDIR/server.log
    "$SERVER" --data-dir "$MNT/data" --listen-client-urls "$URL" \
        --listen-peer-urls "http://127.0.0.1:$((PORT + 1))" \
        --heartbeat-interval 20 --election-timeout 200 "$@" >>"$LOG" 2>&1 &
    PID=$!
    local i
    for i in $(seq 1 200); do
        case $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
            "$URL/health") in
        200 | 503) return 0 ;;
        esac
        sleep 0.1
    done
    cat "$LOG" >&2
    return 1
}

# avail [DIR]: free bytes of the file system of DIR (the tmpfs).
avail() {
    df -B1 --output=avail "${1:-$MNT}" | tail -1 | tr -d ' '
}

put() {
    curl -s --max-time 5 "$URL/v3/kv/put" \
        -d "{\"key\":\"$(b64 "$1")\",\"value\":\"$(b64 "$2")\"}"
}

# get KEY [serializable]: prints the value (or the error body).
get() {
    local extra=
    [ "${2:-}" = serializable ] && extra=',"serializable":true'
    curl -s --max-time 5 "$URL/v3/kv/range" \
        -d "{\"key\":\"$(b64 "$1")\"$extra}" |
        python3 -c 'import json,sys,base64
d=json.load(sys.stdin)
print(base64.b64decode(d["kvs"][0]["value"]).decode() if d.get("kvs") else d)'
}

# leader_of URL: the client URL of the leader as URL sees it.
leader_of() {
    local id
    id=$(curl -s --max-time 1 -X POST "$1/v3/maintenance/status" |
        json_get '["leader"]')
    curl -s --max-time 1 -X POST "$1/v3/cluster/member/list" |
        python3 -c "import json,sys; d=json.load(sys.stdin); print([m['clientURLs'][0] for m in d['members'] if m['ID']=='$id'][0])"
}

# alarm_is 0|1: waits (at most 5 s) for the metrics gauge to say so.
alarm_is() {
    local i
    for i in $(seq 1 50); do
        curl -s --max-time 1 "$URL/metrics" |
            grep -qx "metastore_space_alarm $1" && return 0
        sleep 0.1
    done
    return 1
}

# low_disk_scenario [FLAGS...]: the member fills its disk below the
# reserve, is restarted, and gets the space back.
low_disk_scenario() {
    start_on_tmpfs "$@"
    run put k1 v1
    assert_output --partial '"revision":"2"'
    alarm_is 0

    # leave 16 MiB: below the default reserve of 64 MiB
    fallocate -l $(($(avail) - 16 * MIB)) "$MNT/filler"
    alarm_is 1
    run put k2 v2
    assert_output --partial "etcdserver: mvcc: database space exceeded"
    run curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary v \
        "$URL/kv/k3"
    refute_output 200
    # as with etcd's quota: deleting is still allowed
    run curl -s --max-time 5 "$URL/v3/kv/deleterange" \
        -d "{\"key\":\"$(b64 nope)\"}"
    assert_output --partial '"header"'
    refute_output --partial "error"
    run get k1
    assert_output v1
    run get k1 serializable
    assert_output v1
    run curl -s "$URL/health"
    assert_output --partial "ALARM NOSPACE"
    grep -q "space: .* below --space-reserve" "$LOG"

    # a restart while the disk is still low: the same
    stop_server
    start_on_tmpfs "$@"
    alarm_is 1
    run put k2 v2
    assert_output --partial "database space exceeded"
    run get k1
    assert_output v1
    run get k1 serializable
    assert_output v1

    # freeing space is enough: no restart, no command
    rm "$MNT/filler"
    alarm_is 0
    run put k2 v2
    assert_output --partial '"header"'
    refute_output --partial "error"
    run get k2
    assert_output v2
    wait_healthy "$URL"
    grep -q "space: .* accepting writes again" "$LOG"
    stop_server
}

@test "disk low: writes refused, reads served, also after a restart; recovers when space is freed" {
    low_disk_scenario
}

@test "disk low, rocksdb store: the same" {
    low_disk_scenario --storage rocksdb
}

@test "a disk that filled up completely: reads served after a restart, writes resume once space is freed" {
    # the alarm off, so that the log itself runs into ENOSPC (the case of
    # the field report: libraft's preallocated segments used up)
    start_on_tmpfs --space-reserve 0
    run put k1 v1
    assert_output --partial '"revision":"2"'
    fallocate -l "$(avail)" "$MNT/filler"
    python3 -c 'import base64,json,sys
print(json.dumps({"key": base64.b64encode(b"big").decode(),
                  "value": base64.b64encode(b"x" * 700000).decode()}))' \
        >"$BATS_TEST_TMPDIR/big.json"
    local i full=
    for i in $(seq 1 400); do
        out=$(curl -s --max-time 5 "$URL/v3/kv/put" -d @"$BATS_TEST_TMPDIR/big.json")
        case $out in
        *"space exceeded"*) full=1 && break ;;
        esac
    done
    [ -n "$full" ]
    stop_server

    start_on_tmpfs
    alarm_is 1
    run get k1
    assert_output v1
    run get k1 serializable
    assert_output v1
    run put k2 v2
    assert_output --partial "database space exceeded"

    rm "$MNT/filler"
    alarm_is 0
    for i in $(seq 1 50); do
        out=$(put k2 v2)
        case $out in
        *'"header"'*) break ;;
        esac
        sleep 0.1
    done
    [[ $out == *'"header"'* ]] || fail "put after freeing space: $out"
    run get k2
    assert_output v2
    stop_server
}

@test "3 members, the leader's disk runs low: leadership moves away, writes through it are refused, its reads served" {
    export MS_BUILD
    CDIR=$BATS_TEST_TMPDIR/c
    local i
    for i in 1 2 3; do
        mkdir -p "$CDIR/n$i"
        mount -t tmpfs -o size=256m tmpfs "$CDIR/n$i"
        MORE_MOUNTS="${MORE_MOUNTS:-} $CDIR/n$i"
    done
    "$CLUSTER" start "$CDIR" -n 3 -- --heartbeat-interval 50 \
        --election-timeout 500
    IFS=, read -r U1 U2 U3 <<<"$("$CLUSTER" urls "$CDIR")"
    old=$(leader_of "$U1")
    for i in 1 2 3; do
        u=U$i
        [ "${!u}" = "$old" ] && L=$i
    done
    URL=$old
    run put k1 v1
    assert_output --partial '"header"'

    fallocate -l $(($(avail "$CDIR/n$L") - 16 * MIB)) "$CDIR/n$L/filler"
    alarm_is 1
    for i in $(seq 1 50); do
        new=$(leader_of "$old")
        [ -n "$new" ] && [ "$new" != "$old" ] && break
        sleep 0.1
    done
    [ "$new" != "$old" ]
    grep -q "space: handed leadership over" "$CDIR/n$L.log"
    run put k2 v2
    assert_output --partial "database space exceeded"
    URL=$new
    run put k2 v2
    refute_output --partial "error"
    URL=$old
    run get k2
    assert_output v2
    run get k1 serializable
    assert_output v1

    rm "$CDIR/n$L/filler"
    alarm_is 0
    run put k3 v3
    refute_output --partial "error"
    run get k3
    assert_output v3
    "$CLUSTER" stop "$CDIR"
    CDIR=
}

@test "the reserve is a flag; 0 turns the alarm off" {
    start_on_tmpfs --space-reserve 0
    fallocate -l $(($(avail) - 16 * MIB)) "$MNT/filler"
    sleep 1.5
    run put k v
    refute_output --partial "space exceeded"
    alarm_is 0
    stop_server
    run "$SERVER" --space-reserve lots
    [ "$status" -eq 2 ]
    assert_output --partial "--space-reserve: 'lots'"
}
