#!/usr/bin/env bats
# metastore-server.bats - the server as a user drives it: flags, REST and
# etcd gateway CRUD, CAS, bad input, signals, durability across kill -9.

load lib

teardown() {
    if [ -n "${PID:-}" ] && kill -0 "$PID" 2>/dev/null; then
        kill -KILL "$PID" 2>/dev/null || true
    fi
}

@test "--help lists the flags and exits 0" {
    run "$SERVER" --help
    assert_success
    assert_output --partial "--listen-client-urls"
    assert_output --partial "--batch-mode"
    assert_output --partial "--storage memory|rocksdb"
}

@test "bad flags exit 2 with a message naming the flag" {
    run "$SERVER" --storage floppy
    [ "$status" -eq 2 ]
    assert_output --partial "--storage: 'floppy'"
    run "$SERVER" --no-such-flag
    [ "$status" -eq 2 ]
    run "$SERVER" --heartbeat-interval 500 --election-timeout 600
    [ "$status" -eq 2 ]
    assert_output --partial "election-timeout"
    run "$SERVER" --snapshot-log-percent 2000
    [ "$status" -eq 2 ]
    assert_output --partial "--snapshot-log-percent: '2000'"
    for bad in 0 101 half; do
        run "$SERVER" --snapshot-cpu-percent "$bad"
        [ "$status" -eq 2 ]
        assert_output --partial "--snapshot-cpu-percent: '$bad': expected a percentage 1..100"
    done
}

@test "with no flags: single node on 127.0.0.1:2379 in ./metastore.data" {
    port_free 2379 && port_free 2380 || skip "2379/2380 in use on this machine"
    cd "$BATS_TEST_TMPDIR"
    "$SERVER" >defaults.log 2>&1 &
    PID=$!
    wait_healthy http://127.0.0.1:2379
    [ -d metastore.data/raft ]
    run curl -s -X PUT --data-binary v1 http://127.0.0.1:2379/kv/k
    assert_success
    run curl -s http://127.0.0.1:2379/kv/k
    assert_output "v1"
    stop_server
    # restarting resumes, never re-bootstraps
    "$SERVER" >>defaults.log 2>&1 &
    PID=$!
    wait_healthy http://127.0.0.1:2379
    run curl -s http://127.0.0.1:2379/kv/k
    assert_output "v1"
    stop_server
    ! grep -q "bootstrapped" <(sed -n '/received SIGTERM/,$p' defaults.log)
}

@test "REST: a file round-trips byte for byte; headers carry revisions" {
    start_server s
    head -c 100000 /dev/urandom >"$BATS_TEST_TMPDIR/blob"
    run curl -s -f -X PUT --data-binary @"$BATS_TEST_TMPDIR/blob" "$URL/kv/a"
    assert_success
    curl -s -f "$URL/kv/a" -o "$BATS_TEST_TMPDIR/back"
    cmp "$BATS_TEST_TMPDIR/blob" "$BATS_TEST_TMPDIR/back"
    run curl -s -D - -o /dev/null "$URL/kv/a"
    assert_output --partial "X-Metastore-Version: 1"
    assert_output --partial "X-Metastore-Mod-Revision: 2"
    curl -s -f -X PUT --data-binary x "$URL/kv/a" >/dev/null
    run curl -s -D - -o /dev/null "$URL/kv/a"
    assert_output --partial "X-Metastore-Version: 2"
    assert_output --partial "X-Metastore-Create-Revision: 2"
    assert_output --partial "X-Metastore-Mod-Revision: 3"
    run curl -s -o /dev/null -w '%{http_code}' -X DELETE "$URL/kv/a"
    assert_output 200
    run curl -s -o /dev/null -w '%{http_code}' "$URL/kv/a"
    assert_output 404
    run curl -s -o /dev/null -w '%{http_code}' -X DELETE "$URL/kv/a"
    assert_output 404
    stop_server
}

