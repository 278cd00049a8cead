/* test_fsm.c - the state machine's snapshots taken off the loop: the bytes
 * collected are those of the state at begin, whatever is applied after. */
#include "store_fixture.h"

#include <errno.h>
#include <pthread.h>
#include <sys/wait.h>

#include "codec/codec.h"
#include "fsm/fsm.h"

static bool no_children(void)
{
    int st;
    return waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD;
}

/* Leases, history, tombstones, a compaction, many keys (a snapshot of a
 * few MiB, beyond the child's write chunk) and a member table. */
static void build_state(struct fx *f, struct ms_fsm *fsm, int n_keys)
{
    struct ms_member m = {.id = 7};
    char k[32], v[128];

    ms_fsm_init(fsm, f->s, 1, 1);
    snprintf(m.name, sizeof m.name, "n7");
    snprintf(m.peer_url, sizeof m.peer_url, "http://127.0.0.1:7");
    assert_int_equal(ms_members_upsert(&fsm->members, &m), 0);
    fsm->members.cluster_id = 99;
    assert_int_equal(fx_apply(f, op_grant(11, 60))->err, 0);
    fx_apply(f, op_put_lease("lease/a", "x", 11));
    for (int i = 0; i < n_keys; i++) {
        snprintf(k, sizeof k, "key/%06d", i);
        snprintf(v, sizeof v, "value %d %090d", i, i);
        fx_apply(f, op_put(k, v));
    }
    fx_apply(f, op_put("key/000001", "rewritten"));
    fx_apply(f, op_del("key/000002", BNONE));
    assert_int_equal(fx_apply(f, op_compact(3))->err, 0);
}

/* Changes after begin: puts, a delete, a revoke, a member upsert. */
static void change_state(struct fx *f, struct ms_fsm *fsm)
{
    struct ms_member m = {.id = 8};

    fx_apply(f, op_put("key/000003", "changed"));
    fx_apply(f, op_put("new", "key"));
    fx_apply(f, op_del("key/000004", BNONE));
    fx_apply(f, op_revoke(11));
    snprintf(m.peer_url, sizeof m.peer_url, "http://127.0.0.1:8");
    assert_int_equal(ms_members_upsert(&fsm->members, &m), 0);
}

/* begin, change the state, collect: the bytes equal ms_fsm_snapshot's at
 * begin, and differ from a snapshot of the changed state. */
static void snapshot_of_begin_time(enum ms_store_backend backend, bool inl,
                                   bool want_forked)
{
    struct fx *f = fx_new(backend);
    struct ms_fsm fsm;
    struct ms_buf before = MS_BUF_INIT, after = MS_BUF_INIT;
    struct ms_fsm_snapjob *job;
    const uint8_t *buf;
    size_t len;
    char err[MS_ERRMSG_SIZE];

    if (f == NULL)
        skip();
    build_state(f, &fsm, 20000);
    fsm.snapshot_inline = inl;
    assert_int_equal(ms_fsm_snapshot(&fsm, &before), 0);
    assert_true(before.len > (2u << 20));

    assert_int_equal(ms_fsm_snapshot_begin(&fsm, &job), 0);
    assert_int_equal(ms_fsm_snapjob_forked(job), want_forked);
    change_state(f, &fsm);
    assert_int_equal(ms_fsm_snapshot_collect(job, &buf, &len, err, sizeof err),
                     0);
    assert_int_equal(len, before.len);
    assert_memory_equal(buf, before.data, len);

    assert_int_equal(ms_fsm_snapshot(&fsm, &after), 0);
    assert_true(after.len != before.len ||
                memcmp(after.data, before.data, before.len) != 0);
    fsm.stats.snapshots_taken = 0;
    ms_fsm_snapshot_end(&fsm, job, true);
    assert_int_equal(fsm.stats.snapshots_taken, 1);
    assert_true(no_children());
    ms_buf_free(&before);
    ms_buf_free(&after);
    fx_free(f);
}

/* memory: serialised by a forked child, off the calling thread. */
static void test_memory_forked(void **state)
{
    (void)state;
    snapshot_of_begin_time(MS_BACKEND_MEMORY, false, true);
}

/* memory with snapshot_inline: serialised in begin, same bytes. */
static void test_memory_inline(void **state)
{
    (void)state;
    snapshot_of_begin_time(MS_BACKEND_MEMORY, true, false);
}

/* rocksdb: never forked (RocksDB in a forked child may deadlock);
 * serialised by collect from a read-only view taken in begin: the bytes
 * of the state at begin. */
static void test_rocksdb_view(void **state)
{
    (void)state;
    snapshot_of_begin_time(MS_BACKEND_ROCKSDB, false, false);
}

