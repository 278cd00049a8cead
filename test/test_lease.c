/* test_lease.c - the leader's lessor on a driven clock: expiry exactly at
 * the deadline, one revocation per expiry, keepalive, fresh TTLs on
 * promotion, demotion, failed revocations retried, remaining TTL. */
#include "lease/lessor.h"
#include "store_fixture.h"

struct clock_env {
    uint64_t now;
    int64_t revoked[2048];
    size_t n_revoked;
    int fail; /* revoke hook returns this */
};

static uint64_t fake_now(void *data)
{
    return ((struct clock_env *)data)->now;
}

static int fake_revoke(void *data, int64_t id)
{
    struct clock_env *c = data;

    if (c->fail)
        return c->fail;
    assert_true(c->n_revoked < 2048);
    c->revoked[c->n_revoked++] = id;
    return 0;
}

static void lessor_new(struct ms_lessor *l, struct clock_env *c)
{
    struct ms_lessor_hooks h = {c, fake_now, fake_revoke};
    ms_lessor_init(l, &h);
}

static void promote(struct ms_lessor *l, struct fx *f)
{
    char err[MS_ERRMSG_SIZE];
    assert_int_equal(ms_lessor_promote(l, f->s, err, sizeof(err)), 0);
}

/* A lease expires at grant + TTL, not a millisecond before; the expiry is
 * proposed once even while the revocation is in flight. */
