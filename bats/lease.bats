#!/usr/bin/env bats
# lease.bats - leases against a real server: minimum TTL, expiry deletes
# the attached keys (seen by a watcher), keepalive, revoke, timetolive and
# leases shapes, and leases that survive a leader kill in a 3-node cluster.

load lib

CLUSTER=$BATS_TEST_DIRNAME/../tools/cluster

setup() {
    WPIDS=()
}

teardown() {
    local p
    for p in "${WPIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -n "${PID:-}" ] && stop_server "$PID" >/dev/null 2>&1 || true
    if [ -n "${DIR:-}" ]; then "$CLUSTER" stop "$DIR" >/dev/null 2>&1 || true; fi
}

grant() { # URL TTL [ID]: prints the lease id
    curl -s -f "$1/v3/lease/grant" -d "{\"TTL\":$2${3:+,\"ID\":$3}}" | json_get '["ID"]'
}

put_lease() { # URL KEY LEASE
    curl -s -f -X PUT --data-binary v "$1/kv/$2?lease=$3" >/dev/null
}

exists() { # URL KEY: status 0 when the key exists (local read)
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1/kv/$2?consistency=serializable")" = 200 ]
}

# wait_gone URL KEY SECONDS: waits until KEY is gone; prints the wait in ms
wait_gone() {
    local start=$(date +%s%N) i
    for i in $(seq 1 $(($3 * 20))); do
        if ! exists "$1" "$2"; then
            echo $(( ($(date +%s%N) - start) / 1000000 ))
            return 0
        fi
        sleep 0.05
    done
    return 1
}

@test "grant: the minimum TTL is 2 s; an ID chosen by the server" {
    start_server l
    run curl -s "$URL/v3/lease/grant" -d '{"TTL":1}'
    assert_output --regexp '"ID":"[0-9]+","TTL":"2"\}$'
    run curl -s "$URL/v3/lease/grant" -d '{"TTL":30,"ID":"42"}'
    assert_output --regexp '"ID":"42","TTL":"30"\}$'
}

@test "a lease with TTL 2 s expires: its keys are deleted and a watcher sees the deletes" {
    start_server l
    id=$(grant "$URL" 2)
    put_lease "$URL" e/a "$id"
    put_lease "$URL" e/b "$id"
    curl -s -N --max-time 30 "$URL/v3/watch" -d "{\"create_request\":{\"key\":\"$(b64 e/)\",\"range_end\":\"$(b64 e0)\"}}" >"$BATS_TEST_TMPDIR/out" &
    WPIDS+=($!)
    start=$(date +%s%N)
    ms=$(wait_gone "$URL" e/a 6)
    elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
    echo "keys gone after $elapsed ms" >&3
    [ "$elapsed" -ge 1000 ]  # not early (the grant was at most ~1 s before)
    ! exists "$URL" e/b
    for i in $(seq 1 40); do
        [ "$(wc -l <"$BATS_TEST_TMPDIR/out")" -ge 2 ] && break
        sleep 0.05
    done
    run python3 -c "
import json, base64
for l in open('$BATS_TEST_TMPDIR/out'):
    for e in json.loads(l)['result'].get('events', []):
        print(e.get('type'), base64.b64decode(e['kv']['key']).decode())"
    assert_output "DELETE e/a
DELETE e/b"
    run curl -s "$URL/v3/lease/timetolive" -d "{\"ID\":\"$id\"}"
    assert_output --regexp "\"ID\":\"$id\",\"TTL\":\"-1\"\}$"
    run curl -s "$URL/metrics"
    assert_output --partial "metastore_lease_expired_total 1"
}

@test "keepalive keeps keys alive beyond the TTL; an unknown lease gets no TTL" {
    start_server l
    id=$(grant "$URL" 2)
    put_lease "$URL" k/a "$id"
    for i in $(seq 1 8); do   # 4 s: twice the TTL
        run curl -s -f "$URL/v3/lease/keepalive" -d "{\"ID\":\"$id\"}"
        assert_output --regexp "^\{\"result\":\{\"header\":\{.*\},\"ID\":\"$id\",\"TTL\":\"2\"\}\}$"
        sleep 0.5
    done
    exists "$URL" k/a
    # several messages in one body, each answered; unknown: TTL omitted
    run curl -s "$URL/v3/kv/lease/keepalive" -d "{\"ID\":$id} {\"ID\":\"999\"}"
    assert_line --index 0 --regexp "\"ID\":\"$id\",\"TTL\":\"2\"\}\}$"
    assert_line --index 1 --regexp '"ID":"999"\}\}$'
    run curl -s -w ' %{http_code}' "$URL/v3/lease/keepalive" -d '{bad'
    assert_output --regexp '"code":2\} 500$'
    wait_gone "$URL" k/a 6 >/dev/null
}

