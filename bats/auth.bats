#!/usr/bin/env bats
# auth.bats - etcd 3.4 auth through the real client (etcdctl 3.4): users,
# roles, range permissions, auth enable/disable, tokens; the matrix user x
# key range x operation with etcd's exact error texts; root-only member and
# maintenance calls; token invalidation; secrets absent from the log; the
# auth state replicated in a 3-member cluster.

load lib

CLUSTER=$BATS_TEST_DIRNAME/../tools/cluster
TIMING=(--heartbeat-interval 50 --election-timeout 500)

setup() {
    command -v etcdctl >/dev/null || skip "etcdctl (etcd-client) not installed"
    export ETCDCTL_API=3
}

teardown() {
    [ -n "${PID:-}" ] && stop_server "$PID" >/dev/null 2>&1 || true
    if [ -n "${DIR:-}" ]; then "$CLUSTER" stop "$DIR" >/dev/null 2>&1 || true; fi
}

ectl() { # etcdctl against $EP
    etcdctl --endpoints="$EP" --command-timeout=10s "$@"
}

# root (role root), alice (role cfg: readwrite [/cfg/, /cfg0), read /ro),
# then auth enable
setup_auth() {
    run ectl user add root:rootpw
    assert_success
    assert_output "User root created"
    run ectl user add alice:alicepw
    assert_success
    run ectl role add cfg
    assert_success
    assert_output "Role cfg created"
    run ectl role grant-permission cfg readwrite /cfg/ --prefix=true
    assert_success
    run ectl role grant-permission cfg read /ro
    assert_success
    run ectl user grant-role alice cfg
    assert_success
    assert_output "Role cfg is granted to user alice"
    run ectl auth enable
    assert_success
    assert_line "Authentication Enabled"
}

@test "auth service works while auth is off; --user is ignored then" {
    start_server n1
    EP=127.0.0.1:$PORT
    run ectl user add bob:pw
    assert_success
    run ectl user list
    assert_output bob
    run ectl role add r1
    run ectl role get r1
    assert_success
    assert_output --partial "Role r1"
    run ectl user add bob:pw
    assert_failure
    assert_output --partial "etcdserver: user name already exists"
    run ectl user grant-role bob nope
    assert_output --partial "etcdserver: role name not found"
    # Authenticate answers "authentication is not enabled", which clientv3
    # ignores, as against etcd
    run ectl --user bob:pw get foo
    assert_success
    run grep -c "etcdserver: authentication is not enabled" "$LOG"
    assert_output 0
    run ectl auth enable
    assert_failure
    assert_output --partial "etcdserver: root user does not exist"
}

