#!/usr/bin/env bats
# metastore-walinspect.bats - the offline log reader against real data
# directories: a known sequence of writes (both codecs) is listed exactly,
# as JSON and as statistics; a flipped byte in a segment before the last
# fails --verify naming the segment; a cut last segment is a torn tail
# (exit 3).
#
# The server writes metastore's own format (wal-S segments, snap-T-I
# snapshots, meta1/meta2; see pkg/raft/logfmt.h). Its segments are 64 MiB,
# so a small test never fills one: to get a segment that is not the last,
# add_segment appends one after the server stopped, as the server would
# have when the first one filled up.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

MS_BUILD=${MS_BUILD:-$BATS_TEST_DIRNAME/../build}
SERVER=$MS_BUILD/metastore-server
WAL=$MS_BUILD/metastore-walinspect

teardown() {
    if [ -n "${PID:-}" ] && kill -0 "$PID" 2>/dev/null; then
        kill -KILL "$PID" 2>/dev/null || true
    fi
}

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start CODEC: a server on free loopback ports with data in $DATA.
start() {
    local i
    for i in $(seq 1 50); do
        # below the kernel's ephemeral range (32768-), where a client's
        # outgoing connection may hold the port and make bind fail
        PORT=$(((RANDOM % 12000) + 20000))
        port_free "$PORT" && port_free $((PORT + 1)) && break
    done
    URL=http://127.0.0.1:$PORT
    DATA=$BATS_TEST_TMPDIR/data
    "$SERVER" --data-dir "$DATA" --listen-client-urls "$URL" \
        --listen-peer-urls "http://127.0.0.1:$((PORT + 1))" \
        --snapshot-count 50 --snapshot-log-percent 0 --codec "$1" >>"$BATS_TEST_TMPDIR/log" 2>&1 &
    PID=$!
    for i in $(seq 1 100); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
            "$URL/health")" = 200 ] && return 0
        sleep 0.1
    done
    cat "$BATS_TEST_TMPDIR/log" >&2
    return 1
}

# stop: SIGTERM and wait (at most 10 s); the server exits 0.
stop() {
    local i
    kill -TERM "$PID"
    for i in $(seq 1 100); do
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    wait "$PID"
}

put() {
    curl -s -f -X PUT --data-binary "$2" "$URL/kv/$1" >/dev/null
}

b64() {
    printf '%s' "$1" | base64 -w0
}

# add_segment DIR: appends segment wal-(last+1) to DIR, starting where the
# last segment's data ends, holding one barrier entry (term = the last
# entry's). The last segment is found with walinspect --json.
add_segment() {
    "$WAL" --json "$1" | python3 -c '
import json, struct, sys
def crc32c(b, crc=0):
    crc ^= 0xffffffff
    for x in b:
        crc ^= x
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 if crc & 1 else 0)
    return crc ^ 0xffffffff
d = sys.argv[1]
lines = [json.loads(l) for l in sys.stdin]
segs = lines[0]["segments"]
last = [o for o in lines if o["kind"] == "entry"][-1]
seq = segs[-1]["seq"] + 1
h = b"MSRWAL01" + struct.pack("<QQI", seq, last["index"] + 1, 1)
body = struct.pack("<IQQB7x", 8, last["index"] + 1, last["term"], 2) + bytes(8)
rec = struct.pack("<I", crc32c(body)) + body
with open("%s/wal-%016x" % (d, seq), "wb") as f:
    f.write(h + struct.pack("<I", crc32c(h)) + rec + bytes(4096))
' "$1"
}

# write_known: 60 REST puts k01..k60 (more than --snapshot-count, so a
# snapshot closes a segment), a REST delete of k02, a v3 put of v3key and
# a v3 txn (compare k01 version = 1, then put txkey, else delete k03).
# Writes the expected operations, one "type key" per line, to $EXPECTED.
write_known() {
    local i
    EXPECTED=$BATS_TEST_TMPDIR/expected
    : >"$EXPECTED"
    for i in $(seq -w 1 60); do
        put "k$i" "value-$i"
        echo "put k$i" >>"$EXPECTED"
    done
    curl -s -f -X DELETE "$URL/kv/k02" >/dev/null
    echo "delete_range k02" >>"$EXPECTED"
    curl -s -f "$URL/v3/kv/put" \
        -d "{\"key\":\"$(b64 v3key)\",\"value\":\"$(b64 v3value)\"}" >/dev/null
    echo "put v3key" >>"$EXPECTED"
    curl -s -f "$URL/v3/kv/txn" -d "{\"compare\":[{\"key\":\"$(b64 k01)\",\
\"target\":\"VERSION\",\"result\":\"EQUAL\",\"version\":\"1\"}],\
\"success\":[{\"request_put\":{\"key\":\"$(b64 txkey)\",\"value\":\"$(b64 x)\"}}],\
\"failure\":[{\"request_delete_range\":{\"key\":\"$(b64 k03)\"}}]}" >/dev/null
    echo "txn " >>"$EXPECTED"
}

