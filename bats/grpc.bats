#!/usr/bin/env bats
# grpc.bats - etcd's gRPC API on the client port, driven by the real
# clients: etcdctl 3.4 (Debian etcd-client) and python3-etcd3, on one
# member and on a 3-node cluster (every call through a follower too);
# error codes and texts, watch and lease streams, shutdown, hostile input.

load lib

CLUSTER=$BATS_TEST_DIRNAME/../tools/cluster
TIMING=(--heartbeat-interval 50 --election-timeout 500)
PY=/usr/bin/python3

setup() {
    command -v etcdctl >/dev/null || skip "etcdctl (etcd-client) not installed"
    export ETCDCTL_API=3
    BGPIDS=()
}

teardown() {
    local p
    # SIGKILL: etcdctl lock/elect would try to resign from a server that
    # is about to stop, and retry
    for p in "${BGPIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    [ -n "${PID:-}" ] && stop_server "$PID" >/dev/null 2>&1 || true
    if [ -n "${DIR:-}" ]; then "$CLUSTER" stop "$DIR" >/dev/null 2>&1 || true; fi
}

ectl() { # etcdctl against $EP
    etcdctl --endpoints="$EP" --command-timeout=5s "$@"
}

one() {
    start_server n1
    EP=127.0.0.1:$PORT
}

three() {
    DIR=$BATS_TEST_TMPDIR/c
    "$CLUSTER" start "$DIR" -n 3 -- "${TIMING[@]}" >/dev/null
    IFS=, read -r U1 U2 U3 <<<"$("$CLUSTER" urls "$DIR")"
}

# wait_for FILE PATTERN: waits (at most 10 s) until FILE has a line
# matching PATTERN.
wait_for() {
    local i
    for i in $(seq 1 200); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "no '$2' in $1:" >&2
    cat "$1" >&2
    return 1
}

@test "etcdctl put, get, del, get --prefix -w json on the HTTP port" {
    one
    run ectl put foo bar
    assert_success
    assert_output OK
    run ectl get foo
    assert_output "$(printf 'foo\nbar')"
    ectl put foo2 baz
    run ectl get --prefix foo -w json
    assert_success
    echo "$output" | python3 -c '
import base64, json, sys
d = json.load(sys.stdin)
assert d["count"] == 2, d
assert [base64.b64decode(kv["key"]) for kv in d["kvs"]] == [b"foo", b"foo2"], d
assert d["header"]["revision"] == 3, d'
    run ectl del foo
    assert_output 1
    run ectl get foo
    assert_output ""
    # the JSON gateway still answers on the same port
    run curl -s -X POST "$URL/v3/kv/range" -d '{"key":"Zm9vMg=="}'
    assert_output --partial '"value":"YmF6"'
}

@test "etcdctl txn from stdin; etcd's error texts" {
    one
    ectl put a 1
    run ectl txn <<'EOF'
value("a") = "1"

put b yes

put b no

EOF
    assert_success
    assert_output --partial SUCCESS
    run ectl get b --print-value-only
    assert_output yes
    run ectl put "" x
    assert_failure
    assert_output --partial "etcdserver: key is not provided"
    run ectl get a --rev 100
    assert_failure
    assert_output --partial "etcdserver: mvcc: required revision is a future revision"
}

@test "etcdctl compaction, then reads below it fail as compacted" {
    one
    ectl put k 1
    ectl put k 2
    ectl put k 3
    run ectl compaction 3
    assert_success
    assert_output "compacted revision 3"
    run ectl get k --rev 2
    assert_failure
    assert_output --partial "etcdserver: mvcc: required revision has been compacted"
    run ectl compaction 2
    assert_failure
    assert_output --partial "required revision has been compacted"
}

@test "etcdctl watch sees a put made by another process, with prev_kv" {
    one
    ectl put w0 old
    local out=$BATS_TEST_TMPDIR/watch.out
    etcdctl --endpoints="$EP" watch w --prefix --prev-kv >"$out" 2>&1 3>&- &
    BGPIDS+=($!)
    sleep 0.5
    ectl put w0 new
    ectl del w0
    wait_for "$out" DELETE
    run cat "$out"
    assert_line --index 0 PUT
    assert_line --index 1 w0
    assert_line --index 2 old
    assert_line --index 3 w0
    assert_line --index 4 new
    assert_line --index 5 DELETE
    # a watch from an old revision replays history
    run timeout 3 etcdctl --endpoints="$EP" watch w0 --rev 1
    assert_output --partial "$(printf 'PUT\nw0\nold')"
}

