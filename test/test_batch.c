/* test_batch.c - batch proposer modes and the read-index coalescer, on a
 * fake sink. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/timerfd.h>
#include <uv.h>

#include "batch/proposer.h"
#include "batch/readindex.h"
#include "codec/codec.h"
#include "util/error.h"

#define MAX_ENTRIES 64
#define MAX_PROPS 64

struct fake {
    uv_loop_t loop;
    struct ms_batch_proposer bp;
    struct ms_batch_entry *entries[MAX_ENTRIES];
    struct ms_batch decoded[MAX_ENTRIES];
    size_t n_entries;
    int propose_rc; /* returned by the sink */
    struct ms_proposal props[MAX_PROPS];
    int status[MAX_PROPS];
    int64_t got_rev[MAX_PROPS];
    int n_done;
    int order[MAX_PROPS];
};

static int sink_propose(void *data, struct ms_batch_entry *e,
                        struct ms_buf *payload)
{
    struct fake *f = data;
    char why[256];

    if (f->propose_rc != 0)
        return f->propose_rc;
    assert_true(f->n_entries < MAX_ENTRIES);
    assert_int_equal(ms_codec_decode_batch(payload->data, payload->len,
                                           &f->decoded[f->n_entries], why,
                                           sizeof(why)),
                     0);
    f->entries[f->n_entries++] = e;
    return 0;
}

static void on_done(struct ms_proposal *p, int status, const struct ms_result *r)
{
    struct fake *f = p->data;
    int i = (int)(p - f->props);

    f->status[i] = status;
    f->got_rev[i] = r != NULL ? r->revision : -1;
    f->order[f->n_done++] = i;
}

static void setup_fake(struct fake *f, enum ms_batch_mode mode, size_t max_ops,
                       unsigned max_inflight, uint64_t delay_us)
{
    struct ms_batch_config c;
    struct ms_batch_sink s = {.data = f, .propose = sink_propose};

    memset(f, 0, sizeof(*f));
    ms_batch_config_default(&c);
    c.mode = mode;
    c.max_ops = max_ops;
    c.max_inflight = max_inflight;
    c.max_delay_us = delay_us;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(ms_batch_init(&f->bp, &f->loop, &c, MS_CODEC_PROTOBUF, 7,
                                   &s),
                     0);
    for (int i = 0; i < MAX_PROPS; i++) {
        f->props[i].data = f;
        f->props[i].cb = on_done;
        f->status[i] = -100;
    }
}

static void closed_cb(struct ms_batch_proposer *bp)
{
    (void)bp;
}

static void teardown_fake(struct fake *f)
{
    ms_batch_close(&f->bp, closed_cb);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    for (size_t i = 0; i < f->n_entries; i++)
        ms_batch_free(&f->decoded[i]);
}

static void submit(struct fake *f, int i)
{
    struct ms_op op = {.type = MS_OP_PUT};
    char key[16];

    snprintf(key, sizeof(key), "k%d", i);
    op.u.put.key.data = (const uint8_t *)key;
    op.u.put.key.len = strlen(key);
    assert_int_equal(ms_batch_submit(&f->bp, &op, &f->props[i]), 0);
}

/* Applies entry e as the state machine would: deliver each op's result,
 * then report the entry done. */
static void apply_entry(struct fake *f, size_t e)
{
    struct ms_batch *b = &f->decoded[e];
    for (size_t i = 0; i < b->n_ops; i++) {
        struct ms_result r = {.type = MS_OP_PUT,
                              .revision = (int64_t)b->ops[i].request_id};
        assert_int_equal(b->ops[i].node_id, 7);
        ms_batch_deliver(&f->bp, b->ops[i].request_id, &r);
    }
    ms_batch_entry_done(f->entries[e], 0);
}

static void iterate(struct fake *f)
{
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* adaptive: with Raft idle the first op goes at once (as with `off`);
 * ops arriving meanwhile in the same loop iteration form one entry. */
static void test_adaptive_groups_one_iteration(void **state)
{
    struct fake f;
    (void)state;
    setup_fake(&f, MS_BATCH_ADAPTIVE, 256, 4, 0);
    for (int i = 0; i < 5; i++)
        submit(&f, i);
    assert_int_equal(f.n_entries, 1); /* the first, at once */
    assert_int_equal(f.decoded[0].n_ops, 1);
    iterate(&f);
    assert_int_equal(f.n_entries, 2);
    assert_int_equal(f.decoded[1].n_ops, 4);
    assert_memory_equal(f.decoded[1].ops[2].u.put.key.data, "k3", 2);
    apply_entry(&f, 0);
    apply_entry(&f, 1);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(f.status[i], 0);
        assert_int_equal(f.got_rev[i], (int64_t)f.props[i].request_id);
        assert_int_equal(f.order[i], i);
    }
    teardown_fake(&f);
}