# ops_of: reads walinspect --json on stdin, prints "type key" per operation
# of every command entry, in log order.
ops_of() {
    python3 -c '
import base64, json, sys
for line in sys.stdin:
    o = json.loads(line)
    if o["kind"] != "entry" or o["type"] != "command":
        continue
    for op in o.get("ops", []):
        key = base64.b64decode(op.get("key", "")).decode()
        print(op["type"], key)
'
}

# known_log CODEC: the whole scenario for one codec.
known_log() {
    local codec=$1 f n
    start "$codec"
    write_known
    stop

    # metastore's format: segments, a snapshot, no tmp- file left
    run ls "$DATA/raft"
    assert_output --regexp 'wal-0000000000000001'
    assert_output --partial 'snap-'
    assert_output --partial 'meta'
    refute_output --partial 'tmp-'

    # plain listing: every command in order, codec from the entry header
    run "$WAL" "$DATA"
    assert_success
    assert_output --partial "# dir $DATA/raft"
    assert_output --partial "# format metastore-1"
    assert_output --regexp '# metadata term=[0-9]+ vote=[0-9]+'
    assert_output --regexp '# snapshot term=1 index=50 size=[0-9]+'
    assert_output --regexp '1 term=1 config size=[0-9]+ servers: [0-9]+ 127\.0\.0\.1:[0-9]+ voter'
    assert_output --regexp 'barrier size=8'
    assert_output --regexp "command size=[0-9]+ codec=$codec ops=1: put key=k01 value=8 bytes"
    assert_output --partial "ops=1: delete_range key=k02"
    assert_output --partial "txn compares=1 success=[put key=txkey value=1 bytes] failure=[delete_range key=k03]"
    n=$(grep -c " command .* codec=$codec ops=" <<<"$output")
    [ "$n" -eq 63 ]
    # the server's member-table entry (JSON, not a codec batch)
    assert_output --regexp 'command size=[0-9]+ members: op=upsert id=[0-9]+ name=default'

    # JSON: a meta object first, every line valid JSON, ops exactly as written
    run "$WAL" --json "$DATA"
    assert_success
    [ "$(head -1 <<<"$output" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["kind"], d["format"])')" = "meta metastore-1" ]
    while IFS= read -r line; do
        python3 -m json.tool <<<"$line" >/dev/null || fail "bad JSON: $line"
    done <<<"$output"
    "$WAL" --json "$DATA/raft" | ops_of >"$BATS_TEST_TMPDIR/got"
    diff "$EXPECTED" "$BATS_TEST_TMPDIR/got"

    # statistics match what was written
    run "$WAL" --stats "$DATA"
    assert_success
    assert_output --regexp 'entries [0-9]+: command 64 \(member-table 1\), barrier [0-9]+, config 1'
    assert_output --partial "ops 63: put 61, delete_range 1, range 0, txn 1,"
    assert_output --partial "ops per command entry: min 1 p50 1 p99 1 max 1"
    run "$WAL" --stats --json "$DATA"
    assert_success
    [ "$(tail -1 <<<"$output" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["ops"]["put"], d["ops"]["txn"], d["entries"]["command"])')" = "61 1 64" ]

    run "$WAL" --verify "$DATA"
    assert_success
    assert_output --regexp '^ok: [0-9]+ entries \(1\.\.[0-9]+\) in [0-9]+ segments$'
}

@test "a known sequence of writes is listed exactly (protobuf codec)" {
    known_log protobuf
}

@test "a known sequence of writes is listed exactly (json codec)" {
    known_log json
}

@test "--from, --to, --type and --key select entries and operations" {
    start protobuf
    write_known
    stop
    run "$WAL" --type config "$DATA"
    assert_success
    [ "$(grep -vc '^#' <<<"$output")" -eq 1 ]
    run "$WAL" --type barrier --json "$DATA"
    assert_success
    ! grep -v '"kind":"meta"' <<<"$output" | grep -v '"type":"barrier"'
    run "$WAL" --from 5 --to 7 "$DATA"
    assert_success
    [ "$(grep -v '^#' <<<"$output" | cut -d' ' -f1 | tr '\n' ' ')" = "5 6 7 " ]
    run "$WAL" --key k0 --type command "$DATA"
    assert_success
    # k01..k09 puts, the delete of k02, and the txn (it compares k01)
    [ "$(grep -vc '^#' <<<"$output")" -eq 11 ]
    refute_output --partial "key=k10"
    run "$WAL" --key v3 --json "$DATA"
    assert_success
    [ "$("$WAL" --key v3 --json "$DATA" | ops_of)" = "put v3key" ]
}

