#!/usr/bin/env bats
# metastore-bench-load.bats - black-box tests of `metastore-bench load`
# against a live single-node server: --json fields and counts, keys really
# written, every op, connections and threads, failed requests never counted
# as ops, progress, unreachable endpoint, usage errors.

load lib

bats_require_minimum_version 1.5.0

setup() {
    BENCH=$MS_BUILD/metastore-bench
}

teardown() {
    if [ -n "${PID:-}" ]; then
        stop_server "$PID" || true
    fi
}

# LargeScale's op: a put then a linearizable get (2 requests): 4 clients,
# 200 ops in all = 400 requests, 200 puts proposed to Raft.
@test "load --json: putget counts, latency fields, and the keys exist" {
    start_server s1
    run --separate-stderr "$BENCH" load --endpoints "$URL" --clients 4 \
        --total 200 --key-prefix bats/ --json
    assert_success
    [ "$(printf '%s\n' "$output" | wc -l)" -eq 1 ]
    run jq -e '.op == "putget" and .api == "v3" and .consistency == "l"
               and .clients == 4 and .conns == 4 and .total == 200
               and .requests_per_op == 2
               and .ops == 200 and .requests == 400 and .reads == 200
               and .writes == 200 and .errors == 0
               and .errors_by_kind == {}
               and .proposed_ops == 200 and .entries >= 1
               and .entries <= 200 and .entries_per_sec > 0
               and (.ops_per_entry - (.proposed_ops / .entries) | fabs)
                   < 0.01
               and .barriers >= 1
               and .disk_writes >= 1 and .disk_writes <= .entries + .barriers + 10
               and .disk_writes_per_sec > 0
               and .duration_s > 0 and .ops_per_sec > 0
               and .p50_ms > 0 and .p50_ms <= .p90_ms
               and .p90_ms <= .p99_ms and .p99_ms <= .p999_ms
               and .p999_ms <= .max_ms
               and .key_size == 16 and .value_size == 12' <<<"$output"
    assert_success
    # keys 0..199 of the key space: prefix + 11 digits, 12-byte values
    run curl -sf "$URL/kv/bats/00000000000"
    assert_success
    [ "${#output}" -eq 12 ]
    run curl -sf "$URL/kv/bats/00000000199"
    assert_success
    run curl -s -o /dev/null -w '%{http_code}' "$URL/kv/bats/00000000200"
    assert_output 404
}

@test "load: put, range, txn and mixed over v3 and REST; the text table" {
    start_server s1
    run --separate-stderr "$BENCH" load --endpoints "$URL" --clients 2 \
        --total 40 --op put --api rest --val-size 100 --key-size 8 \
        --key-space 100 --json
    assert_success
    run jq -e '.op == "put" and .api == "rest" and .ops == 40
               and .errors == 0 and .proposed_ops == 40' <<<"$output"
    assert_success
    run curl -sf "$URL/kv/load/039"
    assert_success
    [ "${#output}" -eq 100 ]
    # range: the 50 keys are written first and not counted
    run --separate-stderr "$BENCH" load --endpoints "$URL" --clients 2 \
        --total 40 --op range --key-space 50 --consistency s --json
    assert_success
    run jq -e '.ops == 40 and .reads == 40 and .errors == 0
               and .preloaded == 50 and .proposed_ops == 0
               and .consistency == "s" and .ops_per_entry == null' \
        <<<"$output"
    assert_success
    run --separate-stderr "$BENCH" load --endpoints "$URL" --clients 2 \
        --total 30 --op txn --json
    assert_success
    run jq -e '.op == "txn" and .ops == 30 and .errors == 0
               and .proposed_ops == 30' <<<"$output"
    assert_success
    run --separate-stderr "$BENCH" load --endpoints "$URL" --clients 2 \
        --total 100 --op mixed:70/30 --key-space 20 --quiet
    assert_success
    assert_line --regexp '^op mixed:70/30 \(1 request/op\), api v3, linearizable reads$'
    assert_line --regexp '^ +ops +errors +duration_s +ops/s +avg_ms +p50_ms +p90_ms +p99_ms +p99\.9_ms +max_ms$'
    assert_line --regexp '^ +100 +0 +[0-9.]+( +[0-9.]+){7}$'
    assert_line 'errors 0'
    assert_line --regexp '^batching: [0-9]+ ops in [0-9]+ Raft entries'
}