@test "revoke deletes the attached keys at once" {
    start_server l
    id=$(grant "$URL" 60)
    put_lease "$URL" r/a "$id"
    put_lease "$URL" r/b "$id"
    run curl -s "$URL/v3/lease/revoke" -d "{\"ID\":\"$id\"}"
    assert_output --regexp '^\{"header":\{.*\}\}$'
    ! exists "$URL" r/a
    ! exists "$URL" r/b
    run curl -s -w ' %{http_code}' "$URL/v3/lease/revoke" -d "{\"ID\":\"$id\"}"
    assert_output --regexp 'requested lease not found.*"code":5\} 404$'
}

@test "timetolive with keys, leases, and the /v3/kv/lease aliases" {
    start_server l
    grant "$URL" 30 1234 >/dev/null
    put_lease "$URL" t/1 1234
    put_lease "$URL" t/2 1234
    run curl -s "$URL/v3/lease/timetolive" -d '{"ID":1234,"keys":true}'
    assert_output --regexp '"ID":"1234","TTL":"(29|30)","grantedTTL":"30","keys":\["dC8x","dC8y"\]\}$'
    run curl -s "$URL/v3/kv/lease/timetolive" -d '{"ID":"1234"}'
    assert_output --regexp '"ID":"1234","TTL":"(29|30)","grantedTTL":"30"\}$'
    run curl -s "$URL/v3/lease/timetolive" -d '{"ID":999}'
    assert_output --regexp '"ID":"999","TTL":"-1"\}$'
    run curl -s "$URL/v3/lease/leases" -d '{}'
    assert_output --regexp '"leases":\[\{"ID":"1234"\}\]\}$'
    run curl -s "$URL/v3/kv/lease/leases"  -d ''
    assert_output --regexp '"leases":\[\{"ID":"1234"\}\]\}$'
    run curl -s -o /dev/null -w '%{http_code}' "$URL/v3/lease/leases"
    assert_output 405
}

@test "3-node cluster: leases survive a leader kill (renewed, never expired early), then expire" {
    DIR=$BATS_TEST_TMPDIR/c
    export MS_BUILD
    "$CLUSTER" start "$DIR" -n 3 -- --heartbeat-interval 50 --election-timeout 500
    IFS=, read -r U1 U2 U3 <<<"$("$CLUSTER" urls "$DIR")"
    lid=$(curl -s -X POST "$U1/v3/maintenance/status" | json_get '["leader"]')
    leader= followers=()
    for u in "$U1" "$U2" "$U3"; do
        me=$(curl -s -X POST "$u/v3/maintenance/status" | json_get '["header"]["member_id"]')
        if [ "$me" = "$lid" ]; then leader=$u; else followers+=("$u"); fi
    done
    f=${followers[0]}
    # granted through a follower (forwarded), keepalive and timetolive too
    id=$(grant "$f" 4)
    put_lease "$f" s/a "$id"
    run curl -s "$f/v3/lease/keepalive" -d "{\"ID\":\"$id\"}"
    assert_output --regexp "\"TTL\":\"4\"\}\}$"
    granted=$(date +%s%N)
    sleep 1.5
    name=$(basename "$(grep -l "serving clients on $leader" "$DIR"/n*.log)" .log)
    "$CLUSTER" kill "$DIR" "$name"
    # the original deadline passes; the new leader gave a full TTL
    while [ $(( ($(date +%s%N) - granted) / 1000000 )) -lt 4500 ]; do sleep 0.1; done
    exists "$f" s/a
    run curl -s "$f/v3/lease/timetolive" -d "{\"ID\":\"$id\"}"
    assert_output --regexp "\"grantedTTL\":\"4\"\}$"
    refute_output --partial '"TTL":"-1"'
    ms=$(wait_gone "$f" s/a 10)
    echo "expired $(( ($(date +%s%N) - granted) / 1000000 )) ms after the grant" >&3
    ! exists "${followers[1]}" s/a || { sleep 1; ! exists "${followers[1]}" s/a; }
}