@test "a flipped byte in a segment before the last fails --verify naming the segment" {
    local seg off
    start json
    write_known
    stop
    add_segment "$DATA/raft"
    run "$WAL" --verify "$DATA"
    assert_success
    # the data offset of entry 10 and its segment (not the last now)
    read -r seg off < <("$WAL" --json --from 10 --to 10 "$DATA" |
        python3 -c 'import json,sys
for l in sys.stdin:
    o = json.loads(l)
    if o["kind"] == "entry": print(o["segment"], o["offset"])')
    [[ "$seg" =~ ^wal-[0-9a-f]{16}$ ]]
    printf '\xff' | dd of="$DATA/raft/$seg" bs=1 seek=$((off + 3)) conv=notrunc 2>/dev/null
    run "$WAL" --verify "$DATA"
    [ "$status" -eq 1 ]
    assert_output --partial "$DATA/raft/$seg: offset "
    assert_output --partial "checksum mismatch"
    assert_output --regexp 'corrupt: [0-9]+ entries'
    run "$WAL" "$DATA"
    [ "$status" -eq 1 ]
    assert_output --partial "$seg"
}

@test "the last segment cut inside its last record is a torn tail (exit 3 with --verify)" {
    local seg off size last
    start protobuf
    for i in $(seq 1 8); do put "t$i" "v$i"; done
    # a crash: the last segment keeps its data
    kill -KILL "$PID"
    wait "$PID" || true
    run "$WAL" --verify "$DATA"
    assert_success
    read -r seg off size last < <("$WAL" --json "$DATA" | python3 -c 'import json,sys
e = [json.loads(l) for l in sys.stdin][-1]
print(e["segment"], e["offset"], e["size"], e["index"])')
    [[ "$seg" == wal-* ]]
    truncate -s $((off + size / 2)) "$DATA/raft/$seg"
    run "$WAL" "$DATA"
    assert_success
    assert_output --partial "warning: torn tail: $DATA/raft/$seg: offset"
    assert_output --partial "key=t7"
    refute_output --partial "key=t8"
    run "$WAL" --verify "$DATA"
    [ "$status" -eq 3 ]
    assert_output --partial "torn_tail: $((last - 1)) entries"
    run "$WAL" --verify --json "$DATA"
    [ "$status" -eq 3 ]
    [ "$(grep '"kind":"verify"' <<<"$output" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["status"], d["file"])')" = "torn_tail $seg" ]
}

@test "a running server's directory is read without changing it" {
    local before after
    start protobuf
    for i in $(seq 1 5); do put "live$i" "v$i"; done
    before=$(cd "$DATA/raft" && ls -l --time-style=+%s.%N && md5sum -- *)
    run "$WAL" "$DATA"
    assert_success
    assert_output --partial "key=live5"
    run "$WAL" --verify "$DATA"
    assert_success
    run "$WAL" --stats --json "$DATA"
    assert_success
    after=$(cd "$DATA/raft" && ls -l --time-style=+%s.%N && md5sum -- *)
    [ "$before" = "$after" ]
    put live6 v6
    run "$WAL" "$DATA"
    assert_success
    assert_output --partial "key=live6"
    stop
}

@test "--help agrees with the man page; usage errors exit 2; a missing directory exits 1" {
    local opt man
    man=$(sed 's/\\-/-/g' "$BATS_TEST_DIRNAME/../man/metastore-walinspect.1")
    run "$WAL" --help
    assert_success
    for opt in --from --to --type --key --json --stats --verify --help; do
        assert_output --partial -- "$opt"
        grep -q -- "$opt" <<<"$man" || fail "man page lacks $opt"
    done
    run "$WAL"
    [ "$status" -eq 2 ]
    assert_output --partial "missing DATA_DIR"
    run "$WAL" --bogus x
    [ "$status" -eq 2 ]
    run "$WAL" --type frob x
    [ "$status" -eq 2 ]
    run "$WAL" --from 9 --to 3 x
    [ "$status" -eq 2 ]
    run "$WAL" --from abc x
    [ "$status" -eq 2 ]
    run "$WAL" --to
    [ "$status" -eq 2 ]
    run "$WAL" a b
    [ "$status" -eq 2 ]
    run "$WAL" "$BATS_TEST_TMPDIR/nope"
    [ "$status" -eq 1 ]
    assert_output --partial "$BATS_TEST_TMPDIR/nope"
}
