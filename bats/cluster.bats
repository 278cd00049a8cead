#!/usr/bin/env bats
# cluster.bats - 3-node clusters on loopback: replication through any
# member, leader failover under load with no lost write, catch-up by
# snapshot, membership changes, no-leader errors. Uses tools/cluster.

load lib

CLUSTER=$BATS_TEST_DIRNAME/../tools/cluster
TIMING=(--heartbeat-interval 50 --election-timeout 500)

setup() {
    DIR=$BATS_TEST_TMPDIR/c
    export MS_BUILD
}

teardown() {
    "$CLUSTER" stop "$DIR" >/dev/null 2>&1 || true
    if [ -f "$DIR/n4.pid" ]; then kill -KILL "$(cat "$DIR/n4.pid")" 2>/dev/null || true; fi
}

urls() {
    IFS=, read -r U1 U2 U3 <<<"$("$CLUSTER" urls "$DIR")"
}

leader_url() { # prints the client URL of the current leader (as seen by $1)
    local id
    id=$(curl -s --max-time 1 -X POST "$1/v3/maintenance/status" | json_get '["leader"]')
    curl -s --max-time 1 -X POST "$1/v3/cluster/member/list" |
        python3 -c "import json,sys; d=json.load(sys.stdin); print([m['clientURLs'][0] for m in d['members'] if m['ID']=='$id'][0])"
}

# state URL: the whole key space as served locally (with revision)
state() {
    curl -s --max-time 2 "$1/kv/?consistency=serializable&base64=true"
}

# converge: waits (at most 10 s) until all three members serve identical
# state; prints it
converge() {
    local a b c i
    for i in $(seq 1 100); do
        a=$(state "$U1"); b=$(state "$U2"); c=$(state "$U3")
        if [ -n "$a" ] && [ "$a" = "$b" ] && [ "$b" = "$c" ]; then
            echo "$a"
            return 0
        fi
        sleep 0.1
    done
    echo "members differ:" >&2; echo "$a" | head -c 300 >&2; echo >&2; echo "$b" | head -c 300 >&2; echo >&2; echo "$c" | head -c 300 >&2
    return 1
}

@test "a 3-node cluster elects a leader; writes through any member read back through every member" {
    "$CLUSTER" start "$DIR" -n 3 -- "${TIMING[@]}"
    urls
    leaders=0
    for u in "$U1" "$U2" "$U3"; do
        st=$(curl -s -X POST "$u/v3/maintenance/status")
        [ "$(echo "$st" | json_get '["leader"]')" = "$(echo "$st" | json_get '["header"]["member_id"]')" ] && leaders=$((leaders + 1))
    done
    [ "$leaders" -eq 1 ]
    i=0
    for w in "$U1" "$U2" "$U3"; do
        i=$((i + 1))
        curl -s -f -X PUT --data-binary "via-$i" "$w/kv/key-$i" >/dev/null
        for r in "$U1" "$U2" "$U3"; do
            run curl -s "$r/kv/key-$i"
            assert_output "via-$i"
        done
        curl -s -f "$w/v3/kv/put" -d "{\"key\":\"$(b64 g$i)\",\"value\":\"$(b64 v$i)\"}" >/dev/null
        run curl -s "$U1/v3/kv/range" -d "{\"key\":\"$(b64 g$i)\"}"
        assert_output --partial "\"value\":\"$(b64 v$i)\""
    done
    # names and client URLs of every member are replicated
    run bash -c "curl -s -X POST $U3/v3/cluster/member/list | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sorted(m[\"name\"] for m in d[\"members\"]), all(\"clientURLs\" in m for m in d[\"members\"]))'"
    assert_output "['n1', 'n2', 'n3'] True"
    converge >/dev/null
}

