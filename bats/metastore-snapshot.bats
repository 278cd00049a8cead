#!/usr/bin/env bats
# metastore-snapshot.bats - the snapshot tool against live servers: save,
# status, verify, export agree with what was written; corrupt files, dead
# endpoints and non-empty data dirs fail cleanly; a restored snapshot
# starts one node or a 3-node cluster that serves the same data.

load lib

SNAP=$MS_BUILD/metastore-snapshot

teardown() {
    local p
    for p in ${PID:-} ${PIDS[@]:-}; do
        if kill -0 "$p" 2>/dev/null; then
            kill -KILL "$p" 2>/dev/null || true
        fi
    done
}

# put KEY VALUE: REST write through $URL.
put() {
    curl -s -f -X PUT --data-binary "$2" "$URL/kv/$1" >/dev/null
}

# fill: 20 keys k00..k19 (k07 rewritten, k13 deleted) and two under cfg/.
fill() {
    local i
    for i in $(seq -w 0 19); do put "k$i" "value-$i"; done
    put k07 "value-07-b"
    curl -s -f -X DELETE "$URL/kv/k13" >/dev/null
    put cfg/a alpha
    put cfg/b beta
}

@test "--help of the tool and of every command exits 0; bad usage exits 2" {
    run "$SNAP" --help
    assert_success
    help=$output
    for c in save status verify export restore; do
        [[ "$help" == *"  $c "* ]]
        run "$SNAP" "$c" --help
        assert_success
        assert_output --partial "usage: metastore-snapshot $c"
    done
    run "$SNAP"
    [ "$status" -eq 2 ]
    run "$SNAP" frobnicate
    [ "$status" -eq 2 ]
    run "$SNAP" verify
    [ "$status" -eq 2 ]
    assert_output --partial "FILE missing"
    run "$SNAP" status --bogus x.snap
    [ "$status" -eq 2 ]
    run "$SNAP" status -w yaml x.snap
    [ "$status" -eq 2 ]
    run "$SNAP" save x.snap
    [ "$status" -eq 2 ]
    assert_output --partial "--endpoint"
    run "$SNAP" save --endpoint https://127.0.0.1:1 x.snap
    [ "$status" -eq 2 ]
    run "$SNAP" restore x.snap --data-dir "$BATS_TEST_TMPDIR/d" --name a \
        --initial-cluster b=http://127.0.0.1:1
    [ "$status" -eq 2 ]
    assert_output --partial "not a member"
    [ ! -e "$BATS_TEST_TMPDIR/d" ]
}

