/* test_store.c - one etcd v3 KV conformance suite, run against every store
 * backend (memory, and rocksdb when it is built in). */
#include "store_fixture.h"

/* ------------------------------------------------------------------------
 * revisions and versions
 * ---------------------------------------------------------------------- */

/* An empty store is at revision 1; put/put/delete/put make 2, 3, 4, 5 with
 * create_revision, mod_revision and version as etcd. */
static void test_revision_arithmetic(void **state)
{
    FX(state);
    struct ms_result *r;

    assert_int_equal(ms_store_revision(f->s), 1);
    assert_int_equal(ms_store_key_count(f->s), 0);
    r = fx_apply(f, op_put("a", "1"));
    assert_int_equal(r->err, 0);
    assert_int_equal(r->revision, 2);
    r = fx_apply(f, op_put("a", "2"));
    assert_int_equal(r->revision, 3);
    r = fx_get(f, "a", BNONE, 0);
    assert_int_equal(r->u.range.n_kvs, 1);
    assert_int_equal(r->u.range.kvs[0].create_revision, 2);
    assert_int_equal(r->u.range.kvs[0].mod_revision, 3);
    assert_int_equal(r->u.range.kvs[0].version, 2);
    assert_bytes(r->u.range.kvs[0].value, "2");
    r = fx_apply(f, op_del("a", BNONE));
    assert_int_equal(r->u.delete_range.deleted, 1);
    assert_int_equal(r->revision, 4);
    assert_int_equal(ms_store_key_count(f->s), 0);
    r = fx_apply(f, op_put("a", "3"));
    assert_int_equal(r->revision, 5);
    r = fx_get(f, "a", BNONE, 0);
    assert_int_equal(r->revision, 5);
    assert_int_equal(r->u.range.kvs[0].create_revision, 5);
    assert_int_equal(r->u.range.kvs[0].mod_revision, 5);
    assert_int_equal(r->u.range.kvs[0].version, 1);
    assert_int_equal(ms_store_revision(f->s), 5);
    assert_int_equal(ms_store_key_count(f->s), 1);
}

/* Ops that change nothing do not advance the revision: a range, a delete of
 * a missing key, a txn whose branch writes nothing, a lease grant. */
static void test_noop_keeps_revision(void **state)
{
    FX(state);
    struct ms_compare c = cmp_num("x", MS_CMP_VERSION, MS_CMP_EQUAL, 0);
    struct ms_op get = op_range("x", BNONE);
    struct ms_result *r;

    fx_apply(f, op_put("x", "1"));
    r = fx_apply(f, op_range("x", BNONE));
    assert_int_equal(r->revision, 2);
    r = fx_apply(f, op_del("missing", BNONE));
    assert_int_equal(r->err, 0);
    assert_int_equal(r->u.delete_range.deleted, 0);
    assert_int_equal(r->revision, 2);
    r = fx_apply(f, op_txn(&c, 1, NULL, 0, &get, 1));
    assert_false(r->u.txn.succeeded);
    assert_int_equal(r->revision, 2);
    r = fx_apply(f, op_grant(7, 10));
    assert_int_equal(r->err, 0);
    assert_int_equal(r->revision, 2);
    assert_int_equal(ms_store_revision(f->s), 2);
}

/* Each op of a batch that writes gets its own revision; results report the
 * revision after each op. */
static void test_batch_revisions(void **state)
{
    FX(state);
    struct ms_op ops[4] = {op_put("a", "1"), op_put("b", "1"),
                           op_range("a", B("z")), op_put("a", "2")};
    struct ms_result *r = fx_apply_n(f, ops, 4);

    assert_int_equal(r[0].revision, 2);
    assert_int_equal(r[1].revision, 3);
    assert_int_equal(r[2].revision, 3);
    assert_int_equal(r[2].u.range.count, 2);
    assert_int_equal(r[3].revision, 4);
    assert_int_equal(ms_store_applied_index(f->s), f->index);
}

/* ------------------------------------------------------------------------
 * put
 * ---------------------------------------------------------------------- */

/* prev_kv returns the replaced version (none for a new key). */
static void test_put_prev_kv(void **state)
{
    FX(state);
    struct ms_op op = op_put("k", "v1");
    struct ms_result *r;

    op.u.put.prev_kv = true;
    r = fx_apply(f, op);
    assert_false(r->u.put.has_prev);
    op.u.put.value = B("v2");
    r = fx_apply(f, op);
    assert_true(r->u.put.has_prev);
    assert_bytes(r->u.put.prev_kv.key, "k");
    assert_bytes(r->u.put.prev_kv.value, "v1");
    assert_int_equal(r->u.put.prev_kv.mod_revision, 2);
    assert_int_equal(r->u.put.prev_kv.version, 1);
}

/* ignore_value / ignore_lease keep the current value / lease; on a missing
 * key they fail with MS_ENOTFOUND; giving a value (lease) with them is
 * MS_EINVAL. */
static void test_put_ignore(void **state)
{
    FX(state);
    struct ms_op op;
    struct ms_result *r;

    fx_apply(f, op_grant(5, 60));
    fx_apply(f, op_put_lease("k", "keep", 5));
    op = op_put("k", "");
    op.u.put.ignore_value = true;
    op.u.put.lease = 0;
    r = fx_apply(f, op);
    assert_int_equal(r->err, 0);
    r = fx_get(f, "k", BNONE, 0);
    assert_bytes(r->u.range.kvs[0].value, "keep");
    assert_int_equal(r->u.range.kvs[0].lease, 0); /* lease not kept */
    assert_int_equal(r->u.range.kvs[0].version, 2);

    fx_apply(f, op_put_lease("k", "keep", 5));
    op = op_put("k", "new");
    op.u.put.ignore_lease = true;
    r = fx_apply(f, op);
    assert_int_equal(r->err, 0);
    r = fx_get(f, "k", BNONE, 0);
    assert_bytes(r->u.range.kvs[0].value, "new");
    assert_int_equal(r->u.range.kvs[0].lease, 5);

    int64_t rev = ms_store_revision(f->s);
    op = op_put("missing", "");
    op.u.put.ignore_value = true;
    r = fx_apply(f, op);
    assert_int_equal(r->err, MS_ENOTFOUND);
    op.u.put.ignore_value = false;
    op.u.put.ignore_lease = true;
    r = fx_apply(f, op);
    assert_int_equal(r->err, MS_ENOTFOUND);
    op = op_put("k", "x");
    op.u.put.ignore_value = true;
    r = fx_apply(f, op);
    assert_int_equal(r->err, MS_EINVAL);
    op = op_put_lease("k", "x", 5);
    op.u.put.ignore_lease = true;
    r = fx_apply(f, op);
    assert_int_equal(r->err, MS_EINVAL);
    assert_int_equal(ms_store_revision(f->s), rev);
}

/* A put naming a lease that does not exist fails with MS_ELEASE. */
static void test_put_unknown_lease(void **state)
{
    FX(state);
    struct ms_result *r = fx_apply(f, op_put_lease("k", "v", 99));

    assert_int_equal(r->err, MS_ELEASE);
    assert_int_equal(r->revision, 1);
    assert_int_equal(ms_store_key_count(f->s), 0);
}

/* Empty keys fail with MS_EKEYEMPTY in put, delete, range and compares. */
static void test_empty_key(void **state)
{
    FX(state);
    struct ms_compare c = cmp_num("", MS_CMP_VERSION, MS_CMP_EQUAL, 0);
    struct ms_op ops[4] = {op_put("", "v"), op_del("", BNONE),
                           op_range("", BNONE),
                           op_txn(&c, 1, NULL, 0, NULL, 0)};
    struct ms_result *r = fx_apply_n(f, ops, 4);

    for (int i = 0; i < 4; i++)
        assert_int_equal(r[i].err, MS_EKEYEMPTY);
    assert_int_equal(ms_store_revision(f->s), 1);
}

/* Key and value sizes and txn op counts beyond the limits fail (etcd's
 * nested budget: a nested txn gets what its parent leaves). */
