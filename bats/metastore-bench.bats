#!/usr/bin/env bats
# metastore-bench.bats - black-box tests of metastore-bench: dispatch, usage
# errors, and the codec benchmark's table and JSON output.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

bats_require_minimum_version 1.5.0

setup() {
    BENCH=${MS_BUILD:-$BATS_TEST_DIRNAME/../build}/metastore-bench
}

@test "--help exits 0 and lists the commands" {
    run --separate-stderr "$BENCH" --help
    assert_success
    assert_output --partial "codec"
    assert_output --partial "store"
    assert_output --partial "load"
}

@test "no command exits 2 with usage on stderr" {
    run --separate-stderr "$BENCH"
    assert_failure 2
    assert_equal "$output" ""
    [[ "$stderr" == *usage:* ]]
}

@test "an unknown command exits 2 with usage on stderr" {
    run --separate-stderr "$BENCH" frobnicate
    assert_failure 2
    assert_equal "$output" ""
    [[ "$stderr" == *"unknown command 'frobnicate'"* ]]
    [[ "$stderr" == *usage:* ]]
}

@test "codec --help exits 0 and documents every option" {
    run --separate-stderr "$BENCH" codec --help
    assert_success
    for opt in --duration --codec --value-sizes --batch-sizes --json --help; do
        assert_output --partial -- "$opt"
    done
}

@test "codec: an unknown flag exits 2 with usage on stderr" {
    run --separate-stderr "$BENCH" codec --frobnicate
    assert_failure 2
    assert_equal "$output" ""
    [[ "$stderr" == *"unknown option '--frobnicate'"* ]]
    [[ "$stderr" == *usage:* ]]
}

@test "codec: bad option values exit 2 naming the option" {
    local args
    for args in "--duration 0" "--duration abc" "--duration -1" "--duration" \
        "--codec xml" "--value-sizes 0" "--value-sizes 1,,2" \
        "--batch-sizes x" "--batch-sizes 2000000" "stray"; do
        # shellcheck disable=SC2086
        run --separate-stderr "$BENCH" codec $args
        assert_failure 2
        assert_equal "$output" ""
        [[ "$stderr" == *"metastore-bench codec:"* ]]
    done
}

@test "codec prints a table with both codecs and every case" {
    run --separate-stderr "$BENCH" codec --duration 0.02
    assert_success
    assert_line --regexp '^codec +value_size +batch_size +bytes/op'
    local v b c
    for v in 16 256 4096; do
        for b in 1 16 256; do
            for c in protobuf json; do
                assert_line --regexp "^$c +$v +$b +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+\$"
            done
            # the protobuf:json ratio row of the case
            assert_line --regexp "^ +$v +$b +[0-9.]+x +[0-9.]+\$"
        done
    done
    [ "$(grep -cE '^(protobuf|json) ' <<<"$output")" -eq 18 ]
}

@test "codec --json prints 18 objects with the required fields, all positive" {
    run --separate-stderr "$BENCH" codec --duration 0.02 --json
    assert_success
    python3 -c '
import json, sys
rows = json.loads(sys.argv[1])
assert isinstance(rows, list) and len(rows) == 18, len(rows)
fields = ["encode_ns_per_op", "decode_ns_per_op", "bytes_per_op",
          "encode_mb_s", "decode_mb_s"]
cases = set()
for r in rows:
    assert r["codec"] in ("json", "protobuf"), r
    for f in fields:
        assert isinstance(r[f], (int, float)) and r[f] > 0, (f, r)
    cases.add((r["codec"], r["value_size"], r["batch_size"]))
want = {(c, v, b) for c in ("json", "protobuf") for v in (16, 256, 4096)
        for b in (1, 16, 256)}
assert cases == want, cases ^ want
' "$output"
}

@test "codec --codec protobuf gives only protobuf rows" {
    run --separate-stderr "$BENCH" codec --codec protobuf --duration 0.02
    assert_success
    [ "$(grep -cE '^protobuf ' <<<"$output")" -eq 9 ]
    refute_line --regexp '^json '
    refute_output --partial "protobuf:json"
}

@test "codec with custom sizes: protobuf is smaller than JSON" {
    run --separate-stderr "$BENCH" codec --duration=0.02 --value-sizes 100 \
        --batch-sizes=3 --json
    assert_success
    python3 -c '
import json, sys
rows = {r["codec"]: r for r in json.loads(sys.argv[1])}
assert set(rows) == {"json", "protobuf"}
for r in rows.values():
    assert r["value_size"] == 100 and r["batch_size"] == 3, r
    assert r["bytes_per_op"] > 100, r
assert rows["protobuf"]["bytes_per_op"] < rows["json"]["bytes_per_op"]
' "$output"
}