@test "kill -9 of the leader under write load: a new leader, no acknowledged write lost" {
    "$CLUSTER" start "$DIR" -n 3 -- "${TIMING[@]}"
    urls
    old=$(leader_url "$U1")
    acked=$BATS_TEST_TMPDIR/acked
    : >"$acked"
    writer() { # URL tag
        local i code
        for i in $(seq 1 400); do
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 -X PUT --data-binary "$2-$i" "$1/kv/$2-$i")
            [ "$code" = 200 ] && echo "$2-$i" >>"$acked"
        done
    }
    writer "$U1" a & w1=$!
    writer "$U2" b & w2=$!
    writer "$U3" c & w3=$!
    sleep 1
    name=$(basename "$(grep -l "serving clients on $old" "$DIR"/n*.log)" .log)
    "$CLUSTER" kill "$DIR" "$name"
    killed=$(date +%s%N)
    # a new leader within a few election timeouts, seen from a survivor
    survivor=$U1; [ "$old" = "$U1" ] && survivor=$U2
    new=""
    for i in $(seq 1 50); do
        new=$(leader_url "$survivor" 2>/dev/null || true)
        [ -n "$new" ] && [ "$new" != "$old" ] && break
        sleep 0.1
    done
    [ -n "$new" ] && [ "$new" != "$old" ]
    echo "new leader after $(( ($(date +%s%N) - killed) / 1000000 )) ms" >&3
    wait "$w1" "$w2" "$w3" || true
    "$CLUSTER" restart "$DIR" "$name"
    n=$(wc -l <"$acked")
    [ "$n" -gt 100 ]
    final=$(converge)
    missing=0
    while read -r k; do
        grep -q "\"$(printf '%s' "$k" | base64 -w0)\"" <<<"$final" || missing=$((missing + 1))
    done <"$acked"
    echo "acked $n, missing $missing" >&3
    [ "$missing" -eq 0 ]
}

# catch_up_by_snapshot STORAGE: a follower killed while the others take
# snapshots past its log restarts and converges by snapshot install.
catch_up_by_snapshot() {
    "$CLUSTER" start "$DIR" -n 3 -- "${TIMING[@]}" --snapshot-count 100 --snapshot-log-percent 0 --storage "$1"
    urls
    leader=$(leader_url "$U1")
    follower=n1; [ "$leader" = "$U1" ] && follower=n2
    "$CLUSTER" kill "$DIR" "$follower"
    for i in $(seq 1 400); do
        curl -s -f -X PUT --data-binary "v$i" "$leader/kv/s$((i % 37))" >/dev/null
    done
    ls "$DIR"/n*/raft | grep -q snap-
    "$CLUSTER" restart "$DIR" "$follower"
    converge >/dev/null
    grep -q -i "snapshot" "$DIR/$follower.log"
}

@test "a follower down past --snapshot-count catches up by snapshot (rocksdb)" {
    catch_up_by_snapshot rocksdb
}

@test "a follower down past --snapshot-count catches up by snapshot (memory, taken off the loop)" {
    catch_up_by_snapshot memory
    grep -q "ms on the loop" "$DIR"/n*.log
}

@test "member add (learner), promote, remove: ends with 3 voters that serve" {
    "$CLUSTER" start "$DIR" -n 3 -- "${TIMING[@]}"
    urls
    . "$DIR/cluster.env"
    c4=$((BASE + 6)); p4=$((BASE + 7))
    port_free "$c4" && port_free "$p4"
    curl -s -f -X PUT --data-binary before "$U1/kv/m" >/dev/null
    run curl -s "$U2/v3/cluster/member/add" -d "{\"peerURLs\":[\"http://127.0.0.1:$p4\"],\"isLearner\":true}"
    assert_output --partial '"isLearner":true'
    id4=$(echo "$output" | json_get '["member"]["ID"]')
    "$SERVER" --name n4 --data-dir "$DIR/n4" --listen-client-urls "http://127.0.0.1:$c4" \
        --listen-peer-urls "http://127.0.0.1:$p4" --initial-cluster "$INITIAL,n4=http://127.0.0.1:$p4" \
        --initial-cluster-state existing "${TIMING[@]}" >"$DIR/n4.log" 2>&1 &
    echo $! >"$DIR/n4.pid"
    wait_healthy "http://127.0.0.1:$c4"
    run curl -s "http://127.0.0.1:$c4/kv/m?consistency=serializable"
    assert_output before
    run curl -s "$U3/v3/cluster/member/promote" -d "{\"ID\":\"$id4\"}"
    refute_output --partial '"isLearner"'
    # remove the leader: leadership moves first, then it is removed
    lid=$(curl -s -X POST "$U1/v3/maintenance/status" | json_get '["leader"]')
    lname=$(curl -s -X POST "$U1/v3/cluster/member/list" | python3 -c "import json,sys; d=json.load(sys.stdin); print([m['name'] for m in d['members'] if m['ID']=='$lid'][0])")
    run curl -s "$U1/v3/cluster/member/remove" -d "{\"ID\":\"$lid\"}"
    assert_output --partial '"members"'
    refute_output --partial "\"ID\":\"$lid\""
    # the removed member is told, and stops by itself (exit 0)
    for i in $(seq 1 50); do kill -0 "$(cat "$DIR/$lname.pid")" 2>/dev/null || break; sleep 0.1; done
    ! kill -0 "$(cat "$DIR/$lname.pid")" 2>/dev/null
    grep -q "was removed from the cluster" "$DIR/$lname.log"
    # 3 voters remain, none a learner
    run bash -c "curl -s -X POST http://127.0.0.1:$c4/v3/cluster/member/list | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d[\"members\"]), any(m.get(\"isLearner\") for m in d[\"members\"]))'"
    assert_output "3 False"
    # the remaining three serve writes and reads
    curl -s -f -X PUT --data-binary after "http://127.0.0.1:$c4/kv/m" >/dev/null
    run curl -s "http://127.0.0.1:$c4/kv/m"
    assert_output after
    # an unknown member id
    run curl -s -w ' %{http_code}' "http://127.0.0.1:$c4/v3/cluster/member/remove" -d '{"ID":"12345"}'
    assert_output --partial 'member not found'
    assert_output --partial ' 404'
}