static void test_expiry_at_deadline(void **state)
{
    FX(state);
    struct clock_env c = {.now = 1000};
    struct ms_lessor l;
    int64_t ttl;

    lessor_new(&l, &c);
    promote(&l, f);
    assert_int_equal(ms_lessor_granted(&l, 7, 2), 0);
    c.now = 2999;
    assert_int_equal(ms_lessor_expire(&l, 100), 0);
    assert_int_equal(ms_lessor_renew(&l, 7, &ttl), 0); /* still alive */
    c.now = 2999 + 2000;
    assert_int_equal(ms_lessor_expire(&l, 100), 1);
    assert_int_equal(c.revoked[0], 7);
    assert_int_equal(ms_lessor_expire(&l, 100), 0); /* in flight */
    assert_int_equal(ms_lessor_renew(&l, 7, &ttl), MS_ELEASE);
    ms_lessor_revoked(&l, 7); /* the revocation applied */
    ms_lessor_revoke_done(&l, 7, 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(l.stats.expired_total, 1);
    ms_lessor_free(&l);
}

/* A keepalive restarts the full TTL. */
static void test_keepalive(void **state)
{
    FX(state);
    struct clock_env c = {.now = 0};
    struct ms_lessor l;
    int64_t ttl = 0;

    lessor_new(&l, &c);
    promote(&l, f);
    ms_lessor_granted(&l, 1, 3);
    for (int i = 0; i < 10; i++) {
        c.now += 2500;
        assert_int_equal(ms_lessor_expire(&l, 100), 0);
        assert_int_equal(ms_lessor_renew(&l, 1, &ttl), 0);
        assert_int_equal(ttl, 3);
    }
    c.now += 2999;
    assert_int_equal(ms_lessor_expire(&l, 100), 0);
    c.now += 1;
    assert_int_equal(ms_lessor_expire(&l, 100), 1);
    assert_int_equal(ms_lessor_renew(&l, 99, &ttl), MS_ELEASE);
    ms_lessor_free(&l);
}

/* Promotion gives every lease in the store a full TTL from now (never an
 * early expiry after a leader change); demotion forgets deadlines and
 * makes keepalive answer "not leader". */
static void test_promote_demote(void **state)
{
    FX(state);
    struct clock_env c = {.now = 500};
    struct ms_lessor l;
    int64_t ttl, left, granted;

    fx_apply(f, op_grant(11, 5));
    fx_apply(f, op_grant(12, 60));
    lessor_new(&l, &c);
    /* a follower: grants are ignored, nothing expires */
    assert_int_equal(ms_lessor_granted(&l, 11, 5), 0);
    c.now = 100000;
    assert_int_equal(ms_lessor_expire(&l, 100), 0);
    assert_int_equal(ms_lessor_renew(&l, 11, &ttl), MS_ENOTLEADER);
    promote(&l, f);
    assert_int_equal(l.n, 2);
    assert_int_equal(ms_lessor_remaining(&l, 11, &left, &granted), 0);
    assert_int_equal(left, 5);
    assert_int_equal(granted, 5);
    c.now += 4999;
    assert_int_equal(ms_lessor_expire(&l, 100), 0);
    ms_lessor_demote(&l);
    c.now += 10000;
    assert_int_equal(ms_lessor_expire(&l, 100), 0);
    assert_int_equal(ms_lessor_remaining(&l, 11, &left, &granted),
                     MS_ENOTLEADER);
    promote(&l, f); /* leads again: a fresh full TTL */
    c.now += 4999;
    assert_int_equal(ms_lessor_expire(&l, 100), 0);
    c.now += 1;
    assert_int_equal(ms_lessor_expire(&l, 100), 1);
    assert_int_equal(c.revoked[0], 11);
    ms_lessor_free(&l);
}

/* A revocation that cannot be proposed, or fails, is retried after
 * MS_LESSOR_RETRY_MS. */
static void test_revoke_retry(void **state)
{
    FX(state);
    struct clock_env c = {.now = 0};
    struct ms_lessor l;

    lessor_new(&l, &c);
    promote(&l, f);
    ms_lessor_granted(&l, 3, 2);
    c.now = 2000;
    c.fail = MS_ESHUTDOWN;
    assert_int_equal(ms_lessor_expire(&l, 100), 0);
    c.fail = 0;
    c.now += MS_LESSOR_RETRY_MS - 1;
    assert_int_equal(ms_lessor_expire(&l, 100), 0);
    c.now += 1;
    assert_int_equal(ms_lessor_expire(&l, 100), 1);
    ms_lessor_revoke_done(&l, 3, MS_ENOTLEADER); /* the proposal failed */
    assert_int_equal(ms_lessor_expire(&l, 100), 0);
    c.now += MS_LESSOR_RETRY_MS;
    assert_int_equal(ms_lessor_expire(&l, 100), 1);
    assert_int_equal(c.n_revoked, 2);
    assert_int_equal(l.stats.revoke_failed_total, 2);
    ms_lessor_free(&l);
}

/* Remaining TTL is truncated to whole seconds, as etcd reports it; a lease
 * past its deadline reads as gone. */
static void test_remaining(void **state)
{
    FX(state);
    struct clock_env c = {.now = 0};
    struct ms_lessor l;
    int64_t left, granted;

    lessor_new(&l, &c);
    promote(&l, f);
    ms_lessor_granted(&l, 5, 30);
    c.now = 1;
    assert_int_equal(ms_lessor_remaining(&l, 5, &left, &granted), 0);
    assert_int_equal(left, 29);
    assert_int_equal(granted, 30);
    c.now = 30000;
    assert_int_equal(ms_lessor_remaining(&l, 5, &left, &granted), MS_ELEASE);
    ms_lessor_free(&l);
}

/* Many leases: the table grows; expiry proposes at most max per call. */
static void test_many(void **state)
{
    FX(state);
    struct clock_env c = {.now = 0};
    struct ms_lessor l;

    lessor_new(&l, &c);
    promote(&l, f);
    for (int64_t id = 1; id <= 1500; id++)
        assert_int_equal(ms_lessor_granted(&l, id, id % 2 ? 2 : 4), 0);
    assert_int_equal(l.n, 1500);
    c.now = 2000;
    assert_int_equal(ms_lessor_expire(&l, 500), 500);
    assert_int_equal(ms_lessor_expire(&l, 500), 250);
    assert_int_equal(ms_lessor_expire(&l, 500), 0);
    for (size_t i = 0; i < c.n_revoked; i++) {
        assert_true(c.revoked[i] % 2 == 1);
        ms_lessor_revoked(&l, c.revoked[i]);
    }
    assert_int_equal(l.n, 750);
    ms_lessor_free(&l);
}

static enum ms_store_backend be_memory = MS_BACKEND_MEMORY;

#define CASE(fn) {#fn, fn, fx_setup, fx_teardown, &be_memory}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CASE(test_expiry_at_deadline), CASE(test_keepalive),
        CASE(test_promote_demote),     CASE(test_revoke_retry),
        CASE(test_remaining),          CASE(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
