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
    # root-only: member and maintenance calls
    run ectl --user alice:alicepw member add x --peer-urls=http://127.0.0.1:1
    assert_output --partial "etcdserver: permission denied"
    run ectl --user alice:alicepw defrag
    assert_output --partial "etcdserver: permission denied"
    run ectl --user alice:alicepw user list
    assert_output --partial "etcdserver: permission denied"
    run ectl --user alice:alicepw role add x
    assert_output --partial "etcdserver: permission denied"
    run ectl --user alice:alicepw endpoint status
    assert_success
    run ectl --user alice:alicepw member list
    assert_success
    # root may do all of it
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
    start_server n1
    EP=127.0.0.1:$PORT
    setup_auth
    for i in 1 2 3 4 5 6 7 8 9 10; do
        ectl --user alice:wrong get /cfg/a >/dev/null 2>&1 || true
    done
    run grep -c "too many failed authentications from 127.0.0.1" "$LOG"
    assert_success
    # the right password is refused too until the bucket refills
    run ectl --user alice:alicepw get /cfg/a
    assert_failure
    sleep 2.2
    run ectl --user alice:alicepw get /cfg/a
    assert_success
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
    # a client cannot pose as a forwarding member
    run curl -s -X POST -H 'X-Metastore-Forwarded: 1' \
        -H 'X-Metastore-User: root' -H 'X-Metastore-Auth: 00' \
        --data-binary @/dev/null "$leader/internal/op"
    assert_output --partial "etcdserver: invalid auth token"
}
