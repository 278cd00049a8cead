#!/usr/bin/env bats
# metastore-bench-load.bats - black-box tests of `metastore-bench load`
# against a live single-node server: counts in --json, keys really written,
# batch counters, unreachable endpoint, usage errors.

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

# One op of putget is a put then a get (2 requests): 4 clients x 50 ops =
# 200 ops, 400 requests, 200 puts proposed to Raft.
@test "load --json: putget counts are consistent and the keys exist" {
    start_server s1
    run --separate-stderr "$BENCH" load --endpoints "$URL" --clients 4 \
        --ops 50 --key-prefix bats/ --json
    assert_success
    [ "$(printf '%s\n' "$output" | wc -l)" -eq 1 ]
    run jq -e '.workload == "putget" and .api == "v3" and .clients == 4
               and .ops_per_client == 50 and .requests_per_op == 2
               and .ops == 200 and .requests == 400 and .errors == 0
               and .errors_by_kind == {}
               and .proposed_ops == 200 and .entries >= 1
               and .entries <= 200
               and (.ops_per_entry - (.proposed_ops / .entries) | fabs)
                   < 0.01
               and .duration_s > 0 and .ops_per_sec > 0
               and .latency_ms.p50 > 0
               and .latency_ms.p50 <= .latency_ms.p90
               and .latency_ms.p90 <= .latency_ms.p99
               and .latency_ms.p99 <= .latency_ms.max
               and .value_size == 12' <<<"$output"
    assert_success
    # the first and the last key of the last client, 12-byte values
    run curl -sf "$URL/kv/bats/c0000/k00000000"
    assert_success
    [ "${#output}" -eq 12 ]
    run curl -sf "$URL/kv/bats/c0003/k00000049"
    assert_success
    [ "${#output}" -eq 12 ]
    run curl -s -o /dev/null -w '%{http_code}' "$URL/kv/bats/c0004/k00000000"
    assert_output 404
}

@test "load: put, get and mixed over REST, and the text report" {
    start_server s1
    run --separate-stderr "$BENCH" load --endpoints "$URL" --clients 2 \
        --ops 20 --workload put --api rest --value-size 100 --json
    assert_success
    run jq -e '.workload == "put" and .api == "rest" and .ops == 40
               and .requests == 40 and .errors == 0
               and .proposed_ops == 40' <<<"$output"
    assert_success
    run curl -sf "$URL/kv/load/c0001/k00000019"
    assert_success
    [ "${#output}" -eq 100 ]
    # get: the 20 keys per client are preloaded first and not counted
    run --separate-stderr "$BENCH" load --endpoints "$URL" --clients 2 \
        --ops 20 --workload get --json
    assert_success
    run jq -e '.ops == 40 and .errors == 0 and .proposed_ops == 0
               and .ops_per_entry == null' <<<"$output"
    assert_success
    run --separate-stderr "$BENCH" load --endpoints "$URL" --clients 2 \
        --ops 50 --workload mixed --quiet
    assert_success
    assert_line --regexp '^ops +100 in [0-9.]+ s: [0-9.]+ ops/s'
    assert_line --regexp '^latency ms avg [0-9.]+  p50 [0-9.]+  p90 [0-9.]+  p99 [0-9.]+  max [0-9.]+$'
    assert_line 'errors     0'
}

@test "load --duration runs for about that long and prints progress" {
    start_server s1
    run --separate-stderr "$BENCH" load --endpoints "$URL" --clients 2 \
        --duration 1.5 --workload put --json
    assert_success
    run jq -e '.ops > 0 and .duration_s >= 1.5 and .duration_s < 5
               and .ops_per_client == 0' <<<"$output"
    assert_success
    [[ "$stderr" == *"load:   1.0s"* ]]
    run --separate-stderr "$BENCH" load --endpoints "$URL" --clients 1 \
        --duration 1.2 --quiet
    assert_success
    assert_equal "$stderr" ""
}

@test "load spreads clients over several endpoints (the same server twice)" {
    start_server s1
    run --separate-stderr "$BENCH" load --endpoints "$URL,$URL/" \
        --clients 3 --ops 10 --json
    assert_success
    # counters are summed over both endpoints, so the server counts twice
    run jq -e '.ops == 30 and (.endpoints | length) == 2
               and .proposed_ops == 60' <<<"$output"
    assert_success
}

@test "load against an unreachable endpoint exits 1 with a message" {
    local port
    port=$(free_port)
    run --separate-stderr "$BENCH" load --endpoints "http://127.0.0.1:$port" \
        --clients 2 --ops 5
    assert_failure 1
    [[ "$stderr" == *"unreachable"* ]]
    [[ "$stderr" == *"127.0.0.1:$port"* ]]
    assert_output ""
}

@test "load usage errors exit 2" {
    run --separate-stderr "$BENCH" load --no-such-flag
    assert_failure 2
    [[ "$stderr" == *"unknown option '--no-such-flag'"* ]]
    run --separate-stderr "$BENCH" load --clients 0
    assert_failure 2
    [[ "$stderr" == *"--clients"* ]]
    run --separate-stderr "$BENCH" load --ops 5 --duration 1
    assert_failure 2
    run --separate-stderr "$BENCH" load --workload scan
    assert_failure 2
    run --separate-stderr "$BENCH" load --endpoints https://127.0.0.1:1
    assert_failure 2
    [[ "$stderr" == *"https"* ]]
    run --separate-stderr "$BENCH" load --clients
    assert_failure 2
    [[ "$stderr" == *"missing value"* ]]
    run "$BENCH" load --help
    assert_success
    assert_line --partial "--workload put|get|putget|mixed"
}