@test "save from a live server; status, verify and export agree with the writes" {
    start_server s
    fill
    F=$BATS_TEST_TMPDIR/out/s.snap
    mkdir -p "$BATS_TEST_TMPDIR/out"
    run timeout 30 "$SNAP" save --endpoint "$URL" "$F"
    assert_success
    assert_output --partial "saved $F"
    # nothing but FILE in its directory (no temp file left)
    [ "$(ls -A "$BATS_TEST_TMPDIR/out")" = s.snap ]
    stop_server

    run "$SNAP" verify "$F"
    assert_success
    assert_output --partial "OK"

    run "$SNAP" status "$F"
    assert_success
    assert_output --regexp "keys +21"
    assert_output --partial "(OK)"

    "$SNAP" status --json "$F" >"$BATS_TEST_TMPDIR/st.json"
    [ "$(json_get '["keys"]' <"$BATS_TEST_TMPDIR/st.json")" = 21 ]
    [ "$(json_get '["deleted_keys"]' <"$BATS_TEST_TMPDIR/st.json")" = 1 ]
    [ "$(json_get '["versions"]' <"$BATS_TEST_TMPDIR/st.json")" = 24 ]
    [ "$(json_get '["revision"]' <"$BATS_TEST_TMPDIR/st.json")" = 25 ]
    [ "$(json_get '["bytes"]' <"$BATS_TEST_TMPDIR/st.json")" = "$(stat -c %s "$F")" ]
    [ "$(json_get '["checksum_ok"]' <"$BATS_TEST_TMPDIR/st.json")" = True ]
    # -w json is the same
    "$SNAP" status -w json "$F" | cmp - "$BATS_TEST_TMPDIR/st.json"

    "$SNAP" export "$F" >"$BATS_TEST_TMPDIR/all.jsonl"
    [ "$(wc -l <"$BATS_TEST_TMPDIR/all.jsonl")" -eq 21 ]
    python3 - "$BATS_TEST_TMPDIR/all.jsonl" <<'EOF'
import base64, json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
kv = {base64.b64decode(r["key"]).decode(): r for r in rows}
keys = [base64.b64decode(r["key"]).decode() for r in rows]
assert keys == sorted(keys), keys
assert "k13" not in kv
for i in range(20):
    k = "k%02d" % i
    if i == 13:
        continue
    want = "value-07-b" if i == 7 else "value-%02d" % i
    assert base64.b64decode(kv[k]["value"]).decode() == want, k
assert kv["k07"]["version"] == 2 and kv["k00"]["version"] == 1
assert kv["k07"]["mod_revision"] > kv["k07"]["create_revision"]
assert base64.b64decode(kv["cfg/b"]["value"]) == b"beta"
assert all(r["lease"] == 0 for r in rows)
EOF
    run "$SNAP" export --prefix cfg/ "$F"
    assert_success
    [ "${#lines[@]}" -eq 2 ]
    assert_line --index 0 --partial "\"key\":\"$(b64 cfg/a)\",\"value\":\"$(b64 alpha)\""
}

@test "a byte flipped in the middle: verify, status and export exit 1 naming the offset" {
    start_server s
    fill
    F=$BATS_TEST_TMPDIR/s.snap
    timeout 30 "$SNAP" save --endpoint "$URL" "$F"
    stop_server
    size=$(stat -c %s "$F")
    mid=$((size / 2))
    byte=$(od -An -tu1 -j "$mid" -N1 "$F" | tr -d ' ')
    printf "$(printf '\\%03o' $(((byte + 1) % 256)))" |
        dd of="$F" bs=1 seek="$mid" count=1 conv=notrunc 2>/dev/null
    run "$SNAP" verify "$F"
    [ "$status" -eq 1 ]
    assert_output --partial "$F"
    assert_output --regexp "offset [0-9]+"
    run "$SNAP" status "$F"
    [ "$status" -eq 1 ]
    run "$SNAP" export "$F"
    [ "$status" -eq 1 ]
    refute_output --partial '"key"'
    # a cut file is reported as truncated
    head -c $((size - 5)) "$F" >"$F.cut"
    run "$SNAP" verify "$F.cut"
    [ "$status" -eq 1 ]
    # a missing file names it
    run "$SNAP" verify "$BATS_TEST_TMPDIR/none.snap"
    [ "$status" -eq 1 ]
    assert_output --partial "none.snap"
}

@test "save to an unreachable endpoint exits 1 and leaves no FILE" {
    port=$(free_port)
    mkdir "$BATS_TEST_TMPDIR/out"
    run timeout 30 "$SNAP" save --endpoint "http://127.0.0.1:$port" "$BATS_TEST_TMPDIR/out/x.snap"
    [ "$status" -eq 1 ]
    assert_output --partial "connect"
    [ -z "$(ls -A "$BATS_TEST_TMPDIR/out")" ]
    # an existing FILE is left as it was
    echo old >"$BATS_TEST_TMPDIR/out/x.snap"
    run timeout 30 "$SNAP" save --endpoint "http://127.0.0.1:$port" "$BATS_TEST_TMPDIR/out/x.snap"
    [ "$status" -eq 1 ]
    [ "$(cat "$BATS_TEST_TMPDIR/out/x.snap")" = old ]
    [ "$(ls -A "$BATS_TEST_TMPDIR/out")" = x.snap ]
    # a server without the endpoint's path: HTTP error, no FILE
    start_server s
    run timeout 30 "$SNAP" save --endpoint "$URL/nope" "$BATS_TEST_TMPDIR/out/y.snap"
    [ "$status" -eq 1 ]
    assert_output --partial "HTTP 404"
    [ ! -e "$BATS_TEST_TMPDIR/out/y.snap" ]
    stop_server
}