/* rocksdb with snapshot_inline: serialised in begin, same bytes. */
static void test_rocksdb_inline(void **state)
{
    (void)state;
    snapshot_of_begin_time(MS_BACKEND_ROCKSDB, true, false);
}

struct collector {
    struct ms_fsm_snapjob *job;
    const uint8_t *buf;
    size_t len;
    int rc;
    char err[MS_ERRMSG_SIZE];
};

static void *collect_thread(void *arg)
{
    struct collector *c = arg;
    c->rc = ms_fsm_snapshot_collect(c->job, &c->buf, &c->len, c->err,
                                    sizeof c->err);
    return NULL;
}

/* rocksdb: collect on another thread while this one applies writes (and
 * compaction steps): the bytes are those of the state at begin. Cancel
 * makes a running collect fail. */
static void test_rocksdb_view_threaded(void **state)
{
    struct fx *f = fx_new(MS_BACKEND_ROCKSDB);
    struct ms_fsm fsm;
    struct ms_buf before = MS_BUF_INIT;
    struct collector c = {0};
    pthread_t t;
    char k[32], err[MS_ERRMSG_SIZE];
    bool more;
    (void)state;

    build_state(f, &fsm, 20000);
    assert_int_equal(ms_fsm_snapshot(&fsm, &before), 0);
    assert_int_equal(ms_fsm_snapshot_begin(&fsm, &c.job), 0);
    assert_int_equal(pthread_create(&t, NULL, collect_thread, &c), 0);
    for (int i = 0; i < 2000; i++) {
        snprintf(k, sizeof k, "key/%06d", i * 7);
        fx_apply(f, op_put(k, "during"));
    }
    fx_apply(f, op_compact(ms_store_revision(f->s)));
    assert_int_equal(ms_store_compact_step(f->s, 100, &more, err, sizeof err),
                     0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(c.rc, 0);
    assert_int_equal(c.len, before.len);
    assert_memory_equal(c.buf, before.data, before.len);
    ms_fsm_snapshot_end(&fsm, c.job, true);

    memset(&c, 0, sizeof c);
    assert_int_equal(ms_fsm_snapshot_begin(&fsm, &c.job), 0);
    ms_fsm_snapshot_cancel(c.job);
    assert_int_equal(
        ms_fsm_snapshot_collect(c.job, &c.buf, &c.len, c.err, sizeof c.err),
        MS_ECANCELED);
    ms_fsm_snapshot_end(&fsm, c.job, false);
    ms_buf_free(&before);
    fx_free(f);
}

/* The restored snapshot is the state at begin: a store loaded from the
 * collected bytes holds none of the later changes. */
static void test_collected_bytes_restore(void **state)
{
    struct fx *f = fx_new(MS_BACKEND_MEMORY), *g = fx_new(MS_BACKEND_MEMORY);
    struct ms_fsm fsm, fsm2;
    struct ms_fsm_snapjob *job;
    struct ms_results rs = {0};
    struct ms_range r = {.key = B("key/000003")};
    const uint8_t *buf;
    size_t len;
    char err[MS_ERRMSG_SIZE];
    (void)state;

    build_state(f, &fsm, 100);
    uint64_t index = ms_store_applied_index(f->s);
    int64_t rev = ms_store_revision(f->s);
    assert_int_equal(ms_fsm_snapshot_begin(&fsm, &job), 0);
    change_state(f, &fsm);
    assert_int_equal(ms_fsm_snapshot_collect(job, &buf, &len, err, sizeof err),
                     0);
    ms_fsm_init(&fsm2, g->s, 2, 1);
    assert_int_equal(ms_fsm_restore(&fsm2, buf, len), 0);
    ms_fsm_snapshot_end(&fsm, job, true);
    assert_int_equal(ms_store_applied_index(g->s), index);
    assert_int_equal(ms_store_revision(g->s), rev);
    assert_int_equal(fsm2.members.n, 1);
    assert_int_equal(fsm2.members.cluster_id, 99);
    assert_int_equal(ms_store_read(g->s, &r, &rs, err, sizeof err), 0);
    assert_int_equal(rs.r[0].u.range.n_kvs, 1);
    assert_int_equal(rs.r[0].u.range.kvs[0].version, 1); /* not "changed" */
    ms_results_free(&rs);
    fx_free(f);
    fx_free(g);
}

/* Applies an alarm entry to fsm as f's next index. */
static void apply_alarm(struct fx *f, struct ms_fsm *fsm, bool activate,
                        uint64_t member)
{
    struct ms_buf b = MS_BUF_INIT;

    assert_int_equal(
        ms_fsm_encode_alarm(activate, member, MS_ALARM_NOSPACE, &b), 0);
    assert_int_equal(ms_fsm_apply(fsm, ++f->index, b.data, b.len), 0);
    ms_buf_free(&b);
}

/* The NOSPACE alarm: raised by an entry, it makes the store refuse puts,
 * lease grants and txns with a put (deletes and compactions go on); it
 * travels in snapshots; cleared by an entry, writes go on. A malformed
 * alarm entry is skipped. */
static void test_alarm_entries(void **state)
{
    struct fx *f = fx_new(MS_BACKEND_MEMORY), *g = fx_new(MS_BACKEND_MEMORY);
    struct ms_fsm fsm, fsm2;
    struct ms_buf snap = MS_BUF_INIT;
    struct ms_op put = op_put("t", "v");
    static const uint8_t bad[] = {MS_CODEC_FORMAT_VERSION, MS_ENTRY_ALARM, '{',
                                  '}'};
    (void)state;

    build_state(f, &fsm, 10);
    assert_int_equal(ms_fsm_encode_alarm(true, 1, MS_ALARM_NONE, &snap),
                     MS_EINVAL);
    apply_alarm(f, &fsm, true, 5);
    apply_alarm(f, &fsm, true, 5); /* idempotent */
    assert_int_equal(fsm.alarms.n, 1);
    assert_true(ms_alarms_active(&fsm.alarms, MS_ALARM_NOSPACE));
    int64_t rev = ms_store_revision(f->s);
    assert_int_equal(fx_apply(f, put)->err, MS_ENOSPACE);
    assert_int_equal(fx_apply(f, op_grant(12, 60))->err, MS_ENOSPACE);
    assert_int_equal(fx_apply(f, op_txn(NULL, 0, NULL, 0, &put, 1))->err,
                     MS_ENOSPACE);
    assert_int_equal(ms_store_revision(f->s), rev);
    assert_int_equal(fx_apply(f, op_del("key/000005", BNONE))->err, 0);
    assert_int_equal(fx_apply(f, op_compact(rev))->err, 0);
    assert_int_equal(ms_fsm_apply(&fsm, ++f->index, bad, sizeof bad), 0);
    assert_int_equal(fsm.stats.entries_rejected, 1);
    assert_int_equal(fsm.alarms.n, 1);

    assert_int_equal(ms_fsm_snapshot(&fsm, &snap), 0);
    ms_fsm_init(&fsm2, g->s, 2, 1);
    assert_int_equal(ms_fsm_restore(&fsm2, snap.data, snap.len), 0);
    assert_int_equal(fsm2.alarms.n, 1);
    assert_int_equal(fsm2.alarms.a[0].member_id, 5);
    assert_int_equal(fsm2.members.n, 1);
    g->index = ms_store_applied_index(g->s);
    assert_int_equal(fx_apply(g, put)->err, MS_ENOSPACE);

    apply_alarm(f, &fsm, false, 5);
    assert_int_equal(fsm.alarms.n, 0);
    assert_int_equal(fx_apply(f, put)->err, 0);
    ms_buf_free(&snap);
    fx_free(f);
    fx_free(g);
}

/* cancel makes collect fail at once; end after it leaves no child. */
static void test_cancel_then_end(void **state)
{
    struct fx *f = fx_new(MS_BACKEND_MEMORY);
    struct ms_fsm fsm;
    struct ms_fsm_snapjob *job;
    const uint8_t *buf;
    size_t len;
    char err[MS_ERRMSG_SIZE];
    (void)state;

    build_state(f, &fsm, 1000);
    assert_int_equal(ms_fsm_snapshot_begin(&fsm, &job), 0);
    ms_fsm_snapshot_cancel(job);
    assert_int_equal(ms_fsm_snapshot_collect(job, &buf, &len, err, sizeof err),
                     MS_ECANCELED);
    assert_null(buf);
    fsm.stats.snapshots_taken = 0;
    ms_fsm_snapshot_end(&fsm, job, false);
    assert_int_equal(fsm.stats.snapshots_taken, 0);
    assert_true(no_children());
    fx_free(f);
}

/* end without collect (libraft could not queue the work) reaps the child;
 * a second collect is refused. */
static void test_end_without_collect(void **state)
{
    struct fx *f = fx_new(MS_BACKEND_MEMORY);
    struct ms_fsm fsm;
    struct ms_fsm_snapjob *job;
    const uint8_t *buf;
    size_t len;
    char err[MS_ERRMSG_SIZE];
    (void)state;

    build_state(f, &fsm, 1000);
    assert_int_equal(ms_fsm_snapshot_begin(&fsm, &job), 0);
    ms_fsm_snapshot_end(&fsm, job, false);
    assert_true(no_children());

    assert_int_equal(ms_fsm_snapshot_begin(&fsm, &job), 0);
    assert_int_equal(ms_fsm_snapshot_collect(job, &buf, &len, err, sizeof err),
                     0);
    assert_int_equal(ms_fsm_snapshot_collect(job, &buf, &len, err, sizeof err),
                     MS_EINVAL);
    ms_fsm_snapshot_end(&fsm, job, true);
    assert_true(no_children());
    fx_free(f);
}

static uint64_t auth_entry(struct ms_fsm *fsm, uint64_t index,
                           const struct ms_auth_cmd *c, int want)
{
    struct ms_buf b = MS_BUF_INIT;
    struct ms_fsm_auth_result *ar = NULL;

    assert_int_equal(ms_fsm_encode_auth(c, &b), 0);
    assert_int_equal(ms_fsm_apply_ex(fsm, index, b.data, b.len, &ar), 0);
    assert_non_null(ar);
    assert_int_equal(ar->rc, want);
    uint64_t rev = ar->revision;
    free(ar);
    ms_buf_free(&b);
    return rev;
}

/* Auth entries apply with etcd's outcome handed back as the result, do not
 * move the store revision, and the auth state travels in snapshots (with
 * the member table); a snapshot without auth restores auth off. */
static void test_auth_entries_and_snapshot(void **state)
{
    struct fx *f = fx_new(MS_BACKEND_MEMORY), *g = fx_new(MS_BACKEND_MEMORY);
    struct ms_fsm fsm, fsm2;
    struct ms_buf snap = MS_BUF_INIT, plain_snap = MS_BUF_INIT;
    struct ms_auth_cmd c = {
        .type = MS_AUTH_CMD_USER_ADD, .user = "root", .hash = "x"};
    uint64_t i;
    (void)state;

    build_state(f, &fsm, 10);
    fsm.snapshot_inline = true;
    assert_int_equal(ms_fsm_snapshot(&fsm, &plain_snap), 0);
    int64_t rev = ms_store_revision(f->s);
    i = ms_store_applied_index(f->s);
    assert_int_equal(auth_entry(&fsm, ++i, &c, 0), 1);
    auth_entry(&fsm, ++i, &c, MS_AUTH_EUSER_EXISTS);
    c = (struct ms_auth_cmd){
        .type = MS_AUTH_CMD_USER_GRANT, .user = "root", .role = "root"};
    auth_entry(&fsm, ++i, &c, 0);
    c = (struct ms_auth_cmd){.type = MS_AUTH_CMD_ENABLE};
    assert_int_equal(auth_entry(&fsm, ++i, &c, 0), 3);
    assert_int_equal(ms_store_revision(f->s), rev);
    assert_int_equal(ms_store_applied_index(f->s), i);
    /* a malformed auth entry is a result, not an fsm failure */
    const uint8_t bad[] = {MS_CODEC_FORMAT_VERSION, MS_ENTRY_AUTH, '{'};
    assert_int_equal(ms_fsm_apply(&fsm, ++i, bad, sizeof bad), 0);

    assert_int_equal(ms_fsm_snapshot(&fsm, &snap), 0);
    ms_fsm_init(&fsm2, g->s, 2, 1);
    assert_int_equal(ms_fsm_restore(&fsm2, snap.data, snap.len), 0);
    assert_true(fsm2.auth.enabled);
    assert_int_equal(fsm2.auth.revision, 3);
    assert_true(ms_auth_is_root(&fsm2.auth, "root"));
    assert_int_equal(fsm2.members.n, 1);
    /* an older snapshot: no auth */
    assert_int_equal(ms_fsm_restore(&fsm2, plain_snap.data, plain_snap.len), 0);
    assert_false(fsm2.auth.enabled);
    assert_int_equal(fsm2.auth.n_users, 0);
    assert_int_equal(fsm2.members.n, 1);
    ms_fsm_free(&fsm);
    ms_fsm_free(&fsm2);
    ms_buf_free(&snap);
    ms_buf_free(&plain_snap);
    fx_free(f);
    fx_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_forked),
        cmocka_unit_test(test_memory_inline),
        cmocka_unit_test(test_rocksdb_view),
        cmocka_unit_test(test_rocksdb_inline),
        cmocka_unit_test(test_rocksdb_view_threaded),
        cmocka_unit_test(test_collected_bytes_restore),
        cmocka_unit_test(test_cancel_then_end),
        cmocka_unit_test(test_end_without_collect),
        cmocka_unit_test(test_alarm_entries),
        cmocka_unit_test(test_auth_entries_and_snapshot),
    };
    alarm(120); /* hard stop should a collect hang */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