static void test_limits(void **state)
{
    FX(state);
    struct ms_store_options o = {.backend = f->backend,
                                 .path = f->dir,
                                 .max_key_size = 4,
                                 .max_value_size = 8,
                                 .max_txn_ops = 3};
    char err[MS_ERRMSG_SIZE];
    struct ms_op puts[4] = {op_put("a", "1"), op_put("b", "1"),
                            op_put("c", "1"), op_put("d", "1")};
    struct ms_op inner, outer[2];
    struct ms_result *r;

    /* reopen the fixture's store with small limits */
    ms_store_close(f->s);
    f->s = NULL;
    assert_int_equal(ms_store_open(&o, &f->s, err, sizeof(err)), 0);

    r = fx_apply(f, op_put("toolong", "v"));
    assert_int_equal(r->err, MS_ETOOLARGE);
    r = fx_apply(f, op_put("k", "123456789"));
    assert_int_equal(r->err, MS_ETOOLARGE);
    r = fx_apply(f, op_put("k", "12345678"));
    assert_int_equal(r->err, 0);
    r = fx_apply(f, op_txn(NULL, 0, puts, 4, NULL, 0));
    assert_int_equal(r->err, MS_ETOOMANYOPS);
    r = fx_apply(f, op_txn(NULL, 0, NULL, 0, puts, 4));
    assert_int_equal(r->err, MS_ETOOMANYOPS);
    r = fx_apply(f, op_txn(NULL, 0, puts, 3, NULL, 0));
    assert_int_equal(r->err, 0);
    /* outer uses 2 of 3: the nested txn may hold 1 op, not 2 */
    inner = op_txn(NULL, 0, puts + 2, 2, NULL, 0);
    outer[0] = op_put("x", "1");
    outer[1] = inner;
    r = fx_apply(f, op_txn(NULL, 0, outer, 2, NULL, 0));
    assert_int_equal(r->err, MS_ETOOMANYOPS);
    inner = op_txn(NULL, 0, puts + 2, 1, NULL, 0);
    outer[1] = inner;
    r = fx_apply(f, op_txn(NULL, 0, outer, 2, NULL, 0));
    assert_int_equal(r->err, 0);
}

/* ------------------------------------------------------------------------
 * range
 * ---------------------------------------------------------------------- */

static void put_keys(struct fx *f, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(fx_apply(f, op_put(keys[i], keys[i]))->err, 0);
}

/* range_end forms: empty = the key, "\0" = every key >= key, else
 * [key, end); an end <= key matches nothing. */
static void test_range_end_forms(void **state)
{
    FX(state);
    static const char *const keys[] = {"a", "a/1", "a/2", "b", "c"};
    struct ms_result *r;

    put_keys(f, keys, 5);
    r = fx_get(f, "a", BNONE, 0);
    assert_int_equal(r->u.range.n_kvs, 1);
    assert_int_equal(r->u.range.count, 1);
    r = fx_get(f, "a/", B("a0"), 0);
    assert_int_equal(r->u.range.n_kvs, 2);
    assert_bytes(r->u.range.kvs[0].key, "a/1");
    assert_bytes(r->u.range.kvs[1].key, "a/2");
    r = fx_get(f, "b", B0, 0);
    assert_int_equal(r->u.range.n_kvs, 2);
    assert_bytes(r->u.range.kvs[0].key, "b");
    assert_bytes(r->u.range.kvs[1].key, "c");
    r = fx_all(f, 0);
    assert_int_equal(r->u.range.count, 5);
    r = fx_get(f, "c", B("a"), 0);
    assert_int_equal(r->u.range.count, 0);
    assert_int_equal(r->u.range.n_kvs, 0);
    r = fx_get(f, "zz", BNONE, 0);
    assert_int_equal(r->u.range.count, 0);
}

/* Keys with 0x00 and 0xFF bytes order by memcmp, shorter first. */
static void test_range_binary_keys(void **state)
{
    FX(state);
    static const uint8_t k[][3] = {
        {'a', 0x00, 0}, {'a', 0x00, 0x00}, {'a', 0x01, 0}, {'a', 0xFF, 0}};
    static const size_t kl[] = {2, 3, 2, 2};
    struct ms_op ops[5];
    struct ms_result *r;

    for (int i = 0; i < 4; i++) {
        ops[i] = op_put("x", "v");
        ops[i].u.put.key = (struct ms_bytes){k[i], kl[i]};
    }
    ops[4] = op_put("a", "v");
    fx_apply_n(f, ops, 5);
    r = fx_get(f, "a", B("b"), 0);
    assert_int_equal(r->u.range.n_kvs, 5);
    assert_int_equal(r->u.range.kvs[0].key.len, 1);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(r->u.range.kvs[i + 1].key.len, kl[i]);
        assert_memory_equal(r->u.range.kvs[i + 1].key.data, k[i], kl[i]);
    }
}

/* limit returns the first keys and sets more; count is the total matching,
 * ignoring the limit; count_only returns no kvs; keys_only no values. */
static void test_range_limit_count(void **state)
{
    FX(state);
    static const char *const keys[] = {"k1", "k2", "k3", "k4", "k5"};
    struct ms_op op = op_range("k", B("l"));
    struct ms_result *r;

    put_keys(f, keys, 5);
    op.u.range.limit = 2;
    r = fx_read(f, op.u.range);
    assert_int_equal(r->u.range.n_kvs, 2);
    assert_true(r->u.range.more);
    assert_int_equal(r->u.range.count, 5);
    assert_bytes(r->u.range.kvs[1].key, "k2");
    op.u.range.limit = 5;
    r = fx_read(f, op.u.range);
    assert_int_equal(r->u.range.n_kvs, 5);
    assert_false(r->u.range.more);
    op.u.range.limit = 0;
    op.u.range.count_only = true;
    r = fx_read(f, op.u.range);
    assert_int_equal(r->u.range.n_kvs, 0);
    assert_int_equal(r->u.range.count, 5);
    op.u.range.count_only = false;
    op.u.range.keys_only = true;
    r = fx_read(f, op.u.range);
    assert_int_equal(r->u.range.n_kvs, 5);
    assert_int_equal(r->u.range.kvs[0].value.len, 0);
    assert_int_equal(r->u.range.kvs[0].version, 1);
}

/* Sort by every target in both orders; no order with a target other than
 * KEY sorts ascending; limit applies after sorting. */