@test "load: clients share --conns, --threads, several endpoints" {
    start_server s1
    run --separate-stderr "$BENCH" load --endpoints "$URL,$URL/" \
        --clients 16 --conns 2 --threads 2 --total 400 --op put --json
    assert_success
    # counters are summed over both endpoints, so the server counts twice
    run jq -e '.ops == 400 and .errors == 0 and .conns == 2
               and .threads == 2 and (.endpoints | length) == 2
               and .proposed_ops == 800' <<<"$output"
    assert_success
}

@test "load: requests the server refuses are errors, never ops" {
    start_server s1 --max-request-bytes 512
    run --separate-stderr "$BENCH" load --endpoints "$URL" --clients 2 \
        --total 10 --op put --val-size 2000 --json
    assert_failure 1
    run jq -e '.ops == 0 and .errors == 10 and .requests == 0
               and (.errors_by_kind | keys | length) == 1
               and (.errors_by_kind | keys[0] | startswith("http_4"))' \
        <<<"$output"
    assert_success
    [[ "$stderr" == *"no op succeeded"* ]]
}

# gRPC: every op over KV.Put/Range/Txn, 8 clients as concurrent streams on
# 2 HTTP/2 connections; the server's counters agree with the tool's.
@test "load --api grpc: put, range, txn, putget and mixed, no errors" {
    start_server s1
    run --separate-stderr "$BENCH" load --endpoints "$URL" --api grpc \
        --clients 8 --conns 2 --total 300 --op put --val-size 100 \
        --key-space 1000 --key-prefix g/ --json
    assert_success
    run jq -e '.api == "grpc" and .op == "put" and .conns == 2
               and .ops == 300 and .requests == 300 and .writes == 300
               and .errors == 0 and .errors_by_kind == {}
               and .proposed_ops == 300 and .p50_ms > 0' <<<"$output"
    assert_success
    # the puts really landed: key 299 holds a 100-byte value
    run curl -sf "$URL/kv/g/00000000000299"
    assert_success
    [ "${#output}" -eq 100 ]
    run --separate-stderr "$BENCH" load --endpoints "$URL" --api grpc \
        --clients 8 --conns 2 --total 200 --op range --key-space 50 --json
    assert_success
    run jq -e '.ops == 200 and .reads == 200 and .errors == 0
               and .preloaded == 50 and .proposed_ops == 0
               and .barriers >= 1' <<<"$output"
    assert_success
    run --separate-stderr "$BENCH" load --endpoints "$URL" --api grpc \
        --clients 4 --conns 1 --total 100 --op range --key-space 50 \
        --consistency s --json
    assert_success
    run jq -e '.ops == 100 and .errors == 0 and .consistency == "s"' \
        <<<"$output"
    assert_success
    run --separate-stderr "$BENCH" load --endpoints "$URL" --api grpc \
        --clients 4 --conns 2 --total 100 --op txn --json
    assert_success
    run jq -e '.op == "txn" and .ops == 100 and .errors == 0
               and .proposed_ops == 100' <<<"$output"
    assert_success
    run --separate-stderr "$BENCH" load --endpoints "$URL" --api grpc \
        --clients 6 --conns 2 --total 200 --op putget --val-size 64 --json
    assert_success
    run jq -e '.ops == 200 and .requests == 400 and .reads == 200
               and .writes == 200 and .errors == 0' <<<"$output"
    assert_success
    run --separate-stderr "$BENCH" load --endpoints "$URL" --api grpc \
        --clients 4 --conns 2 --threads 2 --total 200 --op mixed:70/30 \
        --key-space 20 --quiet
    assert_success
    assert_line --regexp '^op mixed:70/30 \(1 request/op\), api grpc, linearizable reads$'
    assert_line --regexp '^ +200 +0 +[0-9.]+( +[0-9.]+){7}$'
    assert_line 'errors 0'
}