/* adaptive: with the in-flight slots full, ops queue and go as one entry
 * as soon as a slot frees: no timer involved. */
static void test_adaptive_self_clocking(void **state)
{
    struct fake f;
    (void)state;
    setup_fake(&f, MS_BATCH_ADAPTIVE, 256, 1, 0);
    submit(&f, 0);
    assert_int_equal(f.n_entries, 1);
    assert_false(f.bp.timer_armed); /* no timer */
    for (int i = 1; i <= 10; i++)
        submit(&f, i);
    iterate(&f);
    assert_int_equal(f.n_entries, 1); /* slot busy: queued */
    apply_entry(&f, 0);
    assert_int_equal(f.n_entries, 2); /* flushed at completion */
    assert_int_equal(f.decoded[1].n_ops, 10);
    apply_entry(&f, 1);
    assert_int_equal(f.n_done, 11);
    assert_int_equal(f.bp.stats.entries_proposed, 2);
    assert_int_equal(f.bp.stats.ops_proposed, 11);
    teardown_fake(&f);
}

/* adaptive: queued ops are cut into entries of at most max_ops. */
static void test_adaptive_respects_max_ops(void **state)
{
    struct fake f;
    (void)state;
    setup_fake(&f, MS_BATCH_ADAPTIVE, 3, 1, 0);
    submit(&f, 0);
    iterate(&f);
    for (int i = 1; i <= 7; i++)
        submit(&f, i);
    apply_entry(&f, 0);
    assert_int_equal(f.n_entries, 2);
    assert_int_equal(f.decoded[1].n_ops, 3);
    apply_entry(&f, 1);
    assert_int_equal(f.decoded[2].n_ops, 3);
    apply_entry(&f, 2);
    assert_int_equal(f.decoded[3].n_ops, 1);
    apply_entry(&f, 3);
    assert_int_equal(f.n_done, 8);
    teardown_fake(&f);
}

/* off: one entry per op, proposed at once. */
static void test_off_one_entry_per_op(void **state)
{
    struct fake f;
    (void)state;
    setup_fake(&f, MS_BATCH_OFF, 256, 4, 0);
    for (int i = 0; i < 4; i++)
        submit(&f, i);
    assert_int_equal(f.n_entries, 4);
    for (size_t e = 0; e < 4; e++) {
        assert_int_equal(f.decoded[e].n_ops, 1);
        apply_entry(&f, e);
    }
    assert_int_equal(f.n_done, 4);
    teardown_fake(&f);
}

/* fixed: flush at max_ops, and the remainder when the delay expires. */
static void test_fixed_ops_and_delay(void **state)
{
    struct fake f;
    (void)state;
    setup_fake(&f, MS_BATCH_FIXED, 4, 1, 2000);
    for (int i = 0; i < 10; i++)
        submit(&f, i);
    assert_int_equal(f.n_entries, 2);
    assert_int_equal(f.decoded[0].n_ops, 4);
    assert_int_equal(f.decoded[1].n_ops, 4);
    iterate(&f);
    assert_int_equal(f.n_entries, 2); /* the last 2 wait for the timer */
    uv_run(&f.loop, UV_RUN_ONCE);     /* blocks until the 2 ms timer */
    assert_int_equal(f.n_entries, 3);
    assert_int_equal(f.decoded[2].n_ops, 2);
    for (size_t e = 0; e < 3; e++)
        apply_entry(&f, e);
    assert_int_equal(f.n_done, 10);
    teardown_fake(&f);
}

/* fixed: a delay below a millisecond is armed as it is (100 us, not
 * rounded up to the event loop's 1 ms), and flushes the queued ops. */