static void test_range_sort(void **state)
{
    FX(state);
    struct ms_op op = op_range("s", B("t"));
    struct ms_result *r;

    /* s1: create 2, mod 5, version 2, value "c"
     * s2: create 3, mod 3, version 1, value "a"
     * s3: create 4, mod 4, version 1, value "b" */
    fx_apply(f, op_put("s1", "x"));
    fx_apply(f, op_put("s2", "a"));
    fx_apply(f, op_put("s3", "b"));
    fx_apply(f, op_put("s1", "c"));

    struct {
        enum ms_sort_order o;
        enum ms_sort_target t;
        const char *first, *last;
    } cases[] = {
        {MS_SORT_NONE, MS_SORT_KEY, "s1", "s3"},
        {MS_SORT_ASCEND, MS_SORT_KEY, "s1", "s3"},
        {MS_SORT_DESCEND, MS_SORT_KEY, "s3", "s1"},
        {MS_SORT_ASCEND, MS_SORT_CREATE, "s1", "s3"},
        {MS_SORT_DESCEND, MS_SORT_CREATE, "s3", "s1"},
        {MS_SORT_ASCEND, MS_SORT_MOD, "s2", "s1"},
        {MS_SORT_DESCEND, MS_SORT_MOD, "s1", "s2"},
        {MS_SORT_NONE, MS_SORT_MOD, "s2", "s1"}, /* defaults to ascend */
        {MS_SORT_ASCEND, MS_SORT_VALUE, "s2", "s1"},
        {MS_SORT_DESCEND, MS_SORT_VALUE, "s1", "s2"},
        {MS_SORT_DESCEND, MS_SORT_VERSION, "s1", "s3"}, /* tie: by key */
        {MS_SORT_ASCEND, MS_SORT_VERSION, "s2", "s1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        op.u.range.sort_order = cases[i].o;
        op.u.range.sort_target = cases[i].t;
        op.u.range.limit = 0;
        r = fx_read(f, op.u.range);
        assert_int_equal(r->u.range.n_kvs, 3);
        assert_bytes(r->u.range.kvs[0].key, cases[i].first);
        assert_bytes(r->u.range.kvs[2].key, cases[i].last);
        op.u.range.limit = 1;
        r = fx_read(f, op.u.range);
        assert_int_equal(r->u.range.n_kvs, 1);
        assert_true(r->u.range.more);
        assert_bytes(r->u.range.kvs[0].key, cases[i].first);
    }
    op.u.range.sort_order = 7;
    r = fx_read(f, op.u.range);
    assert_int_equal(r->err, MS_EINVAL);
}

/* min/max mod and create revision filters drop kvs but not the count. */
static void test_range_filters(void **state)
{
    FX(state);
    static const char *const keys[] = {"f1", "f2", "f3", "f4"}; /* 2..5 */
    struct ms_op op = op_range("f", B("g"));
    struct ms_result *r;

    put_keys(f, keys, 4);
    fx_apply(f, op_put("f1", "again")); /* f1: create 2, mod 6 */
    op.u.range.min_mod_revision = 4;
    r = fx_read(f, op.u.range);
    assert_int_equal(r->u.range.count, 4);
    assert_int_equal(r->u.range.n_kvs, 3); /* f1 (6), f3 (4), f4 (5) */
    assert_bytes(r->u.range.kvs[0].key, "f1");
    op.u.range.max_mod_revision = 5;
    r = fx_read(f, op.u.range);
    assert_int_equal(r->u.range.n_kvs, 2);
    assert_bytes(r->u.range.kvs[0].key, "f3");
    op.u.range.min_mod_revision = op.u.range.max_mod_revision = 0;
    op.u.range.min_create_revision = 3;
    op.u.range.max_create_revision = 4;
    r = fx_read(f, op.u.range);
    assert_int_equal(r->u.range.n_kvs, 2);
    assert_bytes(r->u.range.kvs[0].key, "f2");
    assert_bytes(r->u.range.kvs[1].key, "f3");
    op.u.range.limit = 1;
    r = fx_read(f, op.u.range);
    assert_int_equal(r->u.range.n_kvs, 1);
    assert_true(r->u.range.more);
}

/* ------------------------------------------------------------------------
 * history and compaction
 * ---------------------------------------------------------------------- */

/* A range at an older revision sees the state of that revision (deleted
 * keys absent); a future revision fails with MS_EFUTUREREV. */
static void test_history_reads(void **state)
{
    FX(state);
    struct ms_result *r;

    fx_apply(f, op_put("a", "v1"));  /* 2 */
    fx_apply(f, op_put("b", "b1"));  /* 3 */
    fx_apply(f, op_put("a", "v2"));  /* 4 */
    fx_apply(f, op_del("a", BNONE)); /* 5 */
    fx_apply(f, op_put("a", "v3"));  /* 6 */

    r = fx_get(f, "a", BNONE, 1);
    assert_int_equal(r->u.range.count, 0);
    assert_int_equal(r->revision, 6);
    r = fx_get(f, "a", BNONE, 2);
    assert_bytes(r->u.range.kvs[0].value, "v1");
    r = fx_get(f, "a", BNONE, 3);
    assert_bytes(r->u.range.kvs[0].value, "v1");
    r = fx_get(f, "a", BNONE, 4);
    assert_bytes(r->u.range.kvs[0].value, "v2");
    assert_int_equal(r->u.range.kvs[0].version, 2);
    r = fx_get(f, "a", BNONE, 5);
    assert_int_equal(r->u.range.count, 0);
    r = fx_get(f, "a", BNONE, 6);
    assert_bytes(r->u.range.kvs[0].value, "v3");
    assert_int_equal(r->u.range.kvs[0].version, 1);
    r = fx_get(f, "a", B("z"), 2);
    assert_int_equal(r->u.range.count, 1);
    r = fx_get(f, "a", B("z"), 4);
    assert_int_equal(r->u.range.count, 2);
    r = fx_get(f, "a", B("z"), 5);
    assert_int_equal(r->u.range.count, 1);
    assert_bytes(r->u.range.kvs[0].key, "b");
    r = fx_get(f, "a", B("z"), 7);
    assert_int_equal(r->err, MS_EFUTUREREV);
}

/* Compaction: reads below it fail with MS_ECOMPACTED, at or above it they
 * still see history; compacting again at or below fails, beyond the
 * current revision fails with MS_EFUTUREREV; it does not bump the
 * revision; a key deleted before it is gone from history. */
static void test_compaction(void **state)
{
    FX(state);
    struct ms_result *r;

    fx_apply(f, op_put("a", "v1"));  /* 2 */
    fx_apply(f, op_put("a", "v2"));  /* 3 */
    fx_apply(f, op_put("d", "d1"));  /* 4 */
    fx_apply(f, op_del("d", BNONE)); /* 5 */
    fx_apply(f, op_put("a", "v3"));  /* 6 */

    r = fx_apply(f, op_compact(7));
    assert_int_equal(r->err, MS_EFUTUREREV);
    r = fx_apply(f, op_compact(5));
    assert_int_equal(r->err, 0);
    assert_int_equal(r->revision, 6);
    assert_int_equal(ms_store_revision(f->s), 6);
    assert_int_equal(ms_store_compact_revision(f->s), 5);
    r = fx_apply(f, op_compact(5));
    assert_int_equal(r->err, MS_ECOMPACTED);
    r = fx_apply(f, op_compact(4));
    assert_int_equal(r->err, MS_ECOMPACTED);

    r = fx_get(f, "a", BNONE, 4);
    assert_int_equal(r->err, MS_ECOMPACTED);
    r = fx_get(f, "a", BNONE, 5);
    assert_int_equal(r->err, 0);
    assert_bytes(r->u.range.kvs[0].value, "v2");
    r = fx_get(f, "a", B0, 5);
    assert_int_equal(r->u.range.count, 1); /* d was deleted at 5 */
    r = fx_get(f, "a", BNONE, 6);
    assert_bytes(r->u.range.kvs[0].value, "v3");
    assert_int_equal(r->u.range.kvs[0].version, 3);

    /* d starts over */
    fx_apply(f, op_put("d", "d2"));
    r = fx_get(f, "d", BNONE, 0);
    assert_int_equal(r->u.range.kvs[0].version, 1);
    assert_int_equal(r->u.range.kvs[0].create_revision, 7);
    assert_int_equal(ms_store_key_count(f->s), 2);

    /* compacting everything keeps the current state */
    r = fx_apply(f, op_compact(7));
    assert_int_equal(r->err, 0);
    r = fx_all(f, 0);
    assert_int_equal(r->u.range.count, 2);
    r = fx_get(f, "a", BNONE, 6);
    assert_int_equal(r->err, MS_ECOMPACTED);
}

/* Compaction and range deletes over more keys than one internal chunk. */
static void test_many_keys(void **state)
{
    FX(state);
    enum { N = 2500 };
    struct ms_op *ops = calloc(N, sizeof(*ops));
    char(*keys)[16] = calloc(N, 16);
    struct ms_result *r;

    assert_non_null(ops);
    assert_non_null(keys);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], 16, "m%05d", i);
        ops[i] = op_put(keys[i], "v");
    }
    fx_apply_n(f, ops, N); /* 2 .. N+1 */
    fx_apply_n(f, ops, N); /* N+2 .. 2N+1 */
    r = fx_apply(f, op_del("m", B("n")));
    assert_int_equal(r->u.delete_range.deleted, N);
    assert_int_equal(r->revision, 2 * N + 2);
    assert_int_equal(ms_store_key_count(f->s), 0);
    r = fx_get(f, "m", B("n"), 2 * N + 1);
    assert_int_equal(r->u.range.count, N);
    assert_int_equal(r->u.range.kvs[N - 1].version, 2);
    r = fx_apply(f, op_compact(N + 1));
    assert_int_equal(r->err, 0);
    r = fx_get(f, "m", B("n"), N + 1);
    assert_int_equal(r->u.range.count, N);
    assert_int_equal(r->u.range.kvs[0].version, 1);
    r = fx_apply(f, op_compact(2 * N + 2));
    assert_int_equal(r->err, 0);
    r = fx_get(f, "m", B("n"), 2 * N + 2);
    assert_int_equal(r->u.range.count, 0);
    fx_apply(f, op_put("m00001", "again"));
    r = fx_get(f, "m00001", BNONE, 0);
    assert_int_equal(r->u.range.kvs[0].version, 1);
    free(ops);
    free(keys);
}

