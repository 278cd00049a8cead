#!/usr/bin/env bats
# metastore-tune.bats - black-box tests of metastore-tune against a live
# single-node server: a short sweep, restore vs --apply, usage errors.

load lib

bats_require_minimum_version 1.5.0

setup() {
    TUNE=$MS_BUILD/metastore-tune
}

teardown() {
    if [ -n "${PID:-}" ]; then
        stop_server "$PID" || true
    fi
}

# The server starts with settings no sweep point uses, so a restore is
# visible.
start_odd_server() {
    start_server s1 --batch-mode fixed --batch-max-ops 7 \
        --batch-max-delay 300 --batch-max-inflight 3
}

@test "tune: a short sweep recommends a setting and restores the original" {
    start_odd_server
    local before after
    before=$(curl -sf "$URL/admin/batch")
    run --separate-stderr "$TUNE" --endpoint "$URL" --clients 1,4 \
        --duration 0.5 --modes off,adaptive
    assert_success
    # the estimate comes first
    [[ "${stderr%%$'\n'*}" == "metastore-tune: 6 settings x 2 client counts = 12 points of 0.5 s: about"* ]]
    assert_line --regexp '^off +1 +[0-9.]+ +[0-9.]+ +[0-9.]+ +1\.00 +0$'
    assert_line --regexp '^adaptive inflight 16 +4 '
    assert_line --regexp '^recommendation: (off|adaptive inflight [0-9]+) \('
    assert_line "restored: ${before%$'\n'}"
    after=$(curl -sf "$URL/admin/batch")
    assert_equal "$after" "$before"
}

@test "tune --json --apply leaves the recommendation applied" {
    start_odd_server
    local before rec
    before=$(curl -sf "$URL/admin/batch")
    run --separate-stderr "$TUNE" --endpoint "$URL" --clients 1,4 \
        --duration 0.5 --modes off,adaptive --json --apply --quiet
    assert_success
    [ "$(printf '%s\n' "$output" | wc -l)" -eq 1 ]
    rec=$(jq -c .recommendation.batch <<<"$output")
    run jq -e '(.settings | length) == 6 and .clients == [1, 4]
               and (.settings[0].points | length) == 2
               and .settings[0].label == "off"
               and .settings[0].points[0].ops_per_entry == 1
               and ([.settings[].points[] | .ok and .ops_per_sec > 0
                     and .p50_ms <= .p99_ms] | all)
               and .original.mode == "fixed" and .original.max_ops == 7
               and .final_action == "applied"
               and .final == .recommendation.batch
               and .rule.p99_ratio == 1.2' <<<"$output"
    assert_success
    run jq -c . <<<"$(curl -sf "$URL/admin/batch")"
    assert_output "$rec"
    # the fields no setting names are kept from the original
    run jq -e '.max_bytes == 1048576 and .max_delay_us == 300' \
        <<<"$(curl -sf "$URL/admin/batch")"
    assert_success
    [ "$(curl -sf "$URL/admin/batch")" != "$before" ]
}

@test "tune refuses a sweep estimated past --max-time, before any load" {
    start_odd_server
    run --separate-stderr "$TUNE" --endpoint "$URL" --max-time 10
    assert_failure 2
    [[ "$stderr" == *"36 points of 3 s: about 119 s"* ]]
    [[ "$stderr" == *"--max-time"* ]]
    run curl -sf "$URL/metrics"
    refute_line --regexp '^metastore_batch_ops_proposed_total [1-9]'
}

@test "tune against an unreachable endpoint exits 1" {
    local port
    port=$(free_port)
    run --separate-stderr "$TUNE" --endpoint "http://127.0.0.1:$port" \
        --clients 1 --duration 0.2 --modes off
    assert_failure 1
    [[ "$stderr" == *"/admin/batch"* ]]
    [[ "$stderr" == *"refused"* ]]
}

@test "tune usage errors exit 2" {
    run --separate-stderr "$TUNE" --modes off,turbo
    assert_failure 2
    [[ "$stderr" == *"turbo"* ]]
    run --separate-stderr "$TUNE" --modes off,off
    assert_failure 2
    run --separate-stderr "$TUNE" --clients 1,0
    assert_failure 2
    run --separate-stderr "$TUNE" --workload mixed
    assert_failure 2
    run --separate-stderr "$TUNE" --p99-ratio 0.5
    assert_failure 2
    run --separate-stderr "$TUNE" --bogus
    assert_failure 2
    run "$TUNE" --help
    assert_success
    assert_line --partial "--apply"
}
