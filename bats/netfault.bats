#!/usr/bin/env bats
# netfault.bats - network faults under client load, in a network namespace
# of the test's own (tools/netfault): a follower isolated, the leader
# isolated (new leader within two election timeouts, the old one answers
# reads only with etcd errors), a bridge, one-way cuts at the leader, 20%
# loss on every peer link, each healed; then every acknowledged put on
# every member, members identical, none exited by itself. Each firewall
# rule must have dropped packets. Skipped (not passed) where unshare -n or
# nftables are unavailable. MS_NETFAULT_ROUNDS=N repeats each fault N
# times (default 1).

load lib

NETFAULT=$BATS_TEST_DIRNAME/../tools/netfault
ROUNDS=${MS_NETFAULT_ROUNDS:-1}

# netfault ARGS...: runs the tool; skips the test when it says "skipped"
netfault() {
    run "$NETFAULT" run --server "$SERVER" --rounds "$ROUNDS" "$@"
    if [ "$status" -eq 3 ]; then
        skip "$(grep -m1 '^skipped:' <<<"$output" | sed 's/^skipped: //')"
    fi
    echo "$output" | grep -E '^\[|FAIL|passed' | sed 's/^/# /' >&3
    assert_success
    assert_line "run: passed"
}

@test "3 members, --storage memory: isolations, bridge, one-way cuts, 20% loss, heal" {
    netfault --members 3 --storage memory
}

@test "3 members, --storage rocksdb: isolations, bridge, one-way cuts, 20% loss, heal" {
    netfault --members 3 --storage rocksdb
}

@test "5 members: isolations, bridge (2 | 1 | 2), one-way cuts, 20% loss, heal" {
    netfault --members 5 --storage memory
}