/* Both stores apply op (the reference sweeps its compactions at once). */
static void apply_both(struct fx *f, struct fx *ref, struct ms_op op)
{
    char err[MS_ERRMSG_SIZE];

    fx_apply(f, op);
    fx_apply(ref, op);
    if (op.type == MS_OP_COMPACT &&
        ms_store_compact_finish(ref->s, err, sizeof(err)) != 0)
        fail_msg("compact: %s", err);
}

static void assert_same_snapshot(struct fx *a, struct fx *b)
{
    struct ms_buf sa = MS_BUF_INIT, sb = MS_BUF_INIT;

    fx_save(a, NULL, &sa);
    fx_save(b, NULL, &sb);
    assert_int_equal(sa.len, sb.len);
    assert_memory_equal(sa.data, sb.data, sa.len);
    ms_buf_free(&sa);
    ms_buf_free(&sb);
}

/* Compaction in steps: it takes effect at once (reads below fail, the
 * snapshot already leaves the unreachable versions out), the sweep runs in
 * bounded steps with writes and deletes between them, and ends with the
 * same state and size as a compaction swept at once. */
static void test_compaction_steps(void **state)
{
    FX(state);
    enum { N = 300 };
    struct fx *ref = fx_new(f->backend);
    char keys[N][16], err[MS_ERRMSG_SIZE];
    struct ms_result *r;
    bool more = true;
    int steps = 0, w = 0;

    assert_non_null(ref);
    for (int i = 0; i < N; i++)
        snprintf(keys[i], sizeof(keys[i]), "k%03d", i);
    for (int round = 0; round < 4; round++)
        for (int i = 0; i < N; i++)
            apply_both(f, ref,
                       round == 2 && i % 10 == 0 ? op_del(keys[i], BNONE)
                                                 : op_put(keys[i], "v"));
    /* 2 .. 4N+1; compact in the middle of round 3 */
    apply_both(f, ref, op_compact(2 * N + N / 2));
    assert_true(ms_store_compact_pending(f->s));
    assert_false(ms_store_compact_pending(ref->s));
    r = fx_get(f, "k", B("l"), 2 * N + N / 2 - 1);
    assert_int_equal(r->err, MS_ECOMPACTED);
    assert_same_snapshot(f, ref);

    while (more) {
        assert_int_equal(
            ms_store_compact_step(f->s, 7, &more, err, sizeof(err)), 0);
        steps++;
        /* writes between steps: puts, deletes, a put over a delete */
        int i = (w * 37) % N;
        apply_both(f, ref,
                   w % 3 == 0 ? op_del(keys[i], BNONE) : op_put(keys[i], "w"));
        w++;
    }
    /* 3N history and N current records, each looked at once (deletes
     * between steps leave tombstones, so the current records are swept
     * too): a step that looked at more than its 7 would end in fewer */
    assert_true(steps >= (3 * N + N) / 7);
    assert_false(ms_store_compact_pending(f->s));
    /* an idle engine never holds the sweep back */
    assert_false(ms_store_compact_should_wait(f->s));
    assert_same_snapshot(f, ref);
    if (f->backend == MS_BACKEND_MEMORY)
        assert_int_equal(ms_store_bytes(f->s), ms_store_bytes(ref->s));
    r = fx_get(f, "k", B("l"), 2 * N + N / 2);
    assert_int_equal(r->err, 0);
    assert_int_equal(r->u.range.count, N - N / 20);
    /* a second compaction while one is under way restarts the sweep */
    apply_both(f, ref, op_compact(3 * N));
    assert_int_equal(ms_store_compact_step(f->s, 5, &more, err, sizeof(err)),
                     0);
    apply_both(f, ref, op_compact(4 * N));
    assert_int_equal(ms_store_compact_finish(f->s, err, sizeof(err)), 0);
    assert_same_snapshot(f, ref);
    if (f->backend == MS_BACKEND_MEMORY)
        assert_int_equal(ms_store_bytes(f->s), ms_store_bytes(ref->s));
    fx_free(ref);
}

/* Collected events, flattened to text: "rev key value|prev" per line. */
static int collect_ev(void *ctx, const struct ms_store_event *ev)
{
    struct ms_buf *b = ctx;

    ms_buf_printf(b, "%lld %.*s %s %.*s|", (long long)ev->kv.mod_revision,
                  (int)ev->kv.key.len, (const char *)ev->kv.key.data,
                  ev->is_delete ? "DEL" : "PUT", (int)ev->kv.value.len,
                  (const char *)ev->kv.value.data);
    if (ev->has_prev)
        ms_buf_printf(b, "%lld %.*s", (long long)ev->prev_kv.mod_revision,
                      (int)ev->prev_kv.value.len,
                      (const char *)ev->prev_kv.value.data);
    return ms_buf_putc(b, '\n');
}

static void changes(struct fx *f, int64_t from, int64_t to, bool prev,
                    struct ms_buf *out)
{
    char err[MS_ERRMSG_SIZE];

    ms_buf_reset(out);
    assert_int_equal(ms_store_changes(f->s, B0, B0, from, to, prev, collect_ev,
                                      out, err, sizeof(err)),
                     0);
}

/* ms_store_changes over a window [from, to] gives exactly the events of the
 * whole history whose revision is in the window, with the same prev_kv,
 * for windows far behind the current revision too. */
static void test_changes_windows(void **state)
{
    FX(state);
    static const char *const keys[] = {"a", "b", "c"};
    struct ms_buf all = MS_BUF_INIT, win = MS_BUF_INIT, want = MS_BUF_INIT;
    char v[16];
    int64_t rev;

    for (int i = 0; i < 300; i++) {
        snprintf(v, sizeof(v), "v%d", i);
        if (i % 7 == 3)
            fx_apply(f, op_del(keys[i % 3], BNONE));
        else
            fx_apply(f, op_put(keys[i % 3], v));
    }
    rev = ms_store_revision(f->s);
    for (int prev = 0; prev < 2; prev++) {
        changes(f, 1, rev, prev, &all);
        assert_true(all.len > 300 * 10);
        for (int64_t from = 1; from <= rev; from += 37) {
            for (int64_t to = from; to <= rev + 5; to += 53) {
                ms_buf_reset(&want);
                for (size_t off = 0; off < all.len;) {
                    const char *line = (const char *)all.data + off;
                    const char *nl = memchr(line, '\n', all.len - off);
                    long long r = strtoll(line, NULL, 10);
                    size_t n = (size_t)(nl - line) + 1;
                    if (r >= from && r <= to)
                        ms_buf_append(&want, line, n);
                    off += n;
                }
                changes(f, from, to, prev, &win);
                assert_int_equal(win.len, want.len);
                assert_memory_equal(win.data, want.data, want.len);
            }
        }
    }
    ms_buf_free(&all);
    ms_buf_free(&win);
    ms_buf_free(&want);
}

/* ------------------------------------------------------------------------
 * delete range
 * ---------------------------------------------------------------------- */

/* DeleteRange reports the count and, when asked, the deleted kvs; all keys
 * go at one revision. */
static void test_delete_range(void **state)
{
    FX(state);
    static const char *const keys[] = {"d1", "d2", "d3", "e"};
    struct ms_op op = op_del("d", B("e"));
    struct ms_result *r;

    put_keys(f, keys, 4);
    op.u.delete_range.prev_kv = true;
    r = fx_apply(f, op);
    assert_int_equal(r->u.delete_range.deleted, 3);
    assert_int_equal(r->u.delete_range.n_prev_kvs, 3);
    assert_bytes(r->u.delete_range.prev_kvs[2].key, "d3");
    assert_bytes(r->u.delete_range.prev_kvs[2].value, "d3");
    assert_int_equal(r->u.delete_range.prev_kvs[2].mod_revision, 4);
    assert_int_equal(r->revision, 6);
    r = fx_get(f, "d", B0, 0);
    assert_int_equal(r->u.range.count, 1);
    r = fx_apply(f, op_del("a", B0));
    assert_int_equal(r->u.delete_range.deleted, 1);
    assert_int_equal(r->u.delete_range.n_prev_kvs, 0);
    assert_int_equal(r->revision, 7);
    assert_int_equal(ms_store_key_count(f->s), 0);
}