static void test_fixed_sub_ms_delay(void **state)
{
    struct fake f;
    struct itimerspec its;
    (void)state;
    setup_fake(&f, MS_BATCH_FIXED, 100, 1, 100);
    submit(&f, 0);
    submit(&f, 1);
    assert_int_equal(f.n_entries, 0);
    assert_true(f.bp.timer_armed);
    assert_int_equal(timerfd_gettime(f.bp.tfd, &its), 0);
    assert_int_equal(its.it_value.tv_sec, 0);
    assert_true(its.it_value.tv_nsec > 0 && its.it_value.tv_nsec <= 100000);
    while (f.n_entries == 0)
        uv_run(&f.loop, UV_RUN_ONCE); /* the timer keeps the loop alive */
    assert_int_equal(f.decoded[0].n_ops, 2);
    assert_false(f.bp.timer_armed);
    apply_entry(&f, 0);
    assert_int_equal(f.n_done, 2);
    teardown_fake(&f);
}

/* a failed entry fails exactly its own ops with the entry's status. */
static void test_failed_entry_fails_its_ops(void **state)
{
    struct fake f;
    (void)state;
    setup_fake(&f, MS_BATCH_ADAPTIVE, 256, 1, 0);
    submit(&f, 0);
    iterate(&f);
    submit(&f, 1);
    submit(&f, 2);
    ms_batch_entry_done(f.entries[0], MS_ENOTLEADER);
    assert_int_equal(f.status[0], MS_ENOTLEADER);
    assert_int_equal(f.n_entries, 2);
    apply_entry(&f, 1);
    assert_int_equal(f.status[1], 0);
    assert_int_equal(f.status[2], 0);
    assert_int_equal(f.bp.stats.ops_failed, 1);
    teardown_fake(&f);
}

/* a sink that refuses to propose fails the ops of that entry. */
static void test_sink_error(void **state)
{
    struct fake f;
    (void)state;
    setup_fake(&f, MS_BATCH_OFF, 256, 1, 0);
    f.propose_rc = MS_ENOLEADER;
    submit(&f, 0);
    assert_int_equal(f.status[0], MS_ENOLEADER);
    assert_int_equal(ms_batch_inflight(&f.bp), 0);
    teardown_fake(&f);
}

/* shutdown fails queued ops and refuses new ones. */
static void test_shutdown(void **state)
{
    struct fake f;
    struct ms_op op = {.type = MS_OP_PUT};
    (void)state;
    setup_fake(&f, MS_BATCH_ADAPTIVE, 256, 1, 0);
    submit(&f, 0);
    iterate(&f);
    submit(&f, 1);
    ms_batch_shutdown(&f.bp, MS_ESHUTDOWN);
    assert_int_equal(f.status[1], MS_ESHUTDOWN);
    assert_int_equal(ms_batch_submit(&f.bp, &op, &f.props[2]), MS_ESHUTDOWN);
    apply_entry(&f, 0); /* in flight: still completes */
    assert_int_equal(f.status[0], 0);
    teardown_fake(&f);
}

/* runtime reconfiguration is validated. */
static void test_set_config(void **state)
{
    struct fake f;
    struct ms_batch_config c;
    char err[128];
    (void)state;
    setup_fake(&f, MS_BATCH_ADAPTIVE, 256, 1, 0);
    ms_batch_config_default(&c);
    c.max_ops = 0;
    assert_int_equal(ms_batch_set_config(&f.bp, &c, err, sizeof(err)),
                     MS_EINVAL);
    assert_non_null(strstr(err, "max ops"));
    c.max_ops = 2;
    c.mode = MS_BATCH_OFF;
    assert_int_equal(ms_batch_set_config(&f.bp, &c, err, sizeof(err)), 0);
    submit(&f, 0);
    assert_int_equal(f.n_entries, 1);
    apply_entry(&f, 0);
    teardown_fake(&f);
}

static void on_done_poison(struct ms_proposal *p, int status,
                           const struct ms_result *r)
{
    on_done(p, status, r);
    /* the caller frees its proposal in the callback: simulate it */
    struct fake *f = p->data;
    memset(p, 0xA5, sizeof(*p));
    p->data = f;
}

/* a proposal may be freed inside its callback: delivering, completing and
 * cancelling never touch it afterwards. */
