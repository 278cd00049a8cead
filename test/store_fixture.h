/* store_fixture.h - shared fixture of the store and snapshot tests: a store
 * per backend taken from the cmocka state, op builders, a state dump. */
#ifndef MS_TEST_STORE_FIXTURE_H
#define MS_TEST_STORE_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ftw.h>
#include <unistd.h>

#include "store/snapshot.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/error.h"

/* A C string as bytes (borrowed). */
#define B(s) ((struct ms_bytes){(const uint8_t *)(s), strlen(s)})
#define B0 ((struct ms_bytes){(const uint8_t *)"\0", 1}) /* "\0" */
#define BNONE ((struct ms_bytes){NULL, 0})

struct fx {
    enum ms_store_backend backend;
    char dir[64]; /* rocksdb directory, "" for memory */
    struct ms_store *s;
    uint64_t index; /* last index applied through fx_apply */
    struct ms_results rs;
};

static inline int rm_entry(const char *path, const struct stat *sb, int flag,
                           struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void rm_tree(const char *dir)
{
    if (dir[0] != '\0')
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Opens (or reopens) f->s on f->dir. Returns 0, or MS_ENOTIMPL when the
 * backend is not built in. */
static inline int fx_open(struct fx *f)
{
    struct ms_store_options o = {.backend = f->backend, .path = f->dir};
    char err[MS_ERRMSG_SIZE];
    int rc = ms_store_open(&o, &f->s, err, sizeof(err));
    if (rc != 0 && rc != MS_ENOTIMPL)
        fail_msg("open %s: %s", ms_store_backend_name(f->backend), err);
    return rc;
}

/* Creates a fixture for backend (a temp dir for rocksdb); NULL when the
 * backend is not available (the test is then skipped). */
static inline struct fx *fx_new(enum ms_store_backend backend)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->backend = backend;
    if (backend == MS_BACKEND_ROCKSDB) {
        strcpy(f->dir, "/tmp/ms-store-test-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
    }
    if (fx_open(f) != 0) {
        rm_tree(f->dir);
        free(f);
        return NULL;
    }
    return f;
}

static inline void fx_free(struct fx *f)
{
    if (f == NULL)
        return;
    ms_results_free(&f->rs);
    ms_store_close(f->s);
    rm_tree(f->dir);
    free(f);
}

/* cmocka glue: the prestate is a pointer to the backend. */
static inline int fx_setup(void **state)
{
    const enum ms_store_backend *b = *state;
    struct fx *f = fx_new(*b);
    if (f == NULL) {
        fprintf(stderr, "note: backend %s not available, test skipped\n",
                ms_store_backend_name(*b));
        *state = NULL;
        return 0;
    }
    *state = f;
    return 0;
}

static inline int fx_teardown(void **state)
{
    fx_free(*state);
    return 0;
}

#define FX(state)                                                              \
    struct fx *f = *(state);                                                   \
    if (f == NULL)                                                             \
    skip()

/* Applies ops as the entry at the next index; returns the results (valid
 * until the next fx_apply on f). */
static inline struct ms_result *fx_apply_n(struct fx *f, struct ms_op *ops,
                                           size_t n)
{
    struct ms_batch b = {.ops = ops, .n_ops = n};
    char err[MS_ERRMSG_SIZE];
    ms_results_free(&f->rs);
    f->index++;
    int rc = ms_store_apply(f->s, &b, f->index, &f->rs, err, sizeof(err));
    if (rc != 0)
        fail_msg("apply: %s", err);
    assert_false(f->rs.skipped);
    assert_int_equal(f->rs.n, n);
    return f->rs.r;
}

static inline struct ms_result *fx_apply(struct fx *f, struct ms_op op)
{
    return fx_apply_n(f, &op, 1);
}

static inline struct ms_op op_put(const char *k, const char *v)
{
    struct ms_op op = {.type = MS_OP_PUT};
    op.u.put.key = B(k);
    op.u.put.value = B(v);
    return op;
}

static inline struct ms_op op_put_lease(const char *k, const char *v,
                                        int64_t lease)
{
    struct ms_op op = op_put(k, v);
    op.u.put.lease = lease;
    return op;
}

static inline struct ms_op op_del(const char *k, struct ms_bytes end)
{
    struct ms_op op = {.type = MS_OP_DELETE_RANGE};
    op.u.delete_range.key = B(k);
    op.u.delete_range.range_end = end;
    return op;
}

static inline struct ms_op op_range(const char *k, struct ms_bytes end)
{
    struct ms_op op = {.type = MS_OP_RANGE};
    op.u.range.key = B(k);
    op.u.range.range_end = end;
    return op;
}

static inline struct ms_op op_compact(int64_t rev)
{
    struct ms_op op = {.type = MS_OP_COMPACT};
    op.u.compact.revision = rev;
    return op;
}

static inline struct ms_op op_grant(int64_t id, int64_t ttl)
{
    struct ms_op op = {.type = MS_OP_LEASE_GRANT};
    op.u.lease_grant.id = id;
    op.u.lease_grant.ttl = ttl;
    return op;
}

static inline struct ms_op op_revoke(int64_t id)
{
    struct ms_op op = {.type = MS_OP_LEASE_REVOKE};
    op.u.lease_revoke.id = id;
    return op;
}

static inline struct ms_op op_txn(struct ms_compare *cmp, size_t ncmp,
                                  struct ms_op *succ, size_t nsucc,
                                  struct ms_op *fail, size_t nfail)
{
    struct ms_op op = {.type = MS_OP_TXN};
    op.u.txn.compare = cmp;
    op.u.txn.n_compare = ncmp;
    op.u.txn.success = succ;
    op.u.txn.n_success = nsucc;
    op.u.txn.failure = fail;
    op.u.txn.n_failure = nfail;
    return op;
}

static inline struct ms_compare cmp_num(const char *k, enum ms_compare_target t,
                                        enum ms_compare_result r, int64_t n)
{
    struct ms_compare c = {.result = r, .target = t, .key = B(k), .number = n};
    return c;
}

static inline struct ms_compare cmp_val(const char *k, enum ms_compare_result r,
                                        const char *v)
{
    struct ms_compare c = {
        .result = r, .target = MS_CMP_VALUE, .key = B(k), .value = B(v)};
    return c;
}

/* A local read (ms_store_read); results valid until the next call on f. */
static inline struct ms_result *fx_read(struct fx *f, struct ms_range r)
{
    char err[MS_ERRMSG_SIZE];
    ms_results_free(&f->rs);
    int rc = ms_store_read(f->s, &r, &f->rs, err, sizeof(err));
    if (rc != 0)
        fail_msg("read: %s", err);
    assert_int_equal(f->rs.n, 1);
    return f->rs.r;
}

/* Range [k, end) at rev (0: current). */
static inline struct ms_result *fx_get(struct fx *f, const char *k,
                                       struct ms_bytes end, int64_t rev)
{
    struct ms_op op = op_range(k, end);
    op.u.range.revision = rev;
    return fx_read(f, op.u.range);
}

/* Every key (key "\0", range_end "\0") at rev (0: current). */
static inline struct ms_result *fx_all(struct fx *f, int64_t rev)
{
    struct ms_op op = op_range("x", B0);
    op.u.range.key = B0;
    op.u.range.revision = rev;
    return fx_read(f, op.u.range);
}

static inline bool bytes_eq(struct ms_bytes b, const char *s)
{
    return b.len == strlen(s) && (b.len == 0 || memcmp(b.data, s, b.len) == 0);
}

#define assert_bytes(b, s)                                                     \
    do {                                                                       \
        if (!bytes_eq((b), (s)))                                               \
            fail_msg("bytes '%.*s' != '%s'", (int)(b).len,                     \
                     (const char *)(b).data, (s));                             \
    } while (0)

/* --- snapshots to memory ------------------------------------------------ */

static inline int buf_write(void *ctx, const void *p, size_t n)
{
    return ms_buf_append(ctx, p, n);
}

struct mem_src {
    const uint8_t *p;
    size_t len, off;
    size_t step; /* bytes per read call (0: all) */
};

static inline int mem_read(void *ctx, void *p, size_t n, size_t *got)
{
    struct mem_src *m = ctx;
    size_t k = m->len - m->off;
    if (k > n)
        k = n;
    if (m->step > 0 && k > m->step)
        k = m->step;
    memcpy(p, m->p + m->off, k);
    m->off += k;
    *got = k;
    return 0;
}

/* Saves f's store into out (appended). */
static inline void fx_save(struct fx *f, const struct ms_snapshot_extra *x,
                           struct ms_buf *out)
{
    char err[MS_ERRMSG_SIZE];
    int rc = ms_store_snapshot_save(f->s, x, buf_write, out, err, sizeof(err));
    if (rc != 0)
        fail_msg("save: %s", err);
}

/* A text dump of a snapshot through the reader API: header, every lease,
 * every version with its metadata, the member table. */
static inline void dump_snapshot(const struct ms_buf *snap, struct ms_buf *out)
{
    struct mem_src src = {snap->data, snap->len, 0, 0};
    struct ms_snapshot_reader *r = NULL;
    struct ms_snapshot_record rec;
    char err[MS_ERRMSG_SIZE];
    bool end = false;
    size_t mlen;
    int rc = ms_snapshot_reader_open(mem_read, &src, &r, err, sizeof(err));
    if (rc != 0)
        fail_msg("reader: %s", err);
    const struct ms_snapshot_header *h = ms_snapshot_reader_header(r);
    ms_buf_printf(out, "rev %lld compact %lld applied %llu codec %u\n",
                  (long long)h->revision, (long long)h->compact_revision,
                  (unsigned long long)h->applied_index, h->codec);
    for (;;) {
        rc = ms_snapshot_reader_next(r, &rec, &end, err, sizeof(err));
        if (rc != 0)
            fail_msg("reader: %s", err);
        if (end)
            break;
        if (rec.type == MS_SNAPSHOT_LEASE) {
            ms_buf_printf(out, "lease %lld ttl %lld\n", (long long)rec.lease_id,
                          (long long)rec.lease_ttl);
            continue;
        }
        ms_buf_printf(out,
                      "%s %.*s mod %lld create %lld ver %lld lease %lld "
                      "%s '%.*s'\n",
                      rec.newest ? "cur" : "old", (int)rec.kv.key.len,
                      (const char *)rec.kv.key.data,
                      (long long)rec.kv.mod_revision,
                      (long long)rec.kv.create_revision,
                      (long long)rec.kv.version, (long long)rec.kv.lease,
                      rec.tombstone ? "deleted" : "live", (int)rec.kv.value.len,
                      rec.kv.value.len ? (const char *)rec.kv.value.data : "");
    }
    const uint8_t *m = ms_snapshot_reader_members(r, &mlen);
    ms_buf_printf(out, "members %zu '%.*s'\n", mlen, (int)mlen,
                  m ? (const char *)m : "");
    ms_snapshot_reader_close(r);
}

#endif /* MS_TEST_STORE_FIXTURE_H */