/* ------------------------------------------------------------------------
 * txn
 * ---------------------------------------------------------------------- */

static bool txn_taken(struct fx *f, struct ms_compare c)
{
    struct ms_result *r = fx_apply(f, op_txn(&c, 1, NULL, 0, NULL, 0));
    assert_int_equal(r->err, 0);
    return r->u.txn.succeeded;
}

/* Every compare target with every result; a missing key compares as
 * version/create/mod/lease 0 and fails every value compare. */
static void test_txn_compares(void **state)
{
    FX(state);

    fx_apply(f, op_grant(9, 60));
    fx_apply(f, op_put("k", "m"));          /* 2 */
    fx_apply(f, op_put_lease("k", "m", 9)); /* 3: create 2, version 2 */

    struct {
        enum ms_compare_target t;
        int64_t eq;
    } nums[] = {{MS_CMP_VERSION, 2},
                {MS_CMP_CREATE, 2},
                {MS_CMP_MOD, 3},
                {MS_CMP_LEASE, 9}};
    for (size_t i = 0; i < 4; i++) {
        int64_t n = nums[i].eq;
        enum ms_compare_target t = nums[i].t;
        assert_true(txn_taken(f, cmp_num("k", t, MS_CMP_EQUAL, n)));
        assert_false(txn_taken(f, cmp_num("k", t, MS_CMP_EQUAL, n + 1)));
        assert_true(txn_taken(f, cmp_num("k", t, MS_CMP_NOT_EQUAL, n + 1)));
        assert_false(txn_taken(f, cmp_num("k", t, MS_CMP_NOT_EQUAL, n)));
        assert_true(txn_taken(f, cmp_num("k", t, MS_CMP_GREATER, n - 1)));
        assert_false(txn_taken(f, cmp_num("k", t, MS_CMP_GREATER, n)));
        assert_true(txn_taken(f, cmp_num("k", t, MS_CMP_LESS, n + 1)));
        assert_false(txn_taken(f, cmp_num("k", t, MS_CMP_LESS, n)));
        /* missing key: zeros */
        assert_true(txn_taken(f, cmp_num("nokey", t, MS_CMP_EQUAL, 0)));
        assert_true(txn_taken(f, cmp_num("nokey", t, MS_CMP_LESS, 1)));
    }
    assert_true(txn_taken(f, cmp_val("k", MS_CMP_EQUAL, "m")));
    assert_false(txn_taken(f, cmp_val("k", MS_CMP_EQUAL, "n")));
    assert_true(txn_taken(f, cmp_val("k", MS_CMP_NOT_EQUAL, "n")));
    assert_true(txn_taken(f, cmp_val("k", MS_CMP_GREATER, "a")));
    assert_true(txn_taken(f, cmp_val("k", MS_CMP_GREATER, "")));
    assert_false(txn_taken(f, cmp_val("k", MS_CMP_GREATER, "m")));
    assert_true(txn_taken(f, cmp_val("k", MS_CMP_LESS, "ma")));
    assert_false(txn_taken(f, cmp_val("k", MS_CMP_LESS, "m")));
    assert_false(txn_taken(f, cmp_val("nokey", MS_CMP_EQUAL, "")));
    assert_false(txn_taken(f, cmp_val("nokey", MS_CMP_NOT_EQUAL, "x")));
    /* a range compare needs every key to match */
    fx_apply(f, op_put("k2", "m"));
    struct ms_compare c = cmp_val("k", MS_CMP_EQUAL, "m");
    c.range_end = B("l");
    assert_true(txn_taken(f, c));
    fx_apply(f, op_put("k2", "z"));
    assert_false(txn_taken(f, c));
    /* all compares of a txn must hold */
    struct ms_compare two[2] = {cmp_val("k", MS_CMP_EQUAL, "m"),
                                cmp_val("k2", MS_CMP_EQUAL, "m")};
    struct ms_result *r = fx_apply(f, op_txn(two, 2, NULL, 0, NULL, 0));
    assert_false(r->u.txn.succeeded);
}

/* The taken branch's writes share one revision; reads in the txn see the
 * txn's earlier writes at that revision; results come per op. */
static void test_txn_branches(void **state)
{
    FX(state);
    struct ms_compare c = cmp_num("k", MS_CMP_VERSION, MS_CMP_EQUAL, 0);
    struct ms_op succ[4] = {op_put("k", "1"), op_range("k", BNONE),
                            op_put("j", "1"), op_del("gone", BNONE)};
    struct ms_op fail[1] = {op_range("k", BNONE)};
    struct ms_result *r;

    fx_apply(f, op_put("gone", "x")); /* 2 */
    r = fx_apply(f, op_txn(&c, 1, succ, 4, fail, 1));
    assert_int_equal(r->err, 0);
    assert_true(r->u.txn.succeeded);
    assert_int_equal(r->revision, 3);
    assert_int_equal(r->u.txn.n_responses, 4);
    struct ms_result *rs = r->u.txn.responses;
    assert_int_equal(rs[0].type, MS_OP_PUT);
    assert_int_equal(rs[0].revision, 3);
    assert_int_equal(rs[1].type, MS_OP_RANGE);
    assert_int_equal(rs[1].revision, 3);
    assert_int_equal(rs[1].u.range.n_kvs, 1);
    assert_int_equal(rs[1].u.range.kvs[0].mod_revision, 3);
    assert_int_equal(rs[3].u.delete_range.deleted, 1);
    r = fx_get(f, "j", BNONE, 0);
    assert_int_equal(r->u.range.kvs[0].mod_revision, 3);
    assert_int_equal(ms_store_revision(f->s), 3);

    /* the compare fails now: the failure branch (a read) runs, no write */
    r = fx_apply(f, op_txn(&c, 1, succ, 4, fail, 1));
    assert_false(r->u.txn.succeeded);
    assert_int_equal(r->u.txn.n_responses, 1);
    assert_int_equal(r->u.txn.responses[0].u.range.n_kvs, 1);
    assert_int_equal(r->revision, 3);

    /* a range at the pre-txn revision inside a writing txn does not see
     * the txn's writes */
    struct ms_op s2[2] = {op_put("k", "2"), op_range("k", BNONE)};
    s2[1].u.range.revision = 3;
    r = fx_apply(f, op_txn(NULL, 0, s2, 2, NULL, 0));
    assert_int_equal(r->err, 0);
    assert_bytes(r->u.txn.responses[1].u.range.kvs[0].value, "1");
    assert_int_equal(r->u.txn.responses[1].revision, 4);
}

/* Nested txns: the nested compare sees the state before the outer txn,
 * results nest, everything shares one revision. */
static void test_txn_nested(void **state)
{
    FX(state);
    struct ms_compare outer_c = cmp_num("a", MS_CMP_VERSION, MS_CMP_EQUAL, 0);
    /* the outer txn puts "a" first, but the nested compare still sees
     * version 0 (pre-txn state, as etcd) */
    struct ms_compare inner_c = cmp_num("a", MS_CMP_VERSION, MS_CMP_EQUAL, 0);
    struct ms_op inner_s[1] = {op_put("b", "yes")};
    struct ms_op inner_f[1] = {op_put("b", "no")};
    struct ms_op outer_s[2] = {op_put("a", "1"),
                               op_txn(&inner_c, 1, inner_s, 1, inner_f, 1)};
    struct ms_result *r;

    r = fx_apply(f, op_txn(&outer_c, 1, outer_s, 2, NULL, 0));
    assert_int_equal(r->err, 0);
    assert_true(r->u.txn.succeeded);
    assert_int_equal(r->revision, 2);
    struct ms_result *n = &r->u.txn.responses[1];
    assert_int_equal(n->type, MS_OP_TXN);
    assert_true(n->u.txn.succeeded);
    assert_int_equal(n->u.txn.n_responses, 1);
    assert_int_equal(n->u.txn.responses[0].revision, 2);
    r = fx_get(f, "b", BNONE, 0);
    assert_bytes(r->u.range.kvs[0].value, "yes");
    assert_int_equal(r->u.range.kvs[0].mod_revision, 2);
}