@test "REST: percent-decoded and binary keys" {
    start_server s
    curl -s -f -X PUT --data-binary one "$URL/kv/a%2Fb" >/dev/null
    run curl -s "$URL/kv/a/b"
    assert_output "one"
    printf 'x\000y\377' >"$BATS_TEST_TMPDIR/bin"
    curl -s -f -X PUT --data-binary @"$BATS_TEST_TMPDIR/bin" "$URL/kv/k%00%FF" >/dev/null
    curl -s -f "$URL/kv/k%00%FF" -o "$BATS_TEST_TMPDIR/bin2"
    cmp "$BATS_TEST_TMPDIR/bin" "$BATS_TEST_TMPDIR/bin2"
    # the gateway sees the same key
    run bash -c "curl -s $URL/v3/kv/range -d '{\"key\":\"$(printf 'k\000\377' | base64 -w0)\"}' | python3 -c 'import json,sys,base64; d=json.load(sys.stdin); print(base64.b64decode(d[\"kvs\"][0][\"value\"]) == open(\"$BATS_TEST_TMPDIR/bin\",\"rb\").read())'"
    assert_output "True"
    run curl -s -o /dev/null -w '%{http_code}' "$URL/kv/bad%zz"
    assert_output 400
    stop_server
}

@test "REST: compare-and-set with If-Match and If-None-Match" {
    start_server s
    run curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'If-None-Match: *' --data-binary v1 "$URL/kv/lock"
    assert_output 200
    run curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'If-None-Match: *' --data-binary v2 "$URL/kv/lock"
    assert_output 412
    rev=$(curl -s -D - -o /dev/null "$URL/kv/lock" | tr -d '\r' | awk -F': ' '/X-Metastore-Mod-Revision/ {print $2}')
    run curl -s -o /dev/null -w '%{http_code}' -X PUT -H "If-Match: $((rev + 5))" --data-binary v3 "$URL/kv/lock"
    assert_output 412
    run curl -s -X PUT -H "If-Match: $rev" --data-binary v4 "$URL/kv/lock"
    assert_success
    run curl -s "$URL/kv/lock"
    assert_output "v4"
    run curl -s -X PUT -H "If-Match: $rev" --data-binary v5 "$URL/kv/lock"
    assert_output --partial '"code":9'
    run curl -s -o /dev/null -w '%{http_code}' -X PUT -H "If-Match: abc" --data-binary v5 "$URL/kv/lock"
    assert_output 400
    stop_server
}

@test "REST: prefix listing with limit, count and more" {
    start_server s
    for k in p/1 p/2 p/3 q/1; do curl -s -f -X PUT --data-binary "$k" "$URL/kv/$k" >/dev/null; done
    run bash -c "curl -s '$URL/kv/?prefix=p/&limit=2' | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[\"count\"], d[\"more\"], [kv[\"key\"] for kv in d[\"kvs\"]])'"
    assert_output "3 True ['p/1', 'p/2']"
    run bash -c "curl -s '$URL/kv/?consistency=serializable' | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[\"count\"])'"
    assert_output "4"
    stop_server
}

@test "gateway: put, range, deleterange with etcd's JSON shapes" {
    start_server s
    run curl -s "$URL/v3/kv/put" -d "{\"key\":\"$(b64 foo)\",\"value\":\"$(b64 bar)\"}"
    assert_output --partial '"revision":"2"'
    refute_output --partial '"prev_kv"'
    run curl -s "$URL/v3/kv/put" -d "{\"key\":\"$(b64 foo)\",\"value\":\"$(b64 baz)\",\"prev_kv\":true}"
    assert_output --partial "\"prev_kv\":{\"key\":\"$(b64 foo)\",\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"$(b64 bar)\"}"
    run curl -s "$URL/v3/kv/range" -d "{\"key\":\"$(b64 foo)\"}"
    assert_output --partial "\"kvs\":[{\"key\":\"$(b64 foo)\",\"create_revision\":\"2\",\"mod_revision\":\"3\",\"version\":\"2\",\"value\":\"$(b64 baz)\"}],\"count\":\"1\""
    run curl -s "$URL/v3/kv/range" -d "{\"key\":\"$(b64 nope)\"}"
    refute_output --partial '"kvs"'
    refute_output --partial '"count"'
    run curl -s "$URL/v3/kv/deleterange" -d "{\"key\":\"$(b64 foo)\"}"
    assert_output --partial '"deleted":"1"'
    stop_server
}

