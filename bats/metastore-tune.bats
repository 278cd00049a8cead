#!/usr/bin/env bats
# metastore-tune.bats - black-box tests of metastore-tune: a short sweep on
# servers it starts itself (1 and 3 nodes), the SVG plot, a sweep of a
# live server with restore vs --apply, interruption, the time bound, usage
# errors.

load lib

bats_require_minimum_version 1.5.0

setup() {
    TUNE=$MS_BUILD/metastore-tune
    export TMPDIR=$BATS_TEST_TMPDIR
}

teardown() {
    if [ -n "${PID:-}" ]; then
        stop_server "$PID" || true
    fi
}

# no_servers_left: no metastore-server of ours runs and no temp dir stays.
no_servers_left() {
    ! pgrep -f "$BATS_TEST_TMPDIR/metastore-tune" >/dev/null
    ! compgen -G "$BATS_TEST_TMPDIR/metastore-tune.*" >/dev/null
}

@test "tune: a sweep on its own server prints tables, a verdict and a plot" {
    run --separate-stderr "$TUNE" --clients 1,4 --duration 0.3 \
        --settings off,fixed:10/1000,adaptive:256/4 --max-p99 200 \
        --plot "$BATS_TEST_TMPDIR/p.svg"
    assert_success
    [[ "${stderr%%$'\n'*}" == "metastore-tune: 3 settings x 2 client counts x 1 round = 6 points of 0.3 s: about"* ]]
    [[ "$stderr" == *"starting 1 node"* ]]
    assert_line '1 client'
    assert_line '4 clients'
    assert_line --regexp '^setting +ops/s +p50_ms +p99_ms +ops/entry +entries/s +errors +vs_off$'
    assert_line --regexp '^off +[0-9.]+ +[0-9.]+ +[0-9.]+ +1\.00 +[0-9.]+ +0 +1\.00$'
    assert_line --regexp '^fixed 10 ops 1000us +[0-9.]+ '
    assert_line --regexp '^adaptive 256 ops 4 inflight +[0-9.]+ '
    assert_line --regexp '^fastest with p99 <= 200 ms: '
    assert_line --regexp '^recommendation: (off|fixed 10 ops 1000us|adaptive 256 ops 4 inflight) \{"mode":'
    assert_line 'servers stopped'
    python3 -c 'import sys, xml.etree.ElementTree as E
r = E.parse(sys.argv[1]).getroot()
ns = "{http://www.w3.org/2000/svg}"
assert r.tag == ns + "svg"
assert len(r.findall(".//" + ns + "circle")) == 6
assert len(r.findall(".//" + ns + "polyline")) == 3' "$BATS_TEST_TMPDIR/p.svg"
    no_servers_left
}

@test "tune --json --nodes 3 --rounds 2 on its own cluster" {
    run --separate-stderr "$TUNE" --nodes 3 --clients 2 --duration 0.3 \
        --settings off,adaptive:64/2 --rounds 2 --op put --json --quiet
    assert_success
    [ "$(printf '%s\n' "$output" | wc -l)" -eq 1 ]
    run jq -e '.started_servers == true and .nodes == 3
               and .storage == "memory" and (.endpoints | length) == 3
               and .op == "put" and .rounds == 2 and .rounds_done == 2
               and .clients == [2] and (.settings | length) == 2
               and .settings[0].label == "off"
               and .settings[0].points[0].ops_per_entry == 1
               and .settings[0].points[0].vs_off == 1
               and (.settings[1].points[0].rounds | length) == 2
               and .settings[1].batch.max_ops == 64
               and .settings[1].batch.max_inflight == 2
               and ([.settings[].points[] | .ok and .ops_per_sec > 0
                     and .p50_ms <= .p99_ms and .entries_per_sec > 0]
                    | all)
               and (.best_per_clients | length) == 1
               and .final_action == "servers stopped"
               and .final == null' <<<"$output"
    assert_success
    no_servers_left
}

# --api grpc: every point of the sweep drives the server over gRPC.
@test "tune --api grpc sweeps over gRPC" {
    run --separate-stderr "$TUNE" --clients 1,4 --duration 0.3 \
        --settings off,adaptive:64/2 --op put --api grpc --json --quiet
    assert_success
    run jq -e '.api == "grpc" and .op == "put"
               and ([.settings[].points[] | .ok and .ops_per_sec > 0
                     and .errors == 0] | all)' <<<"$output"
    assert_success
    no_servers_left
}