/* Duplicate writes of a key in one txn fail with MS_EDUPKEY before
 * anything is applied: put twice, put and delete (also across nested
 * txns); the same key in both branches, or two overlapping deletes, is
 * fine. */
static void test_txn_dupkeys(void **state)
{
    FX(state);
    struct ms_op two_puts[2] = {op_put("k", "1"), op_put("k", "2")};
    struct ms_op put_del[2] = {op_put("k", "1"), op_del("a", B("z"))};
    struct ms_op del_all[2] = {op_del("j", B0), op_put("k", "1")};
    struct ms_op nested_put[1] = {op_put("k", "n")};
    struct ms_op nested_then_put[2] = {op_txn(NULL, 0, nested_put, 1, NULL, 0),
                                       op_put("k", "1")};
    struct ms_op del_then_nested[2] = {op_del("k", BNONE),
                                       op_txn(NULL, 0, nested_put, 1, NULL, 0)};
    struct ms_op both_branches[1] = {
        op_txn(NULL, 0, nested_put, 1, nested_put, 1)};
    struct ms_op two_dels[2] = {op_del("a", B("z")), op_del("k", BNONE)};
    struct ms_result *r;

    fx_apply(f, op_put("k", "0"));
    struct {
        struct ms_op *ops;
        size_t n;
        int err;
    } cases[] = {
        {two_puts, 2, MS_EDUPKEY},
        {put_del, 2, MS_EDUPKEY},
        {del_all, 2, MS_EDUPKEY},
        {nested_then_put, 2, MS_EDUPKEY},
        {del_then_nested, 2, MS_EDUPKEY},
        {both_branches, 1, 0},
        {two_dels, 2, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t rev = ms_store_revision(f->s);
        r = fx_apply(f, op_txn(NULL, 0, cases[i].ops, cases[i].n, NULL, 0));
        assert_int_equal(r->err, cases[i].err);
        if (cases[i].err != 0) {
            assert_int_equal(ms_store_revision(f->s), rev);
            assert_int_equal(r->revision, rev);
        } else {
            assert_int_equal(ms_store_revision(f->s), rev + 1);
        }
        /* same ops in the failure branch: also checked */
        r = fx_apply(f, op_txn(NULL, 0, NULL, 0, cases[i].ops, cases[i].n));
        assert_int_equal(r->err, cases[i].err);
        fx_apply(f, op_put("k", "0"));
    }
    /* the same key in success and failure is fine */
    r = fx_apply(f, op_txn(NULL, 0, nested_put, 1, nested_put, 1));
    assert_int_equal(r->err, 0);
}

/* State checks of the taken branch fail the whole txn before anything is
 * applied: a put with an unknown lease (MS_ELEASE), ignore_value on a
 * missing key (MS_ENOTFOUND), a range at a future or compacted revision. */
static void test_txn_state_checks(void **state)
{
    FX(state);
    struct ms_op ops[2] = {op_put("a", "1"), op_put_lease("b", "1", 42)};
    struct ms_result *r;

    r = fx_apply(f, op_txn(NULL, 0, ops, 2, NULL, 0));
    assert_int_equal(r->err, MS_ELEASE);
    assert_int_equal(ms_store_revision(f->s), 1);
    assert_int_equal(fx_get(f, "a", BNONE, 0)->u.range.count, 0);
    /* the branch not taken is not state-checked */
    struct ms_compare c = cmp_num("a", MS_CMP_VERSION, MS_CMP_GREATER, 0);
    struct ms_op ok[1] = {op_put("a", "1")};
    r = fx_apply(f, op_txn(&c, 1, ops, 2, ok, 1));
    assert_int_equal(r->err, 0);
    assert_false(r->u.txn.succeeded);

    ops[1] = op_put("missing", "");
    ops[1].u.put.ignore_value = true;
    r = fx_apply(f, op_txn(NULL, 0, ops, 2, NULL, 0));
    assert_int_equal(r->err, MS_ENOTFOUND);

    ops[1] = op_range("a", BNONE);
    ops[1].u.range.revision = 3; /* the txn's own revision: future */
    r = fx_apply(f, op_txn(NULL, 0, ops, 2, NULL, 0));
    assert_int_equal(r->err, MS_EFUTUREREV);
    fx_apply(f, op_put("a", "2"));
    fx_apply(f, op_compact(3));
    ops[1].u.range.revision = 2;
    r = fx_apply(f, op_txn(NULL, 0, ops, 2, NULL, 0));
    assert_int_equal(r->err, MS_ECOMPACTED);
    assert_int_equal(ms_store_revision(f->s), 3);
    /* only put/delete/range/txn may appear in a txn */
    ops[1] = op_compact(3);
    r = fx_apply(f, op_txn(NULL, 0, ops, 2, NULL, 0));
    assert_int_equal(r->err, MS_EINVAL);
}

/* ------------------------------------------------------------------------
 * leases
 * ---------------------------------------------------------------------- */

/* Grant records a lease (an id in use: MS_EEXISTS; id 0: MS_EINVAL);
 * revoke deletes every attached key at one revision and the lease;
 * revoking an unknown lease fails with MS_ELEASE; a put without a lease
 * detaches the key. */
static void test_leases(void **state)
{
    FX(state);
    struct ms_result *r;

    r = fx_apply(f, op_grant(1, 30));
    assert_int_equal(r->err, 0);
    assert_int_equal(r->u.lease_grant.id, 1);
    assert_int_equal(r->u.lease_grant.ttl, 30);
    assert_int_equal(fx_apply(f, op_grant(1, 30))->err, MS_EEXISTS);
    assert_int_equal(fx_apply(f, op_grant(0, 30))->err, MS_EINVAL);
    fx_apply(f, op_grant(2, 30));

    fx_apply(f, op_put_lease("l1", "v", 1)); /* 2 */
    fx_apply(f, op_put_lease("l2", "v", 1)); /* 3 */
    fx_apply(f, op_put_lease("l3", "v", 1)); /* 4 */
    fx_apply(f, op_put("l3", "v"));          /* 5: detached */
    fx_apply(f, op_put_lease("l4", "v", 2)); /* 6 */
    fx_apply(f, op_put_lease("l4", "v", 1)); /* 7: moved to lease 1 */
    r = fx_get(f, "l4", BNONE, 0);
    assert_int_equal(r->u.range.kvs[0].lease, 1);

    r = fx_apply(f, op_revoke(1));
    assert_int_equal(r->err, 0);
    assert_int_equal(r->revision, 8);
    r = fx_get(f, "l", B("m"), 0);
    assert_int_equal(r->u.range.count, 1);
    assert_bytes(r->u.range.kvs[0].key, "l3");
    r = fx_get(f, "l1", BNONE, 8);
    assert_int_equal(r->u.range.count, 0);
    r = fx_get(f, "l2", BNONE, 7);
    assert_int_equal(r->u.range.count, 1);
    assert_int_equal(fx_apply(f, op_revoke(1))->err, MS_ELEASE);
    assert_int_equal(fx_apply(f, op_put_lease("x", "v", 1))->err, MS_ELEASE);

    /* lease 2 lost its only key to lease 1: revoking it deletes nothing */
    r = fx_apply(f, op_revoke(2));
    assert_int_equal(r->err, 0);
    assert_int_equal(r->revision, 8);
    assert_int_equal(ms_store_key_count(f->s), 1);
    /* a revoked id can be granted again */
    assert_int_equal(fx_apply(f, op_grant(1, 5))->err, 0);
}

/* A key deleted by DeleteRange is no longer attached: revoking its lease
 * later does not touch the re-created key. */
static void test_lease_delete_detaches(void **state)
{
    FX(state);
    struct ms_result *r;

    fx_apply(f, op_grant(3, 30));
    fx_apply(f, op_put_lease("k", "v", 3));
    fx_apply(f, op_del("k", BNONE));
    fx_apply(f, op_put("k", "plain"));
    r = fx_apply(f, op_revoke(3));
    assert_int_equal(r->err, 0);
    r = fx_get(f, "k", BNONE, 0);
    assert_int_equal(r->u.range.count, 1);
    assert_bytes(r->u.range.kvs[0].value, "plain");
}

struct lease_seen {
    int64_t ids[8], ttls[8];
    char keys[8][8];
    int n;
    int stop_after; /* 0: never */
};

static int on_lease(void *ctx, int64_t id, int64_t ttl)
{
    struct lease_seen *l = ctx;
    assert_true(l->n < 8);
    l->ids[l->n] = id;
    l->ttls[l->n] = ttl;
    return ++l->n == l->stop_after ? MS_ECANCELED : 0;
}

static int on_lease_key(void *ctx, const uint8_t *key, size_t len)
{
    struct lease_seen *l = ctx;
    assert_true(l->n < 8 && len < 8);
    memcpy(l->keys[l->n], key, len);
    l->keys[l->n][len] = '\0';
    l->n++;
    return 0;
}

/* The lease table reads: TTL of a lease (MS_ELEASE when unknown), every
 * lease in id order, the keys attached to a lease; a callback's non-zero
 * return stops a walk and is returned. */
static void test_lease_reads(void **state)
{
    FX(state);
    struct lease_seen seen = {0};
    char err[MS_ERRMSG_SIZE];
    int64_t ttl = 0;

    fx_apply(f, op_grant(30, 300));
    fx_apply(f, op_grant(10, 100));
    fx_apply(f, op_grant(20, 200));
    fx_apply(f, op_put_lease("kb", "v", 20));
    fx_apply(f, op_put_lease("ka", "v", 20));
    fx_apply(f, op_put_lease("kc", "v", 10));
    assert_int_equal(ms_store_lease_ttl(f->s, 20, &ttl, err, sizeof(err)), 0);
    assert_int_equal(ttl, 200);
    assert_int_equal(ms_store_lease_ttl(f->s, 21, &ttl, err, sizeof(err)),
                     MS_ELEASE);
    assert_int_equal(
        ms_store_lease_list(f->s, on_lease, &seen, err, sizeof(err)), 0);
    assert_int_equal(seen.n, 3);
    assert_int_equal(seen.ids[0], 10);
    assert_int_equal(seen.ttls[0], 100);
    assert_int_equal(seen.ids[2], 30);
    memset(&seen, 0, sizeof(seen));
    seen.stop_after = 2;
    assert_int_equal(
        ms_store_lease_list(f->s, on_lease, &seen, err, sizeof(err)),
        MS_ECANCELED);
    assert_int_equal(seen.n, 2);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(
        ms_store_lease_keys(f->s, 20, on_lease_key, &seen, err, sizeof(err)),
        0);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.keys[0], "ka");
    assert_string_equal(seen.keys[1], "kb");
    fx_apply(f, op_revoke(20));
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(
        ms_store_lease_keys(f->s, 20, on_lease_key, &seen, err, sizeof(err)),
        0);
    assert_int_equal(seen.n, 0);
    assert_int_equal(
        ms_store_lease_list(f->s, on_lease, &seen, err, sizeof(err)), 0);
    assert_int_equal(seen.n, 2);
}