@test "gateway: txn takes the success or failure branch" {
    start_server s
    curl -s "$URL/v3/kv/put" -d "{\"key\":\"$(b64 k)\",\"value\":\"$(b64 v1)\"}" >/dev/null
    body="{\"compare\":[{\"key\":\"$(b64 k)\",\"result\":\"EQUAL\",\"target\":\"VALUE\",\"value\":\"$(b64 v1)\"}],\"success\":[{\"request_put\":{\"key\":\"$(b64 k)\",\"value\":\"$(b64 v2)\"}}],\"failure\":[{\"request_range\":{\"key\":\"$(b64 k)\"}}]}"
    run curl -s "$URL/v3/kv/txn" -d "$body"
    assert_output --partial '"succeeded":true'
    assert_output --partial '"response_put"'
    run curl -s "$URL/v3/kv/txn" -d "$body"
    refute_output --partial '"succeeded"'
    assert_output --partial '"response_range"'
    assert_output --partial "\"value\":\"$(b64 v2)\""
    run curl -s -w ' %{http_code}' "$URL/v3/kv/txn" -d "{\"success\":[{\"request_put\":{\"key\":\"$(b64 d)\"}},{\"request_put\":{\"key\":\"$(b64 d)\"}}]}"
    assert_output --partial 'duplicate key given in txn request'
    assert_output --partial ' 400'
    stop_server
}

@test "gateway: compaction, history reads and the compacted error" {
    start_server s
    for v in a b c d; do curl -s "$URL/v3/kv/put" -d "{\"key\":\"$(b64 h)\",\"value\":\"$(b64 $v)\"}" >/dev/null; done
    # revision 3 held value b
    run curl -s "$URL/v3/kv/range" -d "{\"key\":\"$(b64 h)\",\"revision\":\"3\"}"
    assert_output --partial "\"value\":\"$(b64 b)\""
    run curl -s "$URL/v3/kv/compaction" -d '{"revision":"4"}'
    assert_output --partial '"header"'
    run curl -s -w ' %{http_code}' "$URL/v3/kv/range" -d "{\"key\":\"$(b64 h)\",\"revision\":\"3\"}"
    assert_output '{"error":"etcdserver: mvcc: required revision has been compacted","message":"etcdserver: mvcc: required revision has been compacted","code":11} 400'
    run curl -s -w ' %{http_code}' "$URL/v3/kv/range" -d "{\"key\":\"$(b64 h)\",\"revision\":\"99\"}"
    assert_output --partial 'future revision'
    assert_output --partial ' 400'
    stop_server
}

@test "bad input gets etcd's error shape and status; the server keeps serving" {
    start_server s
    run curl -s -w ' %{http_code}' "$URL/v3/kv/put" -d '{"key":'
    assert_output --partial '"code":3'
    assert_output --partial ' 400'
    run curl -s -w ' %{http_code}' "$URL/v3/kv/put" -d '{"value":"YQ=="}'
    assert_output '{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3} 400'
    run curl -s -w ' %{http_code}' "$URL/v3/kv/put" -d '{"key":"!!!"}'
    assert_output --partial ' 400'
    run curl -s -w ' %{http_code}' "$URL/v3/kv/put" -d '{"key":5}'
    assert_output --partial ' 400'
    head -c 1600000 /dev/zero >"$BATS_TEST_TMPDIR/big"
    run curl -s -w ' %{http_code}' -X PUT --data-binary @"$BATS_TEST_TMPDIR/big" "$URL/kv/big"
    assert_output --partial 'etcdserver: request is too large'
    assert_output --partial ' 400'
    run curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' a)" "$URL/kv/x"
    assert_output 431
    run curl -s -o /dev/null -w '%{http_code}' "$URL/v3/kv/put"
    assert_output 405
    run curl -s -o /dev/null -w '%{http_code}' "$URL/nowhere"
    assert_output 404
    run curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary x "$URL/kv/"
    assert_output 400
    # a garbage request line
    run bash -c "printf 'GARBAGE\r\n\r\n' | timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$PORT; cat >&3; head -1 <&3'"
    assert_output --partial "400"
    # still serving
    run curl -s -f -X PUT --data-binary ok "$URL/kv/alive"
    assert_success
    stop_server
}