@test "matrix: alice reads and writes inside her ranges only; root everything" {
    start_server n1
    EP=127.0.0.1:$PORT
    ectl put /other x
    setup_auth
    # no user at all
    run ectl get /cfg/a
    assert_failure
    assert_output --partial "etcdserver: user name is empty"
    # wrong password
    run ectl --user alice:nope get /cfg/a
    assert_failure
    assert_output --partial "etcdserver: authentication failed, invalid user ID or password"
    # inside: put, get, get --prefix, del
    run ectl --user alice:alicepw put /cfg/a 1
    assert_success
    assert_output OK
    run ectl --user alice:alicepw get /cfg/a --print-value-only
    assert_output 1
    run ectl --user alice:alicepw get /cfg/ --prefix --keys-only
    assert_success
    assert_output --partial /cfg/a
    run ectl --user alice:alicepw get /ro
    assert_success
    # outside: another key, a wider range, write on read-only
    for args in "get /other" "put /other y" "del /other" "get /cfg --prefix" \
        "get / --prefix" "put /ro x" "del /cfg/ --from-key"; do
        run ectl --user alice:alicepw $args
        assert_failure
        assert_output --partial "etcdserver: permission denied"
    done
    # txn: a compare outside the range is refused
    run ectl --user alice:alicepw txn <<<$'value("/other") = "x"\n\nput /cfg/b 2\n\n'
    assert_failure
    assert_output --partial "etcdserver: permission denied"
    # txn: a put outside the range in either branch is refused
    run ectl --user alice:alicepw txn <<<$'value("/cfg/a") = "1"\n\nput /other z\n\nput /cfg/b 2\n'
    assert_failure
    assert_output --partial "etcdserver: permission denied"
    run ectl --user alice:alicepw txn <<<$'value("/cfg/a") = "1"\n\nput /cfg/b 2\n\n'
    assert_success
    # leases: anyone may grant; revoking needs write on the lease's keys
    run ectl --user alice:alicepw lease grant 60
    assert_success
    local lid
    lid=$(echo "$output" | awk '/granted/ {print $2}')
    run ectl --user alice:alicepw put /cfg/l v --lease="$lid"
    assert_success
    run ectl --user root:rootpw put /other y --lease="$lid"
    assert_success
    run ectl --user alice:alicepw lease revoke "$lid"
    assert_output --partial "etcdserver: permission denied"
    run ectl --user root:rootpw lease revoke "$lid"
    assert_success
    # root-only: member and maintenance calls
    run ectl --user alice:alicepw member add x --peer-urls=http://127.0.0.1:1
    assert_output --partial "etcdserver: permission denied"
    run ectl --user alice:alicepw defrag
    assert_output --partial "etcdserver: permission denied"
    run ectl --user alice:alicepw user list
    assert_output --partial "etcdserver: permission denied"
    run ectl --user alice:alicepw role add x
    assert_output --partial "etcdserver: permission denied"
    # a user may read their own entry and roles, not others'
    run ectl --user alice:alicepw user get alice
    assert_success
    assert_output --partial "Roles: cfg"
    run ectl --user alice:alicepw role get cfg
    assert_success
    run ectl --user alice:alicepw user get root
    assert_output --partial "etcdserver: permission denied"
    run ectl --user alice:alicepw role get root
    assert_output --partial "etcdserver: permission denied"
    run ectl --user alice:alicepw endpoint status
    assert_success
    run ectl --user alice:alicepw member list
    assert_success
    # root may do all of it
    run ectl --user root:rootpw put /other x
    run ectl --user root:rootpw get /other --print-value-only
    assert_output x
    run ectl --user root:rootpw user list
    assert_success
    assert_output --partial alice
    run ectl --user root:rootpw defrag
    assert_success
    # guarded root
    run ectl --user root:rootpw user delete root
    assert_output --partial "etcdserver: invalid auth management"
    run ectl --user root:rootpw user revoke-role root root
    assert_output --partial "etcdserver: invalid auth management"
    # disable: everything open again
    run ectl --user root:rootpw auth disable
    assert_success
    assert_output "Authentication Disabled"
    run ectl get /other --print-value-only
    assert_output x
}

@test "watch outside the user's range is refused; inside it streams" {
    start_server n1
    EP=127.0.0.1:$PORT
    setup_auth
    run timeout 3 etcdctl --endpoints="$EP" --user alice:alicepw watch /other
    assert_output --partial "permission denied"
    timeout 5 etcdctl --endpoints="$EP" --user alice:alicepw watch /cfg/w \
        >"$BATS_TEST_TMPDIR/w.out" 2>&1 3>&- &
    local wpid=$!
    sleep 1
    ectl --user alice:alicepw put /cfg/w v1
    sleep 0.5
    run cat "$BATS_TEST_TMPDIR/w.out"
    assert_output --partial v1
    kill "$wpid" 2>/dev/null || true
}

@test "revoking a role applies at once; changepw and user delete invalidate" {
    start_server n1
    EP=127.0.0.1:$PORT
    setup_auth
    run ectl --user alice:alicepw put /cfg/a 1
    assert_success
    run ectl --user root:rootpw user revoke-role alice cfg
    assert_success
    run ectl --user alice:alicepw put /cfg/a 1
    assert_output --partial "etcdserver: permission denied"
    run ectl --user root:rootpw user grant-role alice cfg
    run ectl --user root:rootpw user passwd alice --interactive=false <<<"newpw"
    assert_success
    run ectl --user alice:alicepw get /cfg/a
    assert_output --partial "etcdserver: authentication failed, invalid user ID or password"
    run ectl --user alice:newpw get /cfg/a --print-value-only
    assert_success
    assert_output 1
    run ectl --user root:rootpw user delete alice
    assert_success
    run ectl --user alice:newpw get /cfg/a
    assert_output --partial "etcdserver: authentication failed, invalid user ID or password"
}

@test "passwords, hashes and tokens never appear in the log" {
    start_server n1 --log-level debug
    EP=127.0.0.1:$PORT
    setup_auth
    ectl --user alice:alicepw put /cfg/a 1
    ectl --user alice:wrong get /cfg/a || true
    run grep -c "authentication of user 'alice' failed" "$LOG"
    assert_output 1
    run grep -E "rootpw|alicepw|pbkdf2" "$LOG"
    assert_failure
}