@test "restore refuses a non-empty data dir (exit 1, nothing written)" {
    start_server s
    fill
    F=$BATS_TEST_TMPDIR/s.snap
    timeout 30 "$SNAP" save --endpoint "$URL" "$F"
    stop_server
    mkdir "$BATS_TEST_TMPDIR/busy"
    echo x >"$BATS_TEST_TMPDIR/busy/keep"
    run "$SNAP" restore "$F" --data-dir "$BATS_TEST_TMPDIR/busy" --name a \
        --initial-cluster a=http://127.0.0.1:2380
    [ "$status" -eq 1 ]
    assert_output --partial "not empty"
    [ "$(ls -A "$BATS_TEST_TMPDIR/busy")" = keep ]
    # the server's own data dir is not empty either
    run "$SNAP" restore "$F" --data-dir "$DATA" --name a \
        --initial-cluster a=http://127.0.0.1:2380
    [ "$status" -eq 1 ]
    [ ! -e "$DATA/restore.snap" ]
    # a corrupt snapshot leaves no data dir behind
    head -c 100 "$F" >"$F.cut"
    run "$SNAP" restore "$F.cut" --data-dir "$BATS_TEST_TMPDIR/new" --name a \
        --initial-cluster a=http://127.0.0.1:2380
    [ "$status" -eq 1 ]
    [ ! -e "$BATS_TEST_TMPDIR/new" ]
}

@test "restore writes restore.snap (applied index 0) and restore.json" {
    start_server s
    fill
    F=$BATS_TEST_TMPDIR/s.snap
    timeout 30 "$SNAP" save --endpoint "$URL" "$F"
    stop_server
    D=$BATS_TEST_TMPDIR/r
    run "$SNAP" restore "$F" --data-dir "$D" --name b \
        --initial-cluster a=http://127.0.0.1:1,b=http://127.0.0.1:2
    assert_success
    [ "$(ls "$D" | tr '\n' ' ')" = "restore.json restore.snap " ]
    "$SNAP" status --json "$D/restore.snap" >"$BATS_TEST_TMPDIR/st.json"
    [ "$(json_get '["applied_index"]' <"$BATS_TEST_TMPDIR/st.json")" = 0 ]
    [ "$(json_get '["keys"]' <"$BATS_TEST_TMPDIR/st.json")" = 21 ]
    [ "$(json_get '["revision"]' <"$BATS_TEST_TMPDIR/st.json")" = 25 ]
    [ "$(json_get '["member_table_bytes"]' <"$BATS_TEST_TMPDIR/st.json")" = 0 ]
    [ "$(json_get '["name"]' <"$D/restore.json")" = b ]
    [ "$(json_get '["initial_cluster"]' <"$D/restore.json")" = a=http://127.0.0.1:1,b=http://127.0.0.1:2 ]
    # the same live keys as the original
    diff <("$SNAP" export "$F") <("$SNAP" export "$D/restore.snap")
}

@test "a single node restored from a snapshot serves its data, also after a restart" {
    start_server s
    fill
    F=$BATS_TEST_TMPDIR/s.snap
    timeout 30 "$SNAP" save --endpoint "$URL" "$F"
    stop_server
    for backend in memory rocksdb; do
        unset PORT
        port=$(free_port)
        D=$BATS_TEST_TMPDIR/one-$backend
        "$SNAP" restore "$F" --data-dir "$D" --name solo \
            --initial-cluster "solo=http://127.0.0.1:$((port + 1))"
        PORT=$port
        start_server "one-$backend" --name solo --storage "$backend" \
            --initial-cluster "solo=http://127.0.0.1:$((port + 1))"
        [ "$(curl -s "$URL/kv/k07")" = value-07-b ]
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/kv/k13")" = 404 ]
        put after "$backend"
        # the revision goes on from the snapshot's
        run curl -s -D - -o /dev/null "$URL/kv/after"
        assert_output --partial "X-Metastore-Mod-Revision: 26"
        stop_server
        start_server "one-$backend" --name solo --storage "$backend" \
            --initial-cluster "solo=http://127.0.0.1:$((port + 1))"
        [ "$(curl -s "$URL/kv/after")" = "$backend" ]
        [ "$(curl -s "$URL/kv/k00")" = value-00 ]
        stop_server
        unset PORT
    done
}