@test "health, metrics and the batch settings endpoint" {
    start_server s
    run curl -s "$URL/health"
    assert_output '{"health":"true"}'
    curl -s -f -X PUT --data-binary v "$URL/kv/m" >/dev/null
    run curl -s "$URL/metrics"
    assert_output --partial 'metastore_http_requests_total{api="rest_put",code="2xx"} 1'
    assert_output --partial 'metastore_batch_size_ops_bucket'
    assert_output --partial 'metastore_raft_is_leader 1'
    # the loop's iterations are measured: some ran, the longest is > 0
    n=$(curl -s "$URL/metrics" | awk '$1 == "metastore_loop_busy_seconds_count" {print int($2)}')
    [ "$n" -gt 0 ]
    curl -s "$URL/metrics" | awk '$1 == "metastore_loop_stall_max_seconds" {exit !($2 > 0)}'
    # every acknowledged put went through at least one durable log append
    a1=$(curl -s "$URL/metrics" | awk '$1 == "metastore_raft_disk_appends_total" {print int($2)}')
    f1=$(curl -s "$URL/metrics" | awk '$1 == "metastore_raft_disk_writes_total" {print int($2)}')
    w1=$(curl -s "$URL/metrics" | awk '$1 == "metastore_http_writes_total" {print int($2)}')
    curl -s -f -X PUT --data-binary v "$URL/kv/m2" >/dev/null
    a2=$(curl -s "$URL/metrics" | awk '$1 == "metastore_raft_disk_appends_total" {print int($2)}')
    f2=$(curl -s "$URL/metrics" | awk '$1 == "metastore_raft_disk_writes_total" {print int($2)}')
    w2=$(curl -s "$URL/metrics" | awk '$1 == "metastore_http_writes_total" {print int($2)}')
    [ "$a1" -gt 0 ] && [ "$a2" -gt "$a1" ]
    [ "$f1" -gt 0 ] && [ "$f2" -gt "$f1" ]
    [ "$w2" -gt "$w1" ]
    run curl -s "$URL/admin/batch"
    assert_output --partial '"mode":"adaptive"'
    run curl -s -X PUT "$URL/admin/batch" -d '{"mode":"fixed","max_ops":8}'
    assert_output --partial '"mode":"fixed","max_ops":8'
    run curl -s -w ' %{http_code}' -X PUT "$URL/admin/batch" -d '{"max_ops":0}'
    assert_output --partial ' 400'
    run curl -s -w ' %{http_code}' -X PUT "$URL/admin/batch" -d '{"mode":"sometimes"}'
    assert_output --partial ' 400'
    curl -s -f -X PUT --data-binary v2 "$URL/kv/m" >/dev/null
    run curl -s "$URL/kv/m"
    assert_output v2
    stop_server
}

@test "maintenance status and member list" {
    start_server s
    run bash -c "curl -s -X POST $URL/v3/maintenance/status | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[\"leader\"] == d[\"header\"][\"member_id\"], int(d[\"raftIndex\"]) > 0)'"
    assert_output "True True"
    run bash -c "curl -s -X POST $URL/v3/cluster/member/list | python3 -c 'import json,sys; d=json.load(sys.stdin); m=d[\"members\"]; print(len(m), m[0][\"name\"], \"revision\" in d[\"header\"])'"
    assert_output "1 default False"
    stop_server
}

@test "SIGTERM and SIGINT stop the server with exit 0" {
    start_server s
    curl -s -f -X PUT --data-binary v "$URL/kv/x" >/dev/null
    rc=0
    stop_server || rc=$?
    [ "$rc" -eq 0 ]
    grep -q "received SIGTERM" "$LOG"
    start_server s
    kill -INT "$PID"
    rc=0
    wait "$PID" || rc=$?
    [ "$rc" -eq 0 ]
}

