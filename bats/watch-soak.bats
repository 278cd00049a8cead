#!/usr/bin/env bats
# watch-soak.bats - a bounded soak through tools/watch-soak: many watchers
# on one server while clients write; every watcher receives every matching
# event once and in order; a stalled watcher is canceled and the server's
# memory stays bounded. (The large run, 1,000 watchers and 10,000 puts,
# is recorded in bench/RESULTS.md "## Watch".)

load lib

SOAK=$BATS_TEST_DIRNAME/../tools/watch-soak

teardown() {
    [ -n "${PID:-}" ] && stop_server "$PID" >/dev/null 2>&1 || true
}

@test "soak: 100 watchers, 2,000 puts, a stalled watcher: every event once and in order" {
    start_server soak
    run "$SOAK" --url "$URL" --watchers 100 --puts 2000 --writers 4 \
        --value-size 6000 --stalled 1 --pid "$PID" --timeout 120 --json
    echo "$output" >&3
    assert_success
    run python3 -c "
import json, sys
r = json.loads('''$output''')
print(r['watchers_failed'], r['stalled_canceled'], r['events_delivered'] > 0, r['rss_max_mib'] - r['rss_start_mib'] < 150)"
    assert_output "0 1 True True"
}