@test "3 data dirs restored from one snapshot start a 3-node cluster with the same data" {
    start_server s
    fill
    F=$BATS_TEST_TMPDIR/s.snap
    timeout 30 "$SNAP" save --endpoint "$URL" "$F"
    stop_server
    "$SNAP" export "$F" >"$BATS_TEST_TMPDIR/want.jsonl"

    ports=()
    for n in 1 2 3; do
        p=$(free_port)
        # keep the three pairs apart
        while [[ " ${ports[*]} " == *" $p "* || " ${ports[*]} " == *" $((p + 1)) "* || " ${ports[*]} " == *" $((p - 1)) "* ]]; do
            p=$(free_port)
        done
        ports+=("$p")
    done
    cluster="n1=http://127.0.0.1:$((ports[0] + 1)),n2=http://127.0.0.1:$((ports[1] + 1)),n3=http://127.0.0.1:$((ports[2] + 1))"
    PIDS=()
    for n in 1 2 3; do
        p=${ports[$((n - 1))]}
        run "$SNAP" restore "$F" --data-dir "$BATS_TEST_TMPDIR/m$n" --name "n$n" \
            --initial-cluster "$cluster"
        assert_success
        "$SERVER" --name "n$n" --data-dir "$BATS_TEST_TMPDIR/m$n" \
            --listen-client-urls "http://127.0.0.1:$p" \
            --listen-peer-urls "http://127.0.0.1:$((p + 1))" \
            --initial-cluster "$cluster" \
            --heartbeat-interval 20 --election-timeout 200 \
            >>"$BATS_TEST_TMPDIR/m$n.log" 2>&1 &
        PIDS+=($!)
    done
    for p in "${ports[@]}"; do
        wait_healthy "http://127.0.0.1:$p" || { cat "$BATS_TEST_TMPDIR"/m*.log >&2; false; }
    done
    for n in 1 2 3; do
        grep -q "loaded .*restore.snap: revision 25" "$BATS_TEST_TMPDIR/m$n.log"
    done
    # every member serves the snapshot's keys with the snapshot's values
    for p in "${ports[@]}"; do
        curl -s -f "http://127.0.0.1:$p/kv/?prefix=" >"$BATS_TEST_TMPDIR/got.json"
        python3 - "$BATS_TEST_TMPDIR/want.jsonl" "$BATS_TEST_TMPDIR/got.json" <<'EOF'
import base64, json, sys
want = {}
for l in open(sys.argv[1]):
    r = json.loads(l)
    want[base64.b64decode(r["key"]).decode()] = (
        base64.b64decode(r["value"]).decode(), r["mod_revision"])
got = json.load(open(sys.argv[2]))
have = {kv["key"]: (kv["value"], kv["mod_revision"]) for kv in got["kvs"]}
assert have == want, (have, want)
assert got["revision"] == 25, got["revision"]
EOF
    done
    # the cluster takes writes and replicates them to every member
    URL=http://127.0.0.1:${ports[2]}
    put fresh after-restore
    for p in "${ports[@]}"; do
        [ "$(curl -s "http://127.0.0.1:$p/kv/fresh")" = after-restore ]
    done
    for pid in "${PIDS[@]}"; do
        stop_server "$pid"
    done
}