@test "without a quorum, writes fail with etcd's no-leader error in bounded time" {
    "$CLUSTER" start "$DIR" -n 3 -- "${TIMING[@]}" --request-timeout 1500
    urls
    "$CLUSTER" kill "$DIR" n2
    "$CLUSTER" kill "$DIR" n3
    sleep 1 # past the election timeout: a leader without a quorum steps down
    start=$(date +%s)
    run curl -s -w ' %{http_code}' --max-time 10 -X PUT --data-binary x "$U1/kv/q"
    assert_output --partial 'etcdserver: no leader'
    assert_output --partial ' 503'
    [ $(( $(date +%s) - start )) -lt 8 ]
    run curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$U1/health"
    assert_output 503
    # serializable reads still work locally
    run curl -s -o /dev/null -w '%{http_code}' "$U1/kv/q?consistency=serializable"
    assert_output 404
    # a quorum is back: writes succeed again
    "$CLUSTER" restart "$DIR" n2
    run curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X PUT --data-binary x "$U1/kv/q"
    assert_output 200
    run curl -s "$U2/kv/q"
    assert_output x
}

@test "kill -9 of every member, restart: the same state (rocksdb, json codec)" {
    "$CLUSTER" start "$DIR" -n 3 -- "${TIMING[@]}" --storage rocksdb --codec json --snapshot-count 200 --snapshot-log-percent 0
    urls
    US=("$U1" "$U2" "$U3")
    for i in $(seq 1 300); do
        curl -s -f -X PUT --data-binary "v$i" "${US[$((i % 3))]}/kv/a$((i % 41))" >/dev/null
    done
    curl -s -f -X DELETE "$U2/kv/a5" >/dev/null
    before=$(converge)
    for n in n1 n2 n3; do "$CLUSTER" kill "$DIR" "$n"; done
    sleep 0.3
    for n in n1 n2 n3; do
        "$CLUSTER" restart "$DIR" "$n" &
    done
    wait
    after=$(converge)
    [ "$before" = "$after" ]
    run curl -s "$U3/kv/a7"
    assert_output "v294"
}

@test "graceful stop of the leader hands leadership over" {
    "$CLUSTER" start "$DIR" -n 3 -- "${TIMING[@]}"
    urls
    leader=$(leader_url "$U1")
    name=$(basename "$(grep -l "serving clients on $leader" "$DIR"/n*.log)" .log)
    kill -TERM "$(cat "$DIR/$name.pid")"
    for i in $(seq 1 50); do kill -0 "$(cat "$DIR/$name.pid")" 2>/dev/null || break; sleep 0.1; done
    ! kill -0 "$(cat "$DIR/$name.pid")" 2>/dev/null
    grep -q "handed leadership" "$DIR/$name.log"
    survivor=$U1; [ "$leader" = "$U1" ] && survivor=$U2
    run curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X PUT --data-binary y "$survivor/kv/after-stop"
    assert_output 200
}

