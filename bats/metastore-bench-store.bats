#!/usr/bin/env bats
# metastore-bench-store.bats - black-box tests of `metastore-bench store`:
# JSON and table output on both backends, usage errors.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

bats_require_minimum_version 1.5.0

setup() {
    BENCH=${MS_BUILD:-$BATS_TEST_DIRNAME/../build}/metastore-bench
}

@test "store --backend memory --json prints one object with the fields" {
    run --separate-stderr "$BENCH" store --backend memory --keys 20000 --json
    assert_success
    assert_equal "$stderr" ""
    [ "$(printf '%s\n' "$output" | wc -l)" -eq 1 ]
    run jq -e '.backend == "memory" and .keys == 20000 and .batch == 64
               and .value_size == 256 and .revision == 20001
               and (.ops_per_sec | type == "number") and .ops_per_sec > 0
               and (.overhead_bytes_per_key | type == "number")
               and (.seconds | type == "number")' <<<"$output"
    assert_success
}

@test "store --backend rocksdb --json runs in a temp dir and removes it" {
    local tmp=$BATS_TEST_TMPDIR/t
    mkdir -p "$tmp"
    TMPDIR=$tmp run --separate-stderr "$BENCH" store --backend rocksdb \
        --keys 5000 --batch 100 --value-size 32 --json
    assert_success
    run jq -e '.backend == "rocksdb" and .keys == 5000 and .batch == 100
               and .value_size == 32 and .ops_per_sec > 0' <<<"$output"
    assert_success
    [ -z "$(ls -A "$tmp")" ]
}

@test "store --dir keeps the rocksdb directory and refuses a non-empty one" {
    local dir=$BATS_TEST_TMPDIR/db
    run --separate-stderr "$BENCH" store --backend rocksdb --dir "$dir" \
        --keys 1000 --json
    assert_success
    [ -d "$dir" ]
    run --separate-stderr "$BENCH" store --backend rocksdb --dir "$dir" \
        --keys 1000
    assert_failure 1
    [[ "$stderr" == *"$dir"*"not empty"* ]]
}

@test "store prints a table without --json" {
    run --separate-stderr "$BENCH" store --backend memory --keys 3000 \
        --order sequential
    assert_success
    assert_output --partial "backend            memory"
    assert_output --partial "puts/s"
    assert_output --partial "bytes/key beyond key and value"
}

@test "store --help exits 0 and documents every option" {
    run --separate-stderr "$BENCH" store --help
    assert_success
    for opt in --backend --keys --batch --value-size --order --dir --json \
        --help; do
        assert_output --partial -- "$opt"
    done
}

@test "a bad --backend exits 2 with usage on stderr" {
    run --separate-stderr "$BENCH" store --backend disk --keys 10
    assert_failure 2
    assert_equal "$output" ""
    [[ "$stderr" == *"--backend: 'disk'"* ]]
    [[ "$stderr" == *usage:* ]]
}

@test "missing --backend, bad numbers and stray arguments exit 2" {
    run --separate-stderr "$BENCH" store --keys 10
    assert_failure 2
    [[ "$stderr" == *"--backend is required"* ]]
    run --separate-stderr "$BENCH" store --backend memory --keys 0
    assert_failure 2
    [[ "$stderr" == *"--keys"* ]]
    run --separate-stderr "$BENCH" store --backend memory --batch x
    assert_failure 2
    run --separate-stderr "$BENCH" store --backend memory --order zigzag
    assert_failure 2
    run --separate-stderr "$BENCH" store --backend memory --frob
    assert_failure 2
    run --separate-stderr "$BENCH" store --backend memory extra
    assert_failure 2
}