# durability: every write acknowledged before kill -9 is there after restart
kill9_durability() {
    local storage=$1 acked=$BATS_TEST_TMPDIR/acked i
    start_server d --storage "$storage"
    : >"$acked"
    (
        for i in $(seq 1 3000); do
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -X PUT --data-binary "value-$i" "$URL/kv/key-$i")
            if [ "$code" = 200 ]; then echo "$i" >>"$acked"; elif [ "$code" = 000 ]; then break; fi
        done
    ) &
    writer=$!
    sleep 1.5
    kill -KILL "$PID"
    wait "$writer" || true
    n=$(wc -l <"$acked")
    [ "$n" -gt 10 ]
    start_server d --storage "$storage"
    missing=0
    while read -r i; do
        v=$(curl -s "$URL/kv/key-$i")
        [ "$v" = "value-$i" ] || missing=$((missing + 1))
    done <"$acked"
    echo "acked $n, missing $missing" >&3
    [ "$missing" -eq 0 ]
    stop_server
}

@test "kill -9 during writes loses no acknowledged write (memory)" {
    kill9_durability memory
}

@test "kill -9 during writes loses no acknowledged write (rocksdb)" {
    kill9_durability rocksdb
}

@test "restart after snapshots restores the same state (both storage modes)" {
    for storage in memory rocksdb; do
        PORT=
        start_server snap-$storage --storage $storage --snapshot-count 64 --snapshot-log-percent 0
        for i in $(seq 1 300); do
            curl -s -f -X PUT --data-binary "v$i" "$URL/kv/s$((i % 50))" >/dev/null
        done
        curl -s -f -X DELETE "$URL/kv/s7" >/dev/null
        before=$(curl -s "$URL/kv/?prefix=s")
        stop_server
        ls "$DATA/raft" | grep -q '^snap-'
        start_server snap-$storage --storage $storage --snapshot-count 64 --snapshot-log-percent 0
        after=$(curl -s "$URL/kv/?prefix=s")
        [ "$before" = "$after" ]
        stop_server
    done
}

# --snapshot-cpu-percent: a child held to 5% of a CPU still finishes its
# snapshots, and they restore (the pacing itself: test_cowdump)
@test "--snapshot-cpu-percent 5: paced snapshots complete and restore" {
    start_server paced --snapshot-count 64 --snapshot-log-percent 0 --snapshot-cpu-percent 5
    for i in $(seq 1 300); do
        curl -s -f -X PUT --data-binary "v$i" "$URL/kv/p$((i % 50))" >/dev/null
    done
    for _ in $(seq 1 100); do
        [ "$(curl -s "$URL/metrics" | awk '$1 == "metastore_snapshots_taken_total" {print int($2)}')" -ge 3 ] && break
        sleep 0.1
    done
    [ "$(curl -s "$URL/metrics" | awk '$1 == "metastore_snapshots_taken_total" {print int($2)}')" -ge 3 ]
    grep -q 'snapshot at index' "$LOG"
    before=$(curl -s "$URL/kv/?prefix=p")
    stop_server
    start_server paced --snapshot-count 64 --snapshot-log-percent 0 --snapshot-cpu-percent 5
    [ "$(curl -s "$URL/kv/?prefix=p")" = "$before" ]
    stop_server
}

# metric NAME: a value from /metrics (integer part)
metric() {
    curl -s "$URL/metrics" | awk -v m="$1" '$1 == m {split($2, a, "."); print a[1]}'
}