@test "etcdctl watch: a compacted start revision; two watches on one stream (watch -i)" {
    one
    ectl put a 1 >/dev/null
    ectl put a 2 >/dev/null
    ectl compaction 3 >/dev/null
    run timeout 3 etcdctl --endpoints="$EP" watch a --rev 1
    assert_output --partial "watch was canceled (etcdserver: mvcc: required revision has been compacted)"
    local out=$BATS_TEST_TMPDIR/wi.out
    { printf 'watch a\nwatch b --prev-kv\n'; sleep 5; } 3>&- |
        etcdctl --endpoints="$EP" watch -i >"$out" 2>&1 3>&- &
    BGPIDS+=($!)
    sleep 0.7
    ectl put b 1 >/dev/null
    ectl put a 3 >/dev/null
    ectl put b 4 >/dev/null
    wait_for "$out" '^4$'
    run cat "$out"
    assert_output --partial "$(printf 'PUT\nb\n1\nPUT\na\n3\nPUT\nb\n1\nb\n4')"
}

@test "etcdctl lease grant, put --lease, timetolive --keys, keep-alive, revoke" {
    one
    run ectl lease grant 10
    assert_success
    local id
    id=$(echo "$output" | awk '{print $2}')
    ectl put --lease="$id" lk v
    run ectl lease timetolive "$id" --keys
    assert_output --partial "granted with TTL(10s)"
    assert_output --partial "attached keys([lk])"
    run ectl lease list
    assert_output --partial "$id"
    run ectl lease keep-alive --once "$id"
    assert_output "lease $id keepalived with TTL(10)"
    run ectl lease revoke "$id"
    assert_output "lease $id revoked"
    run ectl get lk
    assert_output ""
    run ectl lease timetolive "$id"
    assert_output "lease $id already expired"
    run ectl lease keep-alive --once "$id"
    assert_failure
    assert_output --partial "etcdserver: requested lease not found"
}

@test "etcdctl member list, endpoint status and health, auth enable without root" {
    one
    run ectl member list
    assert_success
    assert_output --partial ", started, default, http://127.0.0.1:$((PORT + 1)), http://127.0.0.1:$PORT, false"
    run ectl endpoint status
    assert_success
    assert_output --partial "127.0.0.1:$PORT"
    assert_output --partial ", true, false,"
    run ectl endpoint health
    assert_success
    assert_output --partial "is healthy"
    # auth is served now (bats/auth.bats): enabling it needs user root
    run ectl auth enable
    assert_failure
    assert_output --partial "etcdserver: root user does not exist"
}

@test "etcdctl snapshot save; metastore-snapshot verify accepts the file" {
    one
    local i
    for i in $(seq 1 40); do ectl put "s$i" "v$i" >/dev/null; done
    run ectl snapshot save "$BATS_TEST_TMPDIR/s.db"
    assert_success
    assert_output --partial "Snapshot saved at"
    [ $(( $(stat -c %s "$BATS_TEST_TMPDIR/s.db") % 512 )) -eq 32 ]
    run "$MS_BUILD/metastore-snapshot" verify "$BATS_TEST_TMPDIR/s.db"
    assert_success
    assert_output --partial "OK: revision 41, 40 records"
    run "$MS_BUILD/metastore-snapshot" export "$BATS_TEST_TMPDIR/s.db"
    [ "${#lines[@]}" -eq 40 ]
    # a flipped byte breaks both the SHA-256 tail and the snapshot
    printf 'X' | dd of="$BATS_TEST_TMPDIR/s.db" bs=1 seek=100 conv=notrunc 2>/dev/null
    run "$MS_BUILD/metastore-snapshot" verify "$BATS_TEST_TMPDIR/s.db"
    assert_failure
}