/* ------------------------------------------------------------------------
 * applied index and restart
 * ---------------------------------------------------------------------- */

/* An entry at or below the applied index is skipped (nothing applied);
 * set_applied advances the index without a batch, with the same rule. */
static void test_apply_skip(void **state)
{
    FX(state);
    struct ms_op op = op_put("k", "v");
    struct ms_batch b = {.ops = &op, .n_ops = 1};
    struct ms_results rs = {0};
    char err[MS_ERRMSG_SIZE];

    assert_int_equal(ms_store_applied_index(f->s), 0);
    assert_int_equal(ms_store_apply(f->s, &b, 5, &rs, err, sizeof(err)), 0);
    assert_false(rs.skipped);
    ms_results_free(&rs);
    assert_int_equal(ms_store_applied_index(f->s), 5);
    assert_int_equal(ms_store_revision(f->s), 2);
    for (uint64_t i = 3; i <= 5; i++) {
        assert_int_equal(ms_store_apply(f->s, &b, i, &rs, err, sizeof(err)), 0);
        assert_true(rs.skipped);
        assert_int_equal(rs.n, 0);
        ms_results_free(&rs);
    }
    assert_int_equal(ms_store_revision(f->s), 2);
    assert_int_equal(ms_store_set_applied(f->s, 9, err, sizeof(err)), 0);
    assert_int_equal(ms_store_applied_index(f->s), 9);
    assert_int_equal(ms_store_set_applied(f->s, 7, err, sizeof(err)), 0);
    assert_int_equal(ms_store_applied_index(f->s), 9);
    assert_int_equal(ms_store_apply(f->s, &b, 9, &rs, err, sizeof(err)), 0);
    assert_true(rs.skipped);
    ms_results_free(&rs);
    assert_int_equal(ms_store_apply(f->s, &b, 10, &rs, err, sizeof(err)), 0);
    assert_false(rs.skipped);
    assert_int_equal(rs.r[0].revision, 3);
    ms_results_free(&rs);
}

/* rocksdb: closing and reopening the directory gives the same state
 * (revisions, applied index, keys, history, leases). */
static void test_restart(void **state)
{
    FX(state);
    struct ms_result *r;

    if (f->backend != MS_BACKEND_ROCKSDB)
        skip(); /* a memory store does not survive a close */
    fx_apply(f, op_grant(4, 10));
    fx_apply(f, op_put_lease("a", "1", 4)); /* 2 */
    fx_apply(f, op_put("a", "2"));          /* 3 */
    fx_apply(f, op_put("b", "1"));          /* 4 */
    fx_apply(f, op_del("b", BNONE));        /* 5 */
    fx_apply(f, op_put("c", "1"));          /* 6 */
    fx_apply(f, op_compact(3));
    fx_apply(f, op_put_lease("c", "2", 4)); /* 7 */
    uint64_t idx = ms_store_applied_index(f->s);
    struct ms_buf before = MS_BUF_INIT, after = MS_BUF_INIT;
    fx_save(f, NULL, &before);

    ms_results_free(&f->rs);
    ms_store_close(f->s);
    f->s = NULL;
    assert_int_equal(fx_open(f), 0);
    assert_int_equal(ms_store_revision(f->s), 7);
    assert_int_equal(ms_store_compact_revision(f->s), 3);
    assert_int_equal(ms_store_applied_index(f->s), idx);
    assert_int_equal(ms_store_key_count(f->s), 2);
    r = fx_get(f, "a", BNONE, 3);
    assert_bytes(r->u.range.kvs[0].value, "2");
    r = fx_get(f, "b", BNONE, 4);
    assert_int_equal(r->u.range.count, 1);
    fx_save(f, NULL, &after);
    assert_int_equal(before.len, after.len);
    assert_memory_equal(before.data, after.data, before.len);
    /* the next write continues the revisions, revoke still finds c */
    r = fx_apply(f, op_revoke(4));
    assert_int_equal(r->revision, 8);
    assert_int_equal(ms_store_key_count(f->s), 1);
    ms_buf_free(&before);
    ms_buf_free(&after);
}

/* ------------------------------------------------------------------------
 * the engine itself, against a model
 * ---------------------------------------------------------------------- */

#include "store/engine.h"

#define MODEL_CAP 20000

struct model_kv {
    uint8_t k[24];
    size_t kn;
    uint32_t v;
};

struct model {
    struct model_kv *e;
    size_t n;
};

static int bcmp_len(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c != 0 ? c : (an < bn ? -1 : an > bn);
}