@test "failed authentications are rate-limited per client" {
    # a long refill, so a slow machine (sanitizers, parallel jobs) cannot
    # refill the bucket between the failures and the check
    start_server n1 --auth-fail-interval 4000
    EP=127.0.0.1:$PORT
    setup_auth
    local i
    for i in 1 2 3 4 5 6; do
        ectl --user alice:wrong get /cfg/a >/dev/null 2>&1 || true
    done
    run grep -c "authentication of user 'alice' failed" "$LOG"
    assert_output 5
    run grep -c "too many failed authentications from 127.0.0.1" "$LOG"
    assert_output 1
    # the right password is refused too until the bucket refills
    run ectl --user alice:alicepw get /cfg/a
    assert_failure
    assert_output --partial "authentication failed, invalid user ID or password"
    run grep -c "too many failed authentications from 127.0.0.1" "$LOG"
    assert_output 2
    sleep 4.2
    run ectl --user alice:alicepw get /cfg/a
    assert_success
}

@test "--auth-fail-interval: a bad value is a usage error" {
    run "$SERVER" --auth-fail-interval 0
    assert_failure 2
    assert_output --partial "--auth-fail-interval: '0': expected milliseconds"
}

@test "3 members: auth set up through a follower, authenticate on each, writes forwarded" {
    DIR=$BATS_TEST_TMPDIR/c
    "$CLUSTER" start "$DIR" -n 3 -- "${TIMING[@]}" >/dev/null
    IFS=, read -r U1 U2 U3 <<<"$("$CLUSTER" urls "$DIR")"
    local leader follower u st
    for u in "$U1" "$U2" "$U3"; do
        st=$(etcdctl --endpoints="${u#http://}" endpoint status)
        if echo "$st" | grep -q ', true, false,'; then leader=$u; else follower=$u; fi
    done
    EP=${follower#http://}
    setup_auth
    sleep 0.5 # the third member applies the enable (as with etcd)
    for u in "$U1" "$U2" "$U3"; do
        EP=${u#http://}
        run ectl --user alice:alicepw put /cfg/k "$u"
        assert_success
        run ectl --user alice:alicepw get /cfg/k --print-value-only
        assert_output "$u"
        run ectl --user alice:alicepw put /other x
        assert_output --partial "etcdserver: permission denied"
        run ectl --user alice:alicepw get /cfg/k --consistency=s --print-value-only
        assert_output "$u"
    done
    # a change through a follower reaches every member
    EP=${follower#http://}
    run ectl --user root:rootpw user revoke-role alice cfg
    assert_success
    sleep 0.3
    for u in "$U1" "$U2" "$U3"; do
        EP=${u#http://}
        run ectl --user alice:alicepw get /cfg/k --consistency=s
        assert_output --partial "etcdserver: permission denied"
    done
    # a password change through a follower (hashed there; only the hash
    # goes to the leader) holds on every member
    EP=${follower#http://}
    run ectl --user root:rootpw user grant-role alice cfg
    run ectl --user root:rootpw user passwd alice --interactive=false <<<"pw2"
    assert_success
    sleep 0.3
    for u in "$U1" "$U2" "$U3"; do
        EP=${u#http://}
        run ectl --user alice:pw2 get /cfg/k --consistency=s --print-value-only
        assert_success
        run ectl --user alice:alicepw get /cfg/k --consistency=s
        assert_output --partial "etcdserver: authentication failed, invalid user ID or password"
    done
    # a client cannot pose as a forwarding member
    run curl -s -X POST -H 'X-Metastore-Forwarded: 1' \
        -H 'X-Metastore-User: root' -H 'X-Metastore-Auth: 00' \
        -d '{"op":"auth_disable"}' "$leader/internal/auth"
    assert_output --partial "etcdserver: invalid auth token"
    run curl -s -X POST -H 'X-Metastore-Forwarded: 1' \
        -d '{"op":"auth_disable"}' "$leader/internal/auth"
    assert_output --partial "etcdserver: user name is empty"
    run curl -s -X POST -H 'X-Metastore-Forwarded: 1' \
        -H 'X-Metastore-User: root' -H 'X-Metastore-Auth: 00' \
        --data-binary @/dev/null "$leader/internal/op"
    assert_output --partial "etcdserver: invalid auth token"
}

@test "gateway: /v3/auth/* with curl, the token in Authorization; REST too" {
    start_server n1
    EP=127.0.0.1:$PORT
    local body
    # authenticate while auth is off: 412
    run curl -s -w ' %{http_code}' -X POST "$URL/v3/auth/authenticate" -d '{"name":"root","password":"x"}'
    assert_output '{"error":"etcdserver: authentication is not enabled","message":"etcdserver: authentication is not enabled","code":9} 412'
    run curl -s -X POST "$URL/v3/auth/user/add" -d '{"name":"root","password":"rootpw"}'
    assert_success
    assert_output --partial '"header"'
    curl -s -X POST "$URL/v3/auth/user/grant" -d '{"user":"root","role":"root"}'
    curl -s -X POST "$URL/v3/auth/user/add" -d '{"name":"alice","password":"alicepw"}'
    curl -s -X POST "$URL/v3/auth/role/add" -d '{"name":"cfg"}'
    # readwrite [/cfg/, /cfg0)
    curl -s -X POST "$URL/v3/auth/role/grant" \
        -d "{\"name\":\"cfg\",\"perm\":{\"permType\":\"READWRITE\",\"key\":\"$(b64 /cfg/)\",\"range_end\":\"$(b64 /cfg0)\"}}"
    # REST keys have no leading slash: readwrite [rest/, rest0) for them
    curl -s -X POST "$URL/v3/auth/role/grant" \
        -d "{\"name\":\"cfg\",\"perm\":{\"permType\":2,\"key\":\"$(b64 rest/)\",\"range_end\":\"$(b64 rest0)\"}}"
    curl -s -X POST "$URL/v3/auth/user/grant" -d '{"user":"alice","role":"cfg"}'
    run curl -s -X POST "$URL/v3/auth/role/get" -d '{"role":"cfg"}'
    assert_output --partial "\"perm\":[{\"permType\":\"READWRITE\",\"key\":\"$(b64 /cfg/)\",\"range_end\":\"$(b64 /cfg0)\"},"
    run curl -s -X POST "$URL/v3/auth/user/list" -d '{}'
    assert_output --partial '"users":["alice","root"]'
    run curl -s -X POST "$URL/v3/auth/enable" -d '{}'
    assert_success
    # wrong password, empty body: 400 code 3
    run curl -s -w ' %{http_code}' -X POST "$URL/v3/auth/authenticate" -d '{"name":"alice","password":"no"}'
    assert_output '{"error":"etcdserver: authentication failed, invalid user ID or password","message":"etcdserver: authentication failed, invalid user ID or password","code":3} 400'
    run curl -s -w ' %{http_code}' -X POST "$URL/v3/auth/authenticate"
    assert_output --partial '"code":3} 400'
    body=$(curl -s -X POST "$URL/v3/auth/authenticate" -d '{"name":"alice","password":"alicepw"}')
    tok=$(echo "$body" | json_get '["token"]')
    [ -n "$tok" ]
    # no token: 400 user name is empty
    run curl -s -w ' %{http_code}' -X POST "$URL/v3/kv/put" -d "{\"key\":\"$(b64 /cfg/a)\",\"value\":\"$(b64 1)\"}"
    assert_output '{"error":"etcdserver: user name is empty","message":"etcdserver: user name is empty","code":3} 400'
    # inside: 200; outside: 403
    run curl -s -w ' %{http_code}' -H "Authorization: $tok" -X POST "$URL/v3/kv/put" -d "{\"key\":\"$(b64 /cfg/a)\",\"value\":\"$(b64 1)\"}"
    assert_output --partial '} 200'
    run curl -s -w ' %{http_code}' -H "Authorization: $tok" -X POST "$URL/v3/kv/range" -d "{\"key\":\"$(b64 /other)\"}"
    assert_output '{"error":"etcdserver: permission denied","message":"etcdserver: permission denied","code":7} 403'
    # bad token, Bearer: 401 code 16
    run curl -s -w ' %{http_code}' -H "Authorization: Bearer $tok" -X POST "$URL/v3/kv/range" -d "{\"key\":\"$(b64 /cfg/a)\"}"
    assert_output '{"error":"etcdserver: invalid auth token","message":"etcdserver: invalid auth token","code":16} 401'
    # REST with the same header
    run curl -s -w ' %{http_code}' -H "Authorization: $tok" -X PUT "$URL/kv/rest/a" -d v
    assert_output --partial ' 200'
    run curl -s -w ' %{http_code}' -H "Authorization: $tok" "$URL/kv/rest/a"
    assert_output --partial ' 200'
    assert_output --partial v
    run curl -s -w ' %{http_code}' -H "Authorization: $tok" -X PUT "$URL/kv/other" -d x
    assert_output --partial ' 403'
    run curl -s -w ' %{http_code}' -X PUT "$URL/kv/other" -d x
    assert_output --partial ' 400'
    # gateway watch outside the range: created and canceled
    run curl -s --max-time 2 -H "Authorization: $tok" -X POST "$URL/v3/watch" \
        -d "{\"create_request\":{\"key\":\"$(b64 /other)\"}}"
    assert_output --partial '"created":true'
    assert_output --partial '"canceled":true'
    assert_output --partial 'rpc error: code = PermissionDenied desc = etcdserver: permission denied'
    # a non-root token cannot manage auth; /v3/auth/status is 404 as 3.4
    run curl -s -w ' %{http_code}' -H "Authorization: $tok" -X POST "$URL/v3/auth/user/list" -d '{}'
    assert_output --partial '"code":7} 403'
    run curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/v3/auth/status" -d '{}'
    assert_output 404
    # gateway member calls are root's too; member list is anyone's
    run curl -s -w ' %{http_code}' -H "Authorization: $tok" -X POST "$URL/v3/cluster/member/add" -d '{"peerURLs":["http://127.0.0.1:1"]}'
    assert_output '{"error":"etcdserver: permission denied","message":"etcdserver: permission denied","code":7} 403'
    run curl -s -w ' %{http_code}' -X POST "$URL/v3/cluster/member/remove" -d '{"ID":"1"}'
    assert_output --partial '"code":3} 400'
    run curl -s -w ' %{http_code}' -H "Authorization: $tok" -X POST "$URL/v3/cluster/member/list" -d '{}'
    assert_output --partial ' 200'
    # changepw invalidates the token: 401
    rt=$(curl -s -X POST "$URL/v3/auth/authenticate" -d '{"name":"root","password":"rootpw"}' | json_get '["token"]')
    run curl -s -H "Authorization: $rt" -X POST "$URL/v3/auth/user/changepw" -d '{"name":"alice","password":"new"}'
    assert_output --partial '"header"'
    run curl -s -w ' %{http_code}' -H "Authorization: $tok" -X POST "$URL/v3/kv/range" -d "{\"key\":\"$(b64 /cfg/a)\"}"
    assert_output --partial '"code":16} 401'
    run grep -c -- "$tok" "$LOG"
    assert_output 0
}

@test "--auth-token-ttl: a simple token expires after its last use (401)" {
    start_server n1 --auth-token-ttl 1
    EP=127.0.0.1:$PORT
    setup_auth
    local tok
    tok=$(curl -s -X POST "$URL/v3/auth/authenticate" -d '{"name":"alice","password":"alicepw"}' | json_get '["token"]')
    run curl -s -w ' %{http_code}' -H "Authorization: $tok" -X POST "$URL/v3/kv/range" -d "{\"key\":\"$(b64 /cfg/a)\"}"
    assert_output --partial ' 200'
    sleep 0.6
    run curl -s -w ' %{http_code}' -H "Authorization: $tok" -X POST "$URL/v3/kv/range" -d "{\"key\":\"$(b64 /cfg/a)\"}"
    assert_output --partial ' 200'
    sleep 1.3
    run curl -s -w ' %{http_code}' -H "Authorization: $tok" -X POST "$URL/v3/kv/range" -d "{\"key\":\"$(b64 /cfg/a)\"}"
    assert_output '{"error":"etcdserver: invalid auth token","message":"etcdserver: invalid auth token","code":16} 401'
    run "$SERVER" --auth-token-ttl 0
    assert_failure 2
    assert_output --partial "--auth-token-ttl: '0'"
}

@test "auth state survives a restart, through a snapshot, in both storage modes" {
    local storage
    for storage in memory rocksdb; do
        PORT=$(free_port)
        start_server "r-$storage" --storage "$storage" --snapshot-count 5 --snapshot-log-percent 0
        EP=127.0.0.1:$PORT
        setup_auth
        for i in 1 2 3 4 5 6 7 8; do ectl --user root:rootpw put "/cfg/$i" x >/dev/null; done
        # one more change after the snapshot, replayed from the log
        run ectl --user root:rootpw role grant-permission cfg read /late
        assert_success
        stop_server "$PID"
        start_server "r-$storage" --storage "$storage" --snapshot-count 5 --snapshot-log-percent 0
        run ectl get /cfg/1
        assert_output --partial "etcdserver: user name is empty"
        run ectl --user alice:alicepw get /cfg/1 --print-value-only
        assert_output x
        run ectl --user alice:alicepw get /late
        assert_success
        run ectl --user alice:alicepw get /other
        assert_output --partial "etcdserver: permission denied"
        stop_server "$PID"
        unset PORT
    done
    grep -q "restored snapshot" "$BATS_TEST_TMPDIR"/r-memory.log
}