@test "etcdctl alarm, defrag, endpoint hashkv, move-leader on 3 members" {
    three
    EP=${U1#http://},${U2#http://},${U3#http://}
    ectl put h 1 >/dev/null
    run ectl alarm list
    assert_success
    assert_output ""
    run ectl defrag
    assert_success
    [ "$(echo "$output" | grep -c 'Finished defragmenting')" -eq 3 ]
    sleep 0.5
    run ectl endpoint hashkv
    assert_success
    [ "$(echo "$output" | awk -F', ' '{print $2}' | sort -u | wc -l)" -eq 1 ]
    local target
    target=$(ectl endpoint status | grep ', false, false,' | head -1 | awk -F', ' '{print $2}')
    run ectl move-leader "$target"
    assert_success
    assert_output --partial "Leadership transferred from"
    run ectl endpoint status
    assert_output --partial ", $target, 3.4.0-metastore"
    echo "$output" | grep ", $target, " | grep -q ', true, false,'
}

@test "disk-space alarm: etcd's NOSPACE error, alarm list and status errors" {
    # /health answers 503 under the alarm: start without start_server
    local i
    PORT=$(free_port)
    EP=127.0.0.1:$PORT
    "$SERVER" --data-dir "$BATS_TEST_TMPDIR/n1" --listen-client-urls "http://$EP" \
        --listen-peer-urls "http://127.0.0.1:$((PORT + 1))" --heartbeat-interval 20 \
        --election-timeout 200 --space-reserve 100000000000000 \
        >>"$BATS_TEST_TMPDIR/n1.log" 2>&1 3>&- &
    PID=$!
    for i in $(seq 1 100); do
        ectl endpoint status 2>/dev/null | grep -q ', true, false,' && break
        sleep 0.1
    done
    run ectl put a b
    assert_failure
    assert_output --partial "etcdserver: mvcc: database space exceeded"
    run ectl alarm list
    assert_output --partial "alarm:NOSPACE"
    run ectl endpoint status
    assert_output --partial "alarm:NOSPACE"
    run ectl get a
    assert_success
}

@test "etcdctl lock with two contenders, elect" {
    one
    local out=$BATS_TEST_TMPDIR/lock.out
    etcdctl --endpoints="$EP" lock L -- sh -c 'echo first; sleep 1.5; echo first-done' >"$out" 2>&1 3>&- &
    BGPIDS+=($!)
    wait_for "$out" first
    run ectl lock L -- sh -c 'echo second'
    assert_success
    assert_output second
    # the second got the lock only after the first let go
    run cat "$out"
    assert_output --partial first-done
    local eout=$BATS_TEST_TMPDIR/elect.out
    etcdctl --endpoints="$EP" elect E p1 >"$eout" 2>&1 3>&- &
    BGPIDS+=($!)
    wait_for "$eout" p1
    run timeout 3 etcdctl --endpoints="$EP" elect -l E
    assert_output --partial p1
}

@test "python3-etcd3: put/get/range/txn/watch/lease/lock" {
    one
    run $PY "$BATS_TEST_DIRNAME/grpc_etcd3.py" "$PORT"
    assert_success
    assert_output "python ok"
}

@test "unknown methods, bad protobuf, sizes: etcd's codes; garbage frames do not hurt" {
    one
    run $PY "$BATS_TEST_DIRNAME/grpc_raw.py" unknown "$PORT"
    assert_line --index 0 "UNIMPLEMENTED unknown method Nope for service etcdserverpb.KV"
    assert_line --index 1 "UNIMPLEMENTED unknown service foo.Bar"
    assert_line --index 2 --partial "UNIMPLEMENTED metastore: etcdserverpb.Cluster/MemberUpdate is not implemented"
    run $PY "$BATS_TEST_DIRNAME/grpc_raw.py" badpb "$PORT"
    assert_line --index 0 --partial "INTERNAL grpc: error unmarshalling request"
    assert_line --index 1 "INVALID_ARGUMENT etcdserver: key is not provided"
    run $PY "$BATS_TEST_DIRNAME/grpc_raw.py" sizes "$PORT"
    assert_line --index 0 OK
    assert_line --index 1 "INVALID_ARGUMENT etcdserver: request is too large"
    assert_line --index 2 --partial "RESOURCE_EXHAUSTED grpc: received message larger than max"
    run $PY "$BATS_TEST_DIRNAME/grpc_raw.py" garbage "$PORT"
    assert_output closed
    run ectl put still alive
    assert_output OK
    run curl -s "$URL/metrics"
    assert_output --partial 'metastore_grpc_handled_total{grpc_service="etcdserverpb.KV",grpc_method="Put",grpc_code="OK"}'
    assert_output --partial 'grpc_method="Put",grpc_code="InvalidArgument"} 2'
    kill -0 "$PID"
}

@test "a watcher that stops reading is cut off (8), its memory bounded" {
    one
    run timeout 60 $PY "$BATS_TEST_DIRNAME/grpc_raw.py" slowwatch "$PORT"
    assert_output "RESOURCE_EXHAUSTED metastore: watch stream too slow"
    run curl -s "$URL/metrics"
    assert_output --partial "metastore_watchers_slow_canceled_total 1"
}

@test "SIGTERM ends an open watch stream with 14 'etcdserver: server stopped'" {
    one
    local out=$BATS_TEST_TMPDIR/ws.out
    $PY "$BATS_TEST_DIRNAME/grpc_raw.py" watchstop "$PORT" >"$out" 2>&1 3>&- &
    BGPIDS+=($!)
    wait_for "$out" created
    stop_server "$PID"
    PID=
    wait_for "$out" UNAVAILABLE
    run cat "$out"
    assert_line --index 1 "UNAVAILABLE etcdserver: server stopped"
}

@test "3 members: etcdctl and python3-etcd3 through every member" {
    three
    local u p
    for u in "$U1" "$U2" "$U3"; do
        EP=${u#http://}
        run ectl put "k-$EP" "v-$EP"
        assert_output OK
    done
    for u in "$U1" "$U2" "$U3"; do
        EP=${u#http://}
        run ectl get --prefix k- --print-value-only
        assert_output "$(printf 'v-%s\n' "${U1#http://}" "${U2#http://}" "${U3#http://}")"
    done
    EP=${U1#http://},${U2#http://},${U3#http://}
    run ectl endpoint status
    assert_success
    [ "$(echo "$output" | grep -c ', true, false,')" -eq 1 ]
    run ectl endpoint health --cluster
    assert_success
    [ "$(echo "$output" | grep -c 'is healthy')" -eq 3 ]
    run ectl member list
    [ "${#lines[@]}" -eq 3 ]
    for u in "$U1" "$U2" "$U3"; do
        p=${u##*:}
        run $PY "$BATS_TEST_DIRNAME/grpc_etcd3.py" "$p" "/py$p/"
        assert_success
        assert_output "python ok"
    done
}

@test "3 members: leases and watches through followers, across a leader change" {
    three
    local leader follower u st
    for u in "$U1" "$U2" "$U3"; do
        st=$(etcdctl --endpoints="${u#http://}" endpoint status)
        if echo "$st" | grep -q ', true, false,'; then leader=$u; else follower=$u; fi
    done
    EP=${follower#http://}
    run ectl lease grant 30
    local id
    id=$(echo "$output" | awk '{print $2}')
    run ectl lease keep-alive --once "$id"
    assert_output "lease $id keepalived with TTL(30)"
    run ectl lease timetolive "$id"
    assert_output --partial "granted with TTL(30s)"
    local out=$BATS_TEST_TMPDIR/w.out
    etcdctl --endpoints="$EP" watch wk >"$out" 2>&1 3>&- &
    BGPIDS+=($!)
    sleep 0.5
    etcdctl --endpoints="${leader#http://}" put wk 1
    wait_for "$out" '^1$'
    # the leader leaves: the follower's calls go to the new leader
    local name
    name=$("$CLUSTER" status "$DIR" | awk -v u="$leader" '$4 == u {print $1}')
    "$CLUSTER" kill "$DIR" "$name"
    local i ok=
    for i in $(seq 1 50); do
        if ectl lease keep-alive --once "$id" >/dev/null 2>&1; then ok=1; break; fi
        sleep 0.2
    done
    [ -n "$ok" ]
    run ectl put wk 2
    assert_output OK
    wait_for "$out" '^2$'
}

@test "3 members: etcdctl member add and remove through a follower" {
    three
    local u follower
    for u in "$U1" "$U2" "$U3"; do
        etcdctl --endpoints="${u#http://}" endpoint status | grep -q ', false, false,' && follower=$u
    done
    EP=${follower#http://}
    local base=${U1##*:}
    run ectl member add n4 --peer-urls="http://127.0.0.1:$((base + 7))"
    assert_success
    assert_output --partial "added to cluster"
    assert_output --partial 'ETCD_INITIAL_CLUSTER_STATE="existing"'
    run ectl member list
    [ "${#lines[@]}" -eq 4 ]
    assert_output --partial ", unstarted, , http://127.0.0.1:$((base + 7)), , true"
    local id i
    id=$(ectl member list | grep "$((base + 7))" | cut -d, -f1)
    for i in $(seq 1 20); do
        run ectl member remove "$id"
        [ "$status" -eq 0 ] && break
        sleep 0.25 # the add's configuration change may still be in flight
    done
    assert_success
    assert_output --partial "removed from cluster"
    run ectl member list
    [ "${#lines[@]}" -eq 3 ]
    run ectl member update "$id" --peer-urls=http://127.0.0.1:1
    assert_failure
    assert_output --partial "etcdserverpb.Cluster/MemberUpdate is not implemented"
}

@test "3 members: without a leader, watch streams that ask for one get 14 'no leader'" {
    three
    local p3=${U3##*:} i out
    run $PY "$BATS_TEST_DIRNAME/grpc_raw.py" noleader "$p3"
    assert_output created
    "$CLUSTER" kill "$DIR" n1
    "$CLUSTER" kill "$DIR" n2
    for i in $(seq 1 50); do
        out=$($PY "$BATS_TEST_DIRNAME/grpc_raw.py" noleader "$p3")
        [ "$out" = "UNAVAILABLE etcdserver: no leader" ] && break
        sleep 0.2
    done
    [ "$out" = "UNAVAILABLE etcdserver: no leader" ]
}
