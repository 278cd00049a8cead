/* test_watch.c - the watch hub over a real store: key matching, revision
 * order, replay from history, back-pressure, slow-stream cancellation,
 * compaction, progress, resync after a snapshot load. */
#include "store_fixture.h"
#include "watch/hub.h"

/* A sink that records each message as one line of text. */
struct rec {
    char msgs[64][512];
    size_t n;
    size_t pending; /* what pending() reports */
    int ended;
    int fail; /* events/notice return this */
};

static void rec_add(struct rec *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void rec_add(struct rec *r, const char *fmt, ...)
{
    va_list ap;

    assert_true(r->n < 64);
    va_start(ap, fmt);
    vsnprintf(r->msgs[r->n++], sizeof(r->msgs[0]), fmt, ap);
    va_end(ap);
}

static int rec_events(void *ctx, int64_t id, int64_t rev,
                      const struct ms_store_event *const *ev, size_t n,
                      bool prev_kv)
{
    struct rec *r = ctx;
    char line[512];
    size_t off = 0;

    if (r->fail)
        return r->fail;
    off += (size_t)snprintf(line, sizeof(line), "w%lld r%lld:", (long long)id,
                            (long long)rev);
    for (size_t i = 0; i < n && off < sizeof(line); i++) {
        const struct ms_store_event *e = ev[i];
        off += (size_t)snprintf(line + off, sizeof(line) - off, " %s %.*s@%lld",
                                e->is_delete ? "DEL" : "PUT",
                                (int)e->kv.key.len,
                                (const char *)e->kv.key.data,
                                (long long)e->kv.mod_revision);
        if (!e->is_delete && off < sizeof(line))
            off += (size_t)snprintf(line + off, sizeof(line) - off, "=%.*s",
                                    (int)e->kv.value.len,
                                    (const char *)e->kv.value.data);
        if (prev_kv && e->has_prev && off < sizeof(line))
            off += (size_t)snprintf(line + off, sizeof(line) - off,
                                    "(prev %.*s@%lld)",
                                    (int)e->prev_kv.value.len,
                                    (const char *)e->prev_kv.value.data,
                                    (long long)e->prev_kv.mod_revision);
    }
    rec_add(r, "%s", line);
    return 0;
}

static int rec_notice(void *ctx, const struct ms_watch_notice *n)
{
    struct rec *r = ctx;
    char compact[32] = "";

    if (r->fail)
        return r->fail;
    if (n->compact_revision != 0)
        snprintf(compact, sizeof(compact), " compact=%lld",
                 (long long)n->compact_revision);
    rec_add(r, "w%lld r%lld:%s%s%s%s%s", (long long)n->watch_id,
            (long long)n->revision, n->created ? " created" : "",
            n->canceled ? " canceled" : "", compact,
            n->cancel_reason ? " why=" : "",
            n->cancel_reason ? n->cancel_reason : "");
    return 0;
}

static size_t rec_pending(void *ctx)
{
    return ((struct rec *)ctx)->pending;
}

static void rec_ended(void *ctx)
{
    ((struct rec *)ctx)->ended++;
}

static const struct ms_watch_sink sink = {rec_events, rec_notice,
                                          rec_pending, rec_ended};

#define assert_msg(r, i, s) assert_string_equal((r)->msgs[i], (s))

/* Applies ops as one entry and flushes the hub, as the server does. */
static void apply_flush(struct fx *f, struct ms_watch_hub *h,
                        struct ms_op *ops, size_t n)
{
    fx_apply_n(f, ops, n);
    ms_watch_hub_flush(h);
}

static void put_flush(struct fx *f, struct ms_watch_hub *h, const char *k,
                      const char *v)
{
    struct ms_op op = op_put(k, v);
    apply_flush(f, h, &op, 1);
}

static void pump_all(struct ms_watch_hub *h)
{
    for (int i = 0; i < 1000 && ms_watch_hub_pump(h) == MS_WATCH_BUSY; i++)
        ;
}

struct env {
    struct ms_watch_hub *h;
    struct ms_watch_stream *st;
    struct rec r;
};

static void env_open(struct fx *f, struct env *e,
                     const struct ms_watch_hub_config *cfg)
{
    memset(e, 0, sizeof(*e));
    assert_int_equal(ms_watch_hub_new(f->s, cfg, &e->h), 0);
    assert_int_equal(ms_watch_stream_open(e->h, &sink, &e->r, &e->st), 0);
}

static void env_close(struct env *e)
{
    if (e->st != NULL)
        ms_watch_stream_close(e->st);
    ms_watch_hub_free(e->h);
}

static struct ms_watch_spec prefix_spec(const char *p, const char *end)
{
    struct ms_watch_spec s = {.key = B(p), .range_end = B(end)};
    return s;
}

/* Prefix, single-key and open-ended watchers see exactly their keys, in
 * revision order, deletes with key and revision only. */
static void test_matching(void **state)
{
    FX(state);
    struct env e;
    struct ms_watch_spec one = {.key = B("a/1")};
    struct ms_watch_spec from = {.key = B("b"), .range_end = B0};

    env_open(f, &e, NULL);
    assert_int_equal(ms_watch_create(e.st, &(struct ms_watch_spec){
                                               .key = B("a/"),
                                               .range_end = B("a0")}),
                     0);
    assert_int_equal(ms_watch_create(e.st, &one), 0);
    assert_int_equal(ms_watch_create(e.st, &from), 0);
    assert_msg(&e.r, 0, "w0 r1: created");
    assert_msg(&e.r, 1, "w1 r1: created");
    assert_msg(&e.r, 2, "w2 r1: created");
    put_flush(f, e.h, "a/1", "x"); /* rev 2 */
    put_flush(f, e.h, "a0", "y");  /* rev 3: outside a/ */
    put_flush(f, e.h, "a/2", "z"); /* rev 4 */
    put_flush(f, e.h, "c", "q");   /* rev 5 */
    struct ms_op d = op_del("a/", B("a0"));
    apply_flush(f, e.h, &d, 1); /* rev 6 */
    assert_int_equal(e.r.n, 9);
    assert_msg(&e.r, 3, "w0 r2: PUT a/1@2=x");
    assert_msg(&e.r, 4, "w1 r2: PUT a/1@2=x");
    assert_msg(&e.r, 5, "w0 r4: PUT a/2@4=z");
    assert_msg(&e.r, 6, "w2 r5: PUT c@5=q");
    assert_msg(&e.r, 7, "w0 r6: DEL a/1@6 DEL a/2@6");
    assert_msg(&e.r, 8, "w1 r6: DEL a/1@6");
    env_close(&e);
}

/* Filters drop puts or deletes; prev_kv only for watchers asking for it;
 * a txn's events go out together at one revision. */
static void test_filters_prev_txn(void **state)
{
    FX(state);
    struct env e;
    struct ms_watch_spec noput = prefix_spec("k", "l");
    struct ms_watch_spec nodel = prefix_spec("k", "l");

    noput.filters = MS_WATCH_NOPUT;
    nodel.filters = MS_WATCH_NODELETE;
    nodel.prev_kv = true;
    env_open(f, &e, NULL);
    ms_watch_create(e.st, &noput);
    ms_watch_create(e.st, &nodel);
    put_flush(f, e.h, "k1", "a");
    struct ms_op succ[2] = {op_put("k1", "b"), op_put("k2", "c")};
    struct ms_op t = op_txn(NULL, 0, succ, 2, NULL, 0);
    apply_flush(f, e.h, &t, 1);
    struct ms_op d = op_del("k1", BNONE);
    apply_flush(f, e.h, &d, 1);
    assert_int_equal(e.r.n, 5);
    assert_msg(&e.r, 2, "w1 r2: PUT k1@2=a");
    assert_msg(&e.r, 3, "w1 r3: PUT k1@3=b(prev a@2) PUT k2@3=c");
    assert_msg(&e.r, 4, "w0 r4: DEL k1@4");
    env_close(&e);
}

/* Several revisions in one applied entry reach a watcher in one message,
 * in order; a start revision in the future skips what comes before it. */
static void test_batch_and_future_start(void **state)
{
    FX(state);
    struct env e;
    struct ms_watch_spec later = prefix_spec("p", "q");

    later.start_revision = 3;
    env_open(f, &e, NULL);
    ms_watch_create(e.st, &later);
    struct ms_op ops[3] = {op_put("p1", "a"), op_put("p2", "b"),
                           op_put("p3", "c")};
    apply_flush(f, e.h, ops, 3); /* revs 2, 3, 4 */
    assert_int_equal(e.r.n, 2);
    assert_msg(&e.r, 1, "w0 r4: PUT p2@3=b PUT p3@4=c");
    env_close(&e);
}

/* start_revision replays history in order (with prev_kv), the watcher
 * then follows live changes, and nothing is duplicated or skipped even
 * when changes are applied while it replays. */
static void test_replay(void **state)
{
    FX(state);
    struct env e;
    struct ms_watch_hub_config cfg;
    struct ms_watch_spec s = prefix_spec("r/", "r0");

    fx_apply(f, op_put("x", "0")); /* rev 2, before the hub */
    ms_watch_hub_config_default(&cfg);
    cfg.max_events = 2; /* several messages, whole revisions each */
    cfg.pump_steps = 1;
    env_open(f, &e, &cfg);
    put_flush(f, e.h, "r/a", "1"); /* 3 */
    put_flush(f, e.h, "r/b", "2"); /* 4 */
    put_flush(f, e.h, "r/a", "3"); /* 5 */
    struct ms_op d = op_del("r/", B("r0"));
    apply_flush(f, e.h, &d, 1); /* 6: deletes r/a and r/b */
    s.start_revision = 2;
    s.prev_kv = true;
    ms_watch_create(e.st, &s);
    assert_int_equal(ms_watch_hub_pump(e.h), MS_WATCH_BUSY);
    put_flush(f, e.h, "r/c", "4"); /* 7: while replaying */
    pump_all(e.h);
    assert_int_equal(ms_watch_hub_pump(e.h), MS_WATCH_IDLE);
    put_flush(f, e.h, "r/d", "5"); /* 8: live */
    assert_msg(&e.r, 0, "w0 r6: created");
    assert_msg(&e.r, 1, "w0 r6: PUT r/a@3=1 PUT r/b@4=2");
    /* max_events is reached at a revision boundary: a revision is never
     * split across messages */
    assert_msg(&e.r, 2, "w0 r7: PUT r/a@5=3(prev 1@3) DEL r/a@6(prev 3@5) "
                        "DEL r/b@6(prev 2@4)");
    assert_msg(&e.r, 3, "w0 r7: PUT r/c@7=4");
    assert_msg(&e.r, 4, "w0 r8: PUT r/d@8=5");
    assert_int_equal(e.r.n, 5);
    struct ms_watch_stats st;
    ms_watch_hub_stats(e.h, &st);
    assert_int_equal(st.replayed_total, 6);
    assert_int_equal(st.unsynced, 0);
    env_close(&e);
}

/* A replaying watcher waits while its stream has low_water bytes unsent. */
static void test_replay_backpressure(void **state)
{
    FX(state);
    struct env e;
    struct ms_watch_spec s = prefix_spec("b", "c");

    env_open(f, &e, NULL);
    put_flush(f, e.h, "b1", "x");
    s.start_revision = 1;
    ms_watch_create(e.st, &s);
    e.r.pending = MS_WATCH_DEFAULT_LOW_WATER;
    assert_int_equal(ms_watch_hub_pump(e.h), MS_WATCH_BLOCKED);
    assert_int_equal(e.r.n, 1); /* created only */
    e.r.pending = 0;
    pump_all(e.h);
    assert_int_equal(e.r.n, 2);
    assert_msg(&e.r, 1, "w0 r2: PUT b1@2=x");
    env_close(&e);
}

/* A compacted start revision: created, then canceled with the compact
 * revision and a header without revision; at the compact revision itself
 * the watch works. */
static void test_compacted(void **state)
{
    FX(state);
    struct env e;
    struct ms_watch_spec s = prefix_spec("c", "d");

    env_open(f, &e, NULL);
    put_flush(f, e.h, "c1", "a");
    put_flush(f, e.h, "c1", "b");
    put_flush(f, e.h, "c1", "c");
    fx_apply(f, op_compact(3));
    s.start_revision = 2;
    ms_watch_create(e.st, &s);
    s.start_revision = 3;
    ms_watch_create(e.st, &s);
    pump_all(e.h);
    assert_msg(&e.r, 0, "w0 r4: created");
    assert_msg(&e.r, 1, "w0 r0: canceled compact=3");
    assert_msg(&e.r, 2, "w1 r4: created");
    assert_msg(&e.r, 3, "w1 r4: PUT c1@3=b PUT c1@4=c");
    struct ms_watch_stats st;
    ms_watch_hub_stats(e.h, &st);
    assert_int_equal(st.compacted_canceled_total, 1);
    assert_int_equal(st.watchers, 1);
    env_close(&e);
}

/* A stream with more than max_pending bytes unsent when events arrive:
 * each watcher is canceled with a reason, the stream is ended, and no
 * other stream is affected. */
static void test_slow_stream(void **state)
{
    FX(state);
    struct env e;
    struct rec fast = {0};
    struct ms_watch_stream *st2;
    struct ms_watch_spec s = prefix_spec("s", "t");
    struct ms_watch_stats stats;

    env_open(f, &e, NULL);
    assert_int_equal(ms_watch_stream_open(e.h, &sink, &fast, &st2), 0);
    ms_watch_create(e.st, &s);
    ms_watch_create(e.st, &s);
    ms_watch_create(st2, &s);
    put_flush(f, e.h, "s1", "a");
    e.r.pending = MS_WATCH_DEFAULT_MAX_PENDING + 1;
    put_flush(f, e.h, "s2", "b");
    assert_int_equal(e.r.ended, 1);
    assert_int_equal(e.r.n, 6);
    assert_non_null(strstr(e.r.msgs[4], "w0 r3: canceled why=metastore: "
                                        "watcher too slow"));
    assert_non_null(strstr(e.r.msgs[5], "w1 r3: canceled why="));
    e.st = NULL; /* the hub ended and freed it */
    put_flush(f, e.h, "s3", "c");
    assert_int_equal(e.r.n, 6);
    assert_int_equal(fast.n, 4);
    assert_msg(&fast, 3, "w0 r4: PUT s3@4=c");
    ms_watch_hub_stats(e.h, &stats);
    assert_int_equal(stats.slow_canceled_total, 2);
    assert_int_equal(stats.streams, 1);
    assert_int_equal(stats.watchers, 1);
    ms_watch_stream_close(st2);
    env_close(&e);
}

/* Cancel, duplicate ids, unknown ids, progress requests (deferred while a
 * watcher replays) and progress notifications. */
static void test_cancel_progress(void **state)
{
    FX(state);
    struct env e;
    struct ms_watch_hub_config cfg;
    struct ms_watch_spec s = prefix_spec("q", "r");

    ms_watch_hub_config_default(&cfg);
    cfg.progress_interval_ms = 1000;
    env_open(f, &e, &cfg);
    put_flush(f, e.h, "q1", "a"); /* 2 */
    s.watch_id = 7;
    s.progress_notify = true;
    ms_watch_create(e.st, &s);    /* 7 */
    ms_watch_create(e.st, &s);    /* duplicate */
    s.watch_id = 0;
    s.progress_notify = false;
    s.start_revision = 1;
    ms_watch_create(e.st, &s);    /* 0, replaying */
    ms_watch_progress(e.st);      /* deferred */
    ms_watch_cancel(e.st, 55);    /* unknown: nothing */
    assert_int_equal(e.r.n, 3);
    assert_msg(&e.r, 1, "w-1 r2: created canceled why=mvcc: duplicate "
                        "watch ID provided on the WatchStream");
    pump_all(e.h);
    assert_msg(&e.r, 3, "w0 r2: PUT q1@2=a");
    assert_msg(&e.r, 4, "w-1 r2:");
    ms_watch_cancel(e.st, 0);
    assert_msg(&e.r, 5, "w0 r2: canceled");
    ms_watch_hub_tick(e.h, 500);
    assert_int_equal(e.r.n, 6);
    ms_watch_hub_tick(e.h, 1000);
    assert_msg(&e.r, 6, "w7 r2:");
    ms_watch_hub_tick(e.h, 1500);
    assert_int_equal(e.r.n, 7);
    env_close(&e);
}

/* A lease revocation reaches watchers as deletes of the attached keys. */
static void test_lease_revoke_deletes(void **state)
{
    FX(state);
    struct env e;
    struct ms_watch_spec s = prefix_spec("l", "m");

    env_open(f, &e, NULL);
    fx_apply(f, op_grant(9, 10));
    struct ms_op ops[2] = {op_put_lease("l1", "a", 9),
                           op_put_lease("l2", "b", 9)};
    apply_flush(f, e.h, ops, 2);
    ms_watch_create(e.st, &s);
    struct ms_op r = op_revoke(9);
    apply_flush(f, e.h, &r, 1);
    assert_msg(&e.r, 1, "w0 r4: DEL l1@4 DEL l2@4");
    env_close(&e);
}

/* After a snapshot load replaced the state, a synced watcher catches up
 * from the new history: no change is lost. */
static void test_resync(void **state)
{
    FX(state);
    struct env e;
    struct ms_watch_spec s = prefix_spec("z", "{");
    struct ms_store_options o = {.backend = MS_BACKEND_MEMORY};
    struct ms_store *other;
    struct ms_buf snap = MS_BUF_INIT;
    char err[MS_ERRMSG_SIZE];

    env_open(f, &e, NULL);
    ms_watch_create(e.st, &s);
    /* another replica went further */
    assert_int_equal(ms_store_open(&o, &other, err, sizeof(err)), 0);
    struct ms_op ops[2] = {op_put("z1", "a"), op_put("z2", "b")};
    struct ms_batch b = {.ops = ops, .n_ops = 2};
    struct ms_results rs = {0};
    assert_int_equal(ms_store_apply(other, &b, 5, &rs, err, sizeof(err)), 0);
    ms_results_free(&rs);
    assert_int_equal(ms_store_snapshot_save(other, NULL, buf_write, &snap, err,
                                            sizeof(err)),
                     0);
    struct mem_src src = {snap.data, snap.len, 0, 0};
    struct ms_snapshot_extra extra = {0};
    assert_int_equal(ms_store_snapshot_load(f->s, mem_read, &src, &extra, err,
                                            sizeof(err)),
                     0);
    free(extra.members);
    ms_watch_hub_resync(e.h);
    pump_all(e.h);
    assert_msg(&e.r, 1, "w0 r3: PUT z1@2=a PUT z2@3=b");
    ms_buf_free(&snap);
    ms_store_close(other);
    env_close(&e);
}

/* A sink that fails marks its stream broken: no more calls; closing a
 * stream drops its watchers (no leaks under ASan). */
static void test_broken_and_close(void **state)
{
    FX(state);
    struct env e;
    struct ms_watch_spec s = prefix_spec("e", "f");
    struct ms_watch_stats st;

    env_open(f, &e, NULL);
    ms_watch_create(e.st, &s);
    e.r.fail = MS_ECANCELED;
    put_flush(f, e.h, "e1", "a");
    e.r.fail = 0;
    put_flush(f, e.h, "e2", "b");
    assert_int_equal(e.r.n, 1);
    ms_watch_stream_close(e.st);
    e.st = NULL;
    ms_watch_hub_stats(e.h, &st);
    assert_int_equal(st.watchers, 0);
    assert_int_equal(st.streams, 0);
    ms_watch_hub_shutdown(e.h);
    assert_int_equal(ms_watch_stream_open(e.h, &sink, &e.r, &e.st),
                     MS_ESHUTDOWN);
    e.st = NULL;
    env_close(&e);
}

static enum ms_store_backend be_memory = MS_BACKEND_MEMORY;
static enum ms_store_backend be_rocksdb = MS_BACKEND_ROCKSDB;

#define CASE(fn)                                                               \
    {#fn "/memory", fn, fx_setup, fx_teardown, &be_memory},                    \
    {                                                                          \
        #fn "/rocksdb", fn, fx_setup, fx_teardown, &be_rocksdb                 \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        CASE(test_matching),
        CASE(test_filters_prev_txn),
        CASE(test_batch_and_future_start),
        CASE(test_replay),
        CASE(test_replay_backpressure),
        CASE(test_compacted),
        CASE(test_slow_stream),
        CASE(test_cancel_progress),
        CASE(test_lease_revoke_deletes),
        CASE(test_resync),
        CASE(test_broken_and_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