# A non-zero grpc-status is an error counted by its code, with etcd's text.
@test "load --api grpc: calls the server refuses count as grpc_N errors" {
    start_server s1 --max-request-bytes 512
    run --separate-stderr "$BENCH" load --endpoints "$URL" --api grpc \
        --clients 2 --total 10 --op put --val-size 2000 --json
    assert_failure 1
    run jq -e '.ops == 0 and .errors == 10 and .requests == 0
               and .errors_by_kind == {"grpc_3": 10}
               and (.first_error | test("etcdserver: request is too large"))' \
        <<<"$output"
    assert_success
    [[ "$stderr" == *"no op succeeded: grpc_3: put: etcdserver: request is too large"* ]]
}

# A gRPC endpoint that goes away: calls fail as connection errors, not ops.
@test "load --api grpc: a server killed mid-run gives connection errors" {
    start_server s1
    "$BENCH" load --endpoints "$URL" --api grpc --clients 4 --conns 2 \
        --duration 3 --op put --json --quiet --timeout 1000 \
        >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" 3>&- &
    local bpid=$!
    sleep 1
    kill -KILL "$PID"
    wait "$PID" || true
    PID=
    wait "$bpid" || true
    run jq -e '.ops > 0 and .errors > 0
               and ((.errors_by_kind | keys) - ["connection", "timeout"]
                    == [])' "$BATS_TEST_TMPDIR/out"
    assert_success
}

@test "load --duration runs for about that long and prints progress" {
    start_server s1
    run --separate-stderr "$BENCH" load --endpoints "$URL" --clients 2 \
        --duration 1.5 --op put --json
    assert_success
    run jq -e '.ops > 0 and .duration_s >= 1.5 and .duration_s < 5
               and .total == 0' <<<"$output"
    assert_success
    [[ "$stderr" == *"load:   1.0s"*"ops/s (last second)"* ]]
    run --separate-stderr "$BENCH" load --endpoints "$URL" --clients 1 \
        --duration 1.2 --quiet
    assert_success
    assert_equal "$stderr" ""
}

@test "load against an unreachable endpoint exits 1 with a message" {
    local port
    port=$(free_port)
    run --separate-stderr "$BENCH" load --endpoints "http://127.0.0.1:$port" \
        --clients 2 --total 5
    assert_failure 1
    [[ "$stderr" == *"unreachable"* ]]
    [[ "$stderr" == *"127.0.0.1:$port"* ]]
    assert_output ""
}

@test "load usage errors exit 2 with a message" {
    local args
    while IFS='|' read -r args msg; do
        # shellcheck disable=SC2086
        run --separate-stderr "$BENCH" load $args
        assert_failure 2
        [[ "$stderr" == *"$msg"* ]] || { echo "$args: $stderr"; false; }
    done <<'EOF'
--no-such-flag|unknown option '--no-such-flag'
--clients 0|--clients
--clients|missing value
--op scan|--op: 'scan'
--op mixed:80/30|R + W = 100
--workload mixed:80/20|--workload
--consistency x|--consistency
--total 5 --ops 5|--total and --ops
--clients 4 --conns 5|--conns
--conns 2 --threads 3|--threads
--key-size 6 --key-space 100|--key-size
--op txn --api rest|txn
--api http2|--api: 'http2': expected v3, rest or grpc
--endpoints https://127.0.0.1:1|https
--val-size 0|--val-size
EOF
    run "$BENCH" load --help
    assert_success
    assert_line --partial "--op OP"
    assert_line --partial "--conns N"
    assert_line --partial "--consistency l|s"
    assert_line --partial "--api v3|rest|grpc"
}