@test "tune --endpoints restores the settings, or --apply leaves the verdict" {
    start_server s1 --batch-mode fixed --batch-max-ops 7 \
        --batch-max-delay 300 --batch-max-inflight 3
    local before rec
    before=$(curl -sf "$URL/admin/batch")
    run --separate-stderr "$TUNE" --endpoints "$URL" --clients 1,2 \
        --duration 0.3 --modes off,adaptive --max-ops 32 \
        --max-inflight 1,8 --quiet
    assert_success
    assert_line "restored: ${before%$'\n'}"
    assert_equal "$(curl -sf "$URL/admin/batch")" "$before"
    run --separate-stderr "$TUNE" --endpoint "$URL" --clients 2 \
        --duration 0.3 --modes adaptive --max-ops 32 --max-inflight 1,8 \
        --json --apply --quiet
    assert_success
    rec=$(jq -c .recommendation.batch <<<"$output")
    run jq -e '.started_servers == false and .original.mode == "fixed"
               and .original.max_ops == 7 and .final_action == "applied"
               and .final == .recommendation.batch' <<<"$output"
    assert_success
    run jq -c . <<<"$(curl -sf "$URL/admin/batch")"
    assert_output "$rec"
    # the fields no setting names are kept from the original
    run jq -e '.max_bytes == 1048576 and .max_delay_us == 300' \
        <<<"$(curl -sf "$URL/admin/batch")"
    assert_success
}

@test "tune: SIGINT stops the sweep and its servers" {
    "$TUNE" --clients 1 --duration 2 --settings off,adaptive --rounds 3 \
        --quiet >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
    local tpid=$! i rc=0
    for i in $(seq 1 100); do
        pgrep -f "$BATS_TEST_TMPDIR/metastore-tune" >/dev/null && break
        sleep 0.1
    done
    sleep 1
    kill -INT "$tpid"
    wait "$tpid" || rc=$?
    [ "$rc" -eq 1 ]
    grep -q interrupted "$BATS_TEST_TMPDIR/err"
    no_servers_left
}

@test "tune refuses a sweep estimated past --max-time, before any load" {
    run --separate-stderr "$TUNE" --max-time 10
    assert_failure 2
    [[ "$stderr" == *"11 settings x 4 client counts x 1 round = 44 points of 2 s: about 104 s"* ]]
    [[ "$stderr" == *"--max-time"* ]]
    no_servers_left
}

@test "tune: unreachable endpoint, or a server that does not start, exit 1" {
    local port
    port=$(free_port)
    run --separate-stderr "$TUNE" --endpoints "http://127.0.0.1:$port" \
        --clients 1 --duration 0.2 --modes off
    assert_failure 1
    [[ "$stderr" == *"/admin/batch"* ]]
    [[ "$stderr" == *"refused"* ]]
    run --separate-stderr "$TUNE" --clients 1 --duration 0.2 --modes off \
        -- --no-such-server-flag
    assert_failure 1
    [[ "$stderr" == *"exited"* ]]
    no_servers_left
}

@test "tune usage errors exit 2 with a message" {
    local args
    while IFS='|' read -r args msg; do
        # shellcheck disable=SC2086
        run --separate-stderr "$TUNE" $args
        assert_failure 2
        [[ "$stderr" == *"$msg"* ]] || { echo "$args: $stderr"; false; }
    done <<'EOF'
--modes off,turbo|turbo
--modes off,off|twice
--clients 1,0|--clients
--op scan|--op
--api http2|--api: 'http2'
--op txn --api rest|needs --api v3 or grpc
--max-p99 0|--max-p99
--nodes 2|--nodes
--storage disk|--storage
--settings off,warp|warp
--settings off --modes off|--settings excludes
--endpoints http://127.0.0.1:1 --nodes 3|--endpoints excludes
--apply|--apply needs --endpoints
--ops 5 --duration 1|--ops and --duration
--rounds 0|--rounds
--max-ops 0|--max-ops
--max-delay 1000001|--max-delay
--settings fixed:10/1000001|fixed
--bogus|unknown option
EOF
    run "$TUNE" --help
    assert_success
    assert_line --partial "--max-p99 MS"
    assert_line --partial "--plot FILE"
    assert_line --partial "--nodes 1|3"
}