# --snapshot-log-percent: past --snapshot-count entries, a snapshot still
# waits until the log since the last one holds that share of its bytes; 0
# snapshots by count alone. 600 puts of 1 KiB to distinct keys, the state
# growing with the log, --snapshot-count 20: by count about 30 snapshots,
# at 100% about log2(30).
@test "--snapshot-log-percent: snapshots wait for the log to grow by that share of the last one" {
    local taken=()
    for pct in 0 100; do
        PORT=
        start_server pct-$pct --snapshot-count 20 --snapshot-log-percent $pct
        "$MS_BUILD/metastore-bench" load --endpoints "$URL" --clients 1 --op put \
            --val-size 1024 --key-space 100000000 --total 600 --quiet >/dev/null
        sleep 0.5
        taken+=("$(metric metastore_snapshots_taken_total)")
        deferred=$(metric metastore_snapshots_deferred_total)
        last=$(metric metastore_snapshot_last_bytes)
        echo "# --snapshot-log-percent $pct: ${taken[-1]} snapshots, $deferred deferred, last $last bytes" >&3
        [ "$last" -gt 0 ]
        if [ "$pct" = 0 ]; then [ "$deferred" -eq 0 ]; else [ "$deferred" -gt 0 ]; fi
        stop_server
    done
    [ "${taken[0]}" -ge 10 ]
    [ "${taken[1]}" -ge 2 ]
    [ "${taken[1]}" -le 8 ]
}

# Old snapshots and log segments are renamed to tmp-del-NAME and shrunk
# 1 MiB at a time before their unlink (a whole-file unlink on a file system
# with online discard holds every fdatasync behind it). 3,000 puts of 4
# KiB from one client, so one entry each (from more clients the batcher
# puts several in an entry, and under the sanitizers as few as 900
# entries came of them): snapshots of up to 12 MB every 200 entries, all
# but two deleted.
@test "old snapshots are deleted in 1 MiB steps, and nothing is left under a tmp- name" {
    start_server del --snapshot-count 200 --snapshot-log-percent 0
    "$MS_BUILD/metastore-bench" load --endpoints "$URL" --clients 1 --op put \
        --val-size 4096 --key-space 100000000 --total 3000 --quiet >/dev/null
    # snapshots may still start after the load ends (applies lag), and
    # each prunes the oldest: wait (at most 30 s) until two polls 0.5 s
    # apart see the same snapshot count, nothing pending, no tmp- file
    prev=
    for i in $(seq 1 60); do
        cur="$(metric metastore_raft_file_delete_pending_bytes) $(metric metastore_snapshots_taken_total) $(ls "$DATA/raft" | grep -c '^tmp-' || true)"
        [ "$cur" = "$prev" ] && [[ $cur == "0 "*" 0" ]] && break
        prev=$cur
        sleep 0.5
    done
    pending=$(metric metastore_raft_file_delete_pending_bytes)
    echo "# after $i polls: pending $pending bytes; $(ls "$DATA/raft" | tr '\n' ' ')" >&3
    [ "$pending" = 0 ]
    [ "$(metric metastore_snapshots_taken_total)" -ge 10 ]
    deleted=$(metric metastore_raft_files_deleted_total)
    steps=$(metric metastore_raft_file_delete_steps_total)
    echo "# $deleted files deleted in $steps steps" >&3
    [ "$deleted" -ge 8 ]
    [ "$steps" -ge 1 ]
    run ls "$DATA/raft"
    refute_output --partial tmp-
    [ "$(ls "$DATA/raft" | grep -c '^snap-')" -le 2 ]
    stop_server
}

# env_of PID NAME: prints NAME=value from the process's environment. glibc
# puts NULs between the tunables it parsed in the original copy that
# /proc shows: those are read as ':'.
env_of() {
    tr '\0' '\n' <"/proc/$1/environ" | awk -v n="$2=" '
        index($0, n) == 1 { v = $0; on = 1; next }
        on && /^glibc\./ { v = v ":" $0; next }
        { on = 0 }
        END { if (v == "") exit 1; print v }'
}

