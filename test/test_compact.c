/* test_compact.c - etcd's auto-compaction policies on a driven clock:
 * periodic mode's first compaction one retention after start at the
 * revision of then, the next ones every retention (at most an hour) at the
 * revision of one retention ago; revision mode; followers and failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "compact/policy.h"
#include "util/error.h"

/* The store's revision at time t (ms): 10 writes per second, from 1. */
static int64_t rev_at(uint64_t t)
{
    return 1 + (int64_t)(t / 100);
}

/* Ticks p from t0 to t1 every tick_ms as leader, compacting (and
 * reporting success) whenever asked; records the compactions. */
static size_t drive(struct ms_compact_policy *p, uint64_t t0, uint64_t t1,
                    int64_t *compacted, uint64_t *when, int64_t *at, size_t max)
{
    size_t n = 0;

    for (uint64_t t = t0 + p->tick_ms; t <= t1; t += p->tick_ms) {
        int64_t r = ms_compact_tick(p, t, rev_at(t), *compacted, true);
        if (r == 0)
            continue;
        assert_true(n < max);
        when[n] = t;
        at[n] = r;
        n++;
        *compacted = r;
        ms_compact_done(p, t, r, true);
    }
    return n;
}

/* Periodic, retention 10 s: looks every second; the first compaction at
 * 10 s is at the revision of the start, then every 10 s at the revision of
 * 10 s before. */
static void test_periodic_short(void **state)
{
    struct ms_compact_policy p;
    int64_t compacted = 0, at[8];
    uint64_t when[8];
    size_t n;

    (void)state;
    assert_int_equal(
        ms_compact_policy_init(&p, MS_COMPACT_PERIODIC, 10000, 0, 0, rev_at(0)),
        0);
    assert_int_equal(p.tick_ms, 1000);
    n = drive(&p, 0, 35000, &compacted, when, at, 8);
    assert_int_equal(n, 3);
    assert_int_equal(when[0], 10000);
    assert_int_equal(at[0], rev_at(0));
    assert_int_equal(when[1], 20000);
    assert_int_equal(at[1], rev_at(10000));
    assert_int_equal(when[2], 30000);
    assert_int_equal(at[2], rev_at(20000));
    ms_compact_policy_free(&p);
}

/* Periodic, retention 3 h: looks every 6 minutes, first compaction after
 * 3 h at the revision of the start, then every hour at the revision of 3 h
 * before. */
static void test_periodic_long(void **state)
{
    struct ms_compact_policy p;
    const uint64_t h = 3600000;
    int64_t compacted = 0, at[8];
    uint64_t when[8];
    size_t n;

    (void)state;
    assert_int_equal(
        ms_compact_policy_init(&p, MS_COMPACT_PERIODIC, 3 * h, 0, 0, rev_at(0)),
        0);
    assert_int_equal(p.tick_ms, 360000);
    n = drive(&p, 0, 5 * h + 1, &compacted, when, at, 8);
    assert_int_equal(n, 3);
    assert_int_equal(when[0], 3 * h);
    assert_int_equal(at[0], rev_at(0));
    assert_int_equal(when[1], 4 * h);
    assert_int_equal(at[1], rev_at(1 * h));
    assert_int_equal(when[2], 5 * h);
    assert_int_equal(at[2], rev_at(2 * h));
    ms_compact_policy_free(&p);
}

/* A follower samples but never compacts; leading later, it compacts at
 * once at the revision of one retention ago. A failed proposal is retried
 * at the next look; one in flight is not proposed twice. */
static void test_periodic_follower_and_failure(void **state)
{
    struct ms_compact_policy p;
    uint64_t t;

    (void)state;
    assert_int_equal(
        ms_compact_policy_init(&p, MS_COMPACT_PERIODIC, 10000, 0, 0, rev_at(0)),
        0);
    for (t = 1000; t <= 15000; t += 1000)
        assert_int_equal(ms_compact_tick(&p, t, rev_at(t), 0, false), 0);
    t = 16000;
    assert_int_equal(ms_compact_tick(&p, t, rev_at(t), 0, true), rev_at(6000));
    t += 1000;
    assert_int_equal(ms_compact_tick(&p, t, rev_at(t), 0, true), 0);
    ms_compact_done(&p, t, rev_at(6000), false);
    t += 1000;
    assert_int_equal(ms_compact_tick(&p, t, rev_at(t), 0, true), rev_at(8000));
    ms_compact_policy_free(&p);
}

/* Revision mode keeps the last N revisions: it compacts at rev - N when
 * that is positive, moved, and above the compact revision. */
static void test_revision_mode(void **state)
{
    struct ms_compact_policy p;

    (void)state;
    assert_int_equal(
        ms_compact_policy_init(&p, MS_COMPACT_REVISION, 100, 0, 0, 1), 0);
    assert_int_equal(p.tick_ms, MS_COMPACT_REVISION_INTERVAL_MS);
    ms_compact_policy_free(&p);
    assert_int_equal(
        ms_compact_policy_init(&p, MS_COMPACT_REVISION, 100, 200, 0, 1), 0);
    assert_int_equal(p.tick_ms, 200);
    assert_int_equal(ms_compact_tick(&p, 200, 50, 0, true), 0);
    assert_int_equal(ms_compact_tick(&p, 400, 150, 0, false), 0);
    assert_int_equal(ms_compact_tick(&p, 600, 150, 0, true), 50);
    assert_int_equal(ms_compact_tick(&p, 800, 160, 0, true), 0); /* busy */
    ms_compact_done(&p, 800, 50, true);
    assert_int_equal(ms_compact_tick(&p, 1000, 150, 50, true), 0);
    assert_int_equal(ms_compact_tick(&p, 1200, 170, 50, true), 70);
    ms_compact_done(&p, 1200, 70, true);
    /* someone compacted further by hand */
    assert_int_equal(ms_compact_tick(&p, 1400, 180, 90, true), 0);
    ms_compact_policy_free(&p);
}

/* A retention of 0 is refused. */
static void test_zero_retention(void **state)
{
    struct ms_compact_policy p;

    (void)state;
    assert_int_equal(
        ms_compact_policy_init(&p, MS_COMPACT_PERIODIC, 0, 0, 0, 1), MS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_periodic_short),
        cmocka_unit_test(test_periodic_long),
        cmocka_unit_test(test_periodic_follower_and_failure),
        cmocka_unit_test(test_revision_mode),
        cmocka_unit_test(test_zero_retention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