@test "a 5-node cluster keeps serving with 2 members killed" {
    "$CLUSTER" start "$DIR" -n 5 -- "${TIMING[@]}" --codec json
    IFS=, read -r U1 U2 U3 U4 U5 <<<"$("$CLUSTER" urls "$DIR")"
    curl -s -f -X PUT --data-binary before "$U5/kv/f" >/dev/null
    leader=$(leader_url "$U1")
    name=$(basename "$(grep -l "serving clients on $leader" "$DIR"/n*.log)" .log)
    "$CLUSTER" kill "$DIR" "$name"
    other=n1; [ "$name" = n1 ] && other=n2
    "$CLUSTER" kill "$DIR" "$other"
    alive=""
    for u in "$U1" "$U2" "$U3" "$U4" "$U5"; do
        [ "$u" = "$leader" ] && continue
        [ "$u" = "$(sed -n 's/.*serving clients on \(http[^,]*\),.*/\1/p' "$DIR/$other.log" | head -1)" ] && continue
        alive=$u
    done
    run curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X PUT --data-binary after "$alive/kv/f"
    assert_output 200
    run curl -s "$alive/kv/f"
    assert_output after
}

# leader_name URL: the member name (n1..) of the leader as seen by URL
leader_name() {
    local url
    url=$(leader_url "$1")
    basename "$(grep -l "serving clients on $url," "$DIR"/n*.log)" .log
}

@test "a follower forwarding to a leader that was just killed waits for the new leader and succeeds" {
    "$CLUSTER" start "$DIR" -n 3 -- "${TIMING[@]}" --request-timeout 5000
    urls
    name=$(leader_name "$U1")
    follower=$U1; [ "$name" = n1 ] && follower=$U2
    # the follower's keep-alive connection to the leader exists
    curl -s -f -X PUT --data-binary warm "$follower/kv/warm" >/dev/null
    dead=$(leader_url "$U1")
    kill -KILL "$(cat "$DIR/$name.pid")"
    # gone (its port refuses), yet well within the election timeout: the
    # follower still names the dead leader, so its forward is refused
    for i in $(seq 1 100); do
        curl -s -o /dev/null --max-time 1 "$dead/health" || [ $? -ne 7 ] || break
        sleep 0.005
    done
    run curl -s -w ' %{http_code}' --max-time 10 -X PUT --data-binary after "$follower/kv/k"
    assert_output --partial ' 200'
    run curl -s -w ' %{http_code}' --max-time 10 "$follower/kv/k"
    assert_output 'after 200'
    grep -q "forward to leader .* failed.*waiting for a leader to retry" "$DIR"/n*.log
}

@test "a forward whose leader dies mid-request: reads are retried, a write's unknown outcome is etcd's error and it is applied at most once" {
    "$CLUSTER" start "$DIR" -n 3 -- "${TIMING[@]}" --request-timeout 5000
    urls
    name=$(leader_name "$U1")
    follower=$U1; [ "$name" = n1 ] && follower=$U2
    curl -s -f "$follower/v3/kv/put" -d "{\"key\":\"$(b64 r)\",\"value\":\"$(b64 before)\"}" >/dev/null
    pid=$(cat "$DIR/$name.pid")
    kill -STOP "$pid"
    # both requests reach the stopped leader's socket, unanswered
    curl -s -w ' %{http_code}' --max-time 10 "$follower/v3/kv/put" \
        -d "{\"key\":\"$(b64 w)\",\"value\":\"$(b64 once)\"}" >"$BATS_TEST_TMPDIR/put" &
    p1=$!
    curl -s -w ' %{http_code}' --max-time 10 "$follower/v3/kv/range" \
        -d "{\"key\":\"$(b64 r)\"}" >"$BATS_TEST_TMPDIR/get" &
    p2=$!
    sleep 0.3
    "$CLUSTER" kill "$DIR" "$name"
    wait "$p1" "$p2"
    run cat "$BATS_TEST_TMPDIR/put"
    assert_output --partial 'etcdserver: leader changed'
    assert_output --partial ' 503'
    # the read was repeated on the new leader
    run cat "$BATS_TEST_TMPDIR/get"
    assert_output --partial "\"value\":\"$(b64 before)\""
    assert_output --partial ' 200'
    # the write of unknown outcome was never applied twice (here: never,
    # the stopped leader did not read it)
    run curl -s "$follower/v3/kv/range" -d "{\"key\":\"$(b64 w)\"}"
    refute_output --partial '"version":"2"'
    "$CLUSTER" restart "$DIR" "$name"
    converge >/dev/null
}