# --huge-pages (default on): the server runs with glibc's huge-page heap
# (it re-executes itself with the tunable, keeping its PID, its name and
# the user's other tunables), and merges the heap back into huge pages
# after each snapshot child has exited.
@test "--huge-pages: the heap in huge pages, merged back after snapshots" {
    grep -qE '\[(always|madvise)\]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null ||
        skip "the kernel gives no transparent huge pages on request"
    start_server hp --snapshot-count 200 --snapshot-log-percent 0 --log-level debug
    run env_of "$PID" GLIBC_TUNABLES
    assert_output "GLIBC_TUNABLES=glibc.malloc.hugetlb=1"
    run cat "/proc/$PID/comm"
    assert_output "metastore-serve"
    grep -q "store: malloc's heap in 2 MiB (--huge-pages) pages" "$LOG"
    "$MS_BUILD/metastore-bench" load --endpoints "$URL" --clients 1 --op put \
        --val-size 4096 --key-space 100000000 --total 3000 --quiet >/dev/null
    sleep 0.5
    [ "$(metric metastore_snapshots_taken_total)" -ge 2 ]
    if ! ldd "$SERVER" | grep -q libasan; then # ASan's heap is not malloc's
        run grep -c "heap back in huge pages" "$LOG"
        [ "$output" -ge 1 ]
        huge=$(awk '$1 == "AnonHugePages:" {print $2}' "/proc/$PID/smaps_rollup")
        echo "# AnonHugePages: $huge kB" >&3
        [ "$huge" -ge 4096 ]
    fi
    stop_server

    PORT=
    GLIBC_TUNABLES=glibc.malloc.arena_max=4 start_server hp2
    run env_of "$PID" GLIBC_TUNABLES
    assert_output "GLIBC_TUNABLES=glibc.malloc.arena_max=4:glibc.malloc.hugetlb=1"
    stop_server

    PORT=
    start_server hp3 --huge-pages=false
    run env_of "$PID" GLIBC_TUNABLES
    assert_failure
    grep -q "store: malloc's heap in 4 KiB pages" "$LOG"
    stop_server

    run "$SERVER" --huge-pages=maybe
    assert_failure 2
    assert_output --partial "--huge-pages: 'maybe': expected true or false"
}

# Each restart resumes writing in the log's last segment (where the previous
# run stopped, not over its header), including after a kill -9; a segment
# fills and the next one opens; the old C-Raft format is refused.
@test "write, restart, write again: every run's writes survive the next restarts" {
    for storage in memory rocksdb; do
        PORT=
        start_server seg-$storage --storage $storage --snapshot-count 100000
        for run in 1 2 3; do
            for i in $(seq 1 40); do
                curl -s -f -X PUT --data-binary "r$run-$i" "$URL/kv/k$run-$i" >/dev/null
            done
            if [ "$run" = 2 ]; then
                kill -9 "$PID"
                wait "$PID" 2>/dev/null || true
            else
                stop_server
            fi
            start_server seg-$storage --storage $storage --snapshot-count 100000
            for r in $(seq 1 "$run"); do
                for i in 1 20 40; do
                    [ "$(curl -s -f "$URL/kv/k$r-$i")" = "r$r-$i" ]
                done
            done
        done
        # one segment, written by three runs, read back whole
        [ "$(ls "$DATA/raft" | grep -c '^wal-')" -eq 1 ]
        "$MS_BUILD/metastore-walinspect" --verify "$DATA/raft"
        stop_server
    done
}

@test "a data directory in C-Raft's own format is refused with a message" {
    PORT=
    mkdir -p "$BATS_TEST_TMPDIR/old/raft"
    printf '\001\000\000\000\000\000\000\000' >"$BATS_TEST_TMPDIR/old/raft/metadata1"
    touch "$BATS_TEST_TMPDIR/old/raft/open-1"
    run "$MS_BUILD/metastore-server" --data-dir "$BATS_TEST_TMPDIR/old" \
        --listen-client-urls "http://127.0.0.1:$(free_port)" \
        --listen-peer-urls "http://127.0.0.1:$(free_port)"
    [ "$status" -eq 1 ]
    [[ "$output" == *"C-Raft's own format"* ]]
    [[ "$output" == *"metastore-snapshot"* ]]
    # nothing was changed
    [ -f "$BATS_TEST_TMPDIR/old/raft/open-1" ]
    ! ls "$BATS_TEST_TMPDIR/old/raft" | grep -E '^(wal-|meta[12]$|snap-)'
    [ "$(head -c 1 "$BATS_TEST_TMPDIR/old/raft/metadata1" | od -An -tu1 | tr -d ' ')" = 1 ]
}