static void test_callback_may_free_proposal(void **state)
{
    struct fake f;
    (void)state;
    setup_fake(&f, MS_BATCH_ADAPTIVE, 256, 1, 0);
    for (int i = 0; i < 6; i++)
        f.props[i].cb = on_done_poison;
    submit(&f, 0);
    iterate(&f);
    for (int i = 1; i < 6; i++)
        submit(&f, i);
    ms_batch_cancel(&f.bp, &f.props[3], MS_ETIMEOUT);
    assert_int_equal(f.status[3], MS_ETIMEOUT);
    apply_entry(&f, 0);
    assert_int_equal(f.n_entries, 2);
    assert_int_equal(f.decoded[1].n_ops, 5); /* op 3 was already encoded */
    /* deliver ops 1 and 2, then fail the entry: 4 and 5 fail, 3 is not
     * called again */
    struct ms_batch *b = &f.decoded[1];
    for (size_t i = 0; i < 2; i++) {
        struct ms_result r = {.type = MS_OP_PUT, .revision = 1};
        ms_batch_deliver(&f.bp, b->ops[i].request_id, &r);
    }
    ms_batch_entry_done(f.entries[1], MS_ENOTLEADER);
    assert_int_equal(f.status[1], 0);
    assert_int_equal(f.status[2], 0);
    assert_int_equal(f.status[4], MS_ENOTLEADER);
    assert_int_equal(f.status[5], MS_ENOTLEADER);
    assert_int_equal(f.n_done, 6);
    teardown_fake(&f);
}

/* --- read index ---------------------------------------------------------- */

struct rfake {
    struct ms_readindex ri;
    int barriers;
    int rc;
    struct ms_read_waiter w[8];
    int status[8];
};

static int rsink_barrier(void *data, struct ms_readindex *ri)
{
    struct rfake *r = data;
    (void)ri;
    if (r->rc)
        return r->rc;
    r->barriers++;
    return 0;
}

static void on_read(struct ms_read_waiter *w, int status)
{
    struct rfake *r = w->data;
    r->status[w - r->w] = status;
}

static void rsetup(struct rfake *r)
{
    struct ms_read_sink s = {.data = r, .barrier = rsink_barrier};
    memset(r, 0, sizeof(*r));
    ms_readindex_init(&r->ri, &s);
    for (int i = 0; i < 8; i++) {
        r->w[i].data = r;
        r->w[i].cb = on_read;
        r->status[i] = -100;
    }
}

/* one barrier outstanding; reads arriving meanwhile share the next one. */
static void test_readindex_coalesces(void **state)
{
    struct rfake r;
    (void)state;
    rsetup(&r);
    ms_readindex_wait(&r.ri, &r.w[0]);
    assert_int_equal(r.barriers, 1);
    ms_readindex_wait(&r.ri, &r.w[1]);
    ms_readindex_wait(&r.ri, &r.w[2]);
    assert_int_equal(r.barriers, 1);
    ms_readindex_done(&r.ri, 0);
    assert_int_equal(r.status[0], 0);
    assert_int_equal(r.status[1], -100); /* waits for the second barrier */
    assert_int_equal(r.barriers, 2);
    ms_readindex_done(&r.ri, 0);
    assert_int_equal(r.status[1], 0);
    assert_int_equal(r.status[2], 0);
    assert_int_equal(r.barriers, 2);
    assert_int_equal(r.ri.reads, 3);
}

/* a failing barrier fails its reads; shutdown fails waiting ones. */
static void test_readindex_failures(void **state)
{
    struct rfake r;
    (void)state;
    rsetup(&r);
    r.rc = MS_ENOLEADER;
    ms_readindex_wait(&r.ri, &r.w[0]);
    assert_int_equal(r.status[0], MS_ENOLEADER);
    r.rc = 0;
    ms_readindex_wait(&r.ri, &r.w[1]);
    ms_readindex_wait(&r.ri, &r.w[2]);
    ms_readindex_shutdown(&r.ri, MS_ESHUTDOWN);
    assert_int_equal(r.status[2], MS_ESHUTDOWN);
    ms_readindex_done(&r.ri, MS_ESHUTDOWN);
    assert_int_equal(r.status[1], MS_ESHUTDOWN);
    ms_readindex_wait(&r.ri, &r.w[3]);
    assert_int_equal(r.status[3], MS_ESHUTDOWN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adaptive_groups_one_iteration),
        cmocka_unit_test(test_adaptive_self_clocking),
        cmocka_unit_test(test_adaptive_respects_max_ops),
        cmocka_unit_test(test_off_one_entry_per_op),
        cmocka_unit_test(test_fixed_ops_and_delay),
        cmocka_unit_test(test_fixed_sub_ms_delay),
        cmocka_unit_test(test_failed_entry_fails_its_ops),
        cmocka_unit_test(test_sink_error),
        cmocka_unit_test(test_shutdown),
        cmocka_unit_test(test_set_config),
        cmocka_unit_test(test_callback_may_free_proposal),
        cmocka_unit_test(test_readindex_coalesces),
        cmocka_unit_test(test_readindex_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