/* First index with key >= k. */
static size_t model_lower(const struct model *m, const uint8_t *k, size_t kn)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (bcmp_len(m->e[mid].k, m->e[mid].kn, k, kn) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Random keys over few symbols with long shared prefixes, so that 8-byte
 * hints tie, keys are prefixes of others and nodes split and merge. */
static size_t rand_key(uint8_t *k, unsigned *seed)
{
    static const uint8_t sym[] = {0x00, 0x01, 'a', 'b', 0xFF};
    size_t n = (size_t)(rand_r(seed) % 20) + 1;
    size_t shared = n > 9 ? 9 : n;
    for (size_t i = 0; i < n; i++)
        k[i] =
            i < shared && rand_r(seed) % 4 != 0 ? 'p' : sym[rand_r(seed) % 5];
    if (k[0] == 0x00)
        k[0] = 0x01; /* keys starting with 0x00 belong to the engine */
    return n;
}

static void check_engine_walk(struct ms_engine *e, const struct model *m,
                              unsigned *seed)
{
    const struct ms_engine_ops *o = e->ops;
    struct ms_engine_iter *it;
    const uint8_t *k, *v;
    size_t kn, vn, i;
    uint8_t probe[24];

    assert_int_equal(o->iter_new(e, &it), 0);
    /* forward over everything, then backward */
    o->iter_seek(it, (const uint8_t *)"", 0);
    for (i = 0; o->iter_valid(it); o->iter_next(it), i++) {
        k = o->iter_key(it, &kn);
        v = o->iter_value(it, &vn);
        assert_true(i < m->n);
        assert_int_equal(kn, m->e[i].kn);
        assert_memory_equal(k, m->e[i].k, kn);
        assert_int_equal(vn, 4);
        assert_memory_equal(v, &m->e[i].v, 4);
    }
    assert_int_equal(i, m->n);
    memset(probe, 0xFF, sizeof(probe));
    o->iter_seek_for_prev(it, probe, sizeof(probe));
    for (i = m->n; o->iter_valid(it); o->iter_prev(it)) {
        assert_true(i > 0);
        i--;
        k = o->iter_key(it, &kn);
        assert_int_equal(kn, m->e[i].kn);
        assert_memory_equal(k, m->e[i].k, kn);
    }
    assert_int_equal(i, 0);
    /* random seeks both ways */
    for (int j = 0; j < 200; j++) {
        size_t pn = rand_key(probe, seed);
        size_t lo = model_lower(m, probe, pn);
        o->iter_seek(it, probe, pn);
        if (lo == m->n) {
            assert_false(o->iter_valid(it));
        } else {
            assert_true(o->iter_valid(it));
            k = o->iter_key(it, &kn);
            assert_int_equal(bcmp_len(k, kn, m->e[lo].k, m->e[lo].kn), 0);
        }
        o->iter_seek_for_prev(it, probe, pn);
        size_t want =
            lo < m->n && bcmp_len(m->e[lo].k, m->e[lo].kn, probe, pn) == 0
                ? lo + 1
                : lo;
        if (want == 0) {
            assert_false(o->iter_valid(it));
        } else {
            assert_true(o->iter_valid(it));
            k = o->iter_key(it, &kn);
            assert_int_equal(
                bcmp_len(k, kn, m->e[want - 1].k, m->e[want - 1].kn), 0);
        }
    }
    o->iter_free(it);
}

/* The engine behaves as an ordered map under random puts, overwrites and
 * deletes (node splits, merges, emptied leaves), for get, seek,
 * seek_for_prev, next and prev. */
static void test_engine_model(void **state)
{
    FX(state);
    struct ms_engine *e = NULL;
    struct model m = {calloc(MODEL_CAP, sizeof(struct model_kv)), 0};
    unsigned seed = 12345;
    char err[MS_ERRMSG_SIZE];
    int rc;

    assert_non_null(m.e);
    /* a bare engine beside the fixture's store */
    if (f->backend == MS_BACKEND_MEMORY) {
        rc = ms_engine_memory_open(&e, err, sizeof(err));
    } else {
        char dir[80];
        snprintf(dir, sizeof(dir), "%s/engine", f->dir);
        rc = ms_engine_rocksdb_open(dir, &e, err, sizeof(err));
    }
    if (rc != 0)
        fail_msg("engine open: %s", err);
    const struct ms_engine_ops *o = e->ops;
    for (int round = 0; round < 14; round++) {
        assert_int_equal(o->begin(e), 0);
        for (int i = 0; i < 1500; i++) {
            uint8_t k[24];
            size_t kn = rand_key(k, &seed);
            /* grow in early rounds, shrink in late ones */
            bool del = rand_r(&seed) % 12 < (round < 7 ? 3 : 10);
            if (del && m.n > 0 && rand_r(&seed) % 4 != 0) {
                /* mostly delete keys that exist */
                size_t pick = (size_t)rand_r(&seed) % m.n;
                kn = m.e[pick].kn;
                memcpy(k, m.e[pick].k, kn);
            }
            size_t at = model_lower(&m, k, kn);
            bool has = at < m.n && bcmp_len(m.e[at].k, m.e[at].kn, k, kn) == 0;
            if (del) {
                assert_int_equal(o->del(e, k, kn), 0);
                if (has) {
                    memmove(&m.e[at], &m.e[at + 1],
                            (m.n - at - 1) * sizeof(*m.e));
                    m.n--;
                }
            } else {
                uint32_t v = (uint32_t)rand_r(&seed);
                assert_int_equal(o->put(e, k, kn, (const uint8_t *)&v, 4), 0);
                if (!has) {
                    assert_true(m.n < MODEL_CAP);
                    memmove(&m.e[at + 1], &m.e[at], (m.n - at) * sizeof(*m.e));
                    m.n++;
                    memcpy(m.e[at].k, k, kn);
                    m.e[at].kn = kn;
                }
                m.e[at].v = v;
            }
            /* a get of a random key */
            const uint8_t *gv;
            size_t gvn;
            bool found;
            kn = rand_key(k, &seed);
            at = model_lower(&m, k, kn);
            has = at < m.n && bcmp_len(m.e[at].k, m.e[at].kn, k, kn) == 0;
            assert_int_equal(o->get(e, k, kn, &gv, &gvn, &found), 0);
            assert_int_equal(found, has);
            if (has)
                assert_memory_equal(gv, &m.e[at].v, 4);
        }
        check_engine_walk(e, &m, &seed);
        assert_int_equal(o->commit(e, (uint64_t)round + 1), 0);
        check_engine_walk(e, &m, &seed);
        assert_int_equal(o->applied_index(e), (uint64_t)round + 1);
    }
    assert_int_equal(o->clear(e), 0);
    m.n = 0;
    check_engine_walk(e, &m, &seed);
    o->close(e);
    free(m.e);
}

/* Parsing backend names. */
static void test_backend_names(void **state)
{
    enum ms_store_backend b;

    (void)state;
    assert_int_equal(ms_store_parse_backend("memory", &b), 0);
    assert_int_equal(b, MS_BACKEND_MEMORY);
    assert_int_equal(ms_store_parse_backend("rocksdb", &b), 0);
    assert_int_equal(b, MS_BACKEND_ROCKSDB);
    assert_int_equal(ms_store_parse_backend("disk", &b), MS_EINVAL);
    assert_string_equal(ms_store_backend_name(MS_BACKEND_ROCKSDB), "rocksdb");
}

static enum ms_store_backend be_memory = MS_BACKEND_MEMORY;
static enum ms_store_backend be_rocksdb = MS_BACKEND_ROCKSDB;

/* Each case runs once per backend. */
#define CASE(fn)                                                               \
    {#fn "/memory", fn, fx_setup, fx_teardown, &be_memory},                    \
    {                                                                          \
#fn "/rocksdb", fn, fx_setup, fx_teardown, &be_rocksdb                 \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        CASE(test_revision_arithmetic),
        CASE(test_noop_keeps_revision),
        CASE(test_batch_revisions),
        CASE(test_put_prev_kv),
        CASE(test_put_ignore),
        CASE(test_put_unknown_lease),
        CASE(test_empty_key),
        CASE(test_limits),
        CASE(test_range_end_forms),
        CASE(test_range_binary_keys),
        CASE(test_range_limit_count),
        CASE(test_range_sort),
        CASE(test_range_filters),
        CASE(test_history_reads),
        CASE(test_compaction),
        CASE(test_many_keys),
        CASE(test_compaction_steps),
        CASE(test_changes_windows),
        CASE(test_delete_range),
        CASE(test_txn_compares),
        CASE(test_txn_branches),
        CASE(test_txn_nested),
        CASE(test_txn_dupkeys),
        CASE(test_txn_state_checks),
        CASE(test_leases),
        CASE(test_lease_delete_detaches),
        CASE(test_lease_reads),
        CASE(test_apply_skip),
        CASE(test_restart),
        CASE(test_engine_model),
        cmocka_unit_test(test_backend_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
