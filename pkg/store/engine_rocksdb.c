/* engine_rocksdb.c - the engine vtable (engine.h) on RocksDB's C API. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <rocksdb/c.h>

#include "store/engine.h"
#include "util/error.h"

/* The applied index lives under a key outside the MVCC key space (MVCC keys
 * start with a lowercase letter). Every key whose first byte is 0x00 is
 * reserved for the engine: put/del refuse it, get never finds it and
 * iterators skip it. Since keys sort by memcmp, the reserved keys form one
 * contiguous range ["\0", "\1"), which makes skipping them a single seek. */
static const char applied_key[] = "\0applied";
#define APPLIED_KEY_LEN (sizeof(applied_key) - 1)

/* Tuning for a metadata store: many small writes in batches, point lookups
 * of absent keys (bloom filters), a data set that mostly fits in memory.
 * Memtables are smaller than RocksDB's 64 MiB default: inserting random
 * keys into a skiplist costs a cache miss per level, and the applying
 * thread spent ~20% less CPU per put with 8-16 MiB than with 64 MiB
 * (1M random puts in batches of 64; flushes and compactions run on
 * background threads, with no write stalls seen). */
#define WRITE_BUFFER_SIZE (16u << 20)
#define MAX_WRITE_BUFFERS 3
#define BLOCK_CACHE_SIZE (64u << 20)
#define BLOOM_BITS_PER_KEY 10.0
#define MEMTABLE_BLOOM_RATIO 0.1

struct rocks_engine {
    struct ms_engine base;
    char *path;
    rocksdb_t *db;
    rocksdb_readoptions_t *ropts;
    rocksdb_writeoptions_t *wopts;      /* commits: no fsync (see commit) */
    rocksdb_writeoptions_t *wopts_sync; /* clear: fsync */
    rocksdb_writebatch_wi_t *batch;     /* reused by every transaction */
    bool in_txn;
    bool read_failed;         /* an iterator hit an error in this transaction */
    struct rocks_iter *iters; /* live iterators, freed by close if left */
    uint64_t applied;
    /* The value last returned by get, released on the next engine call. */
    rocksdb_pinnableslice_t *pin;
    char *val;
    /* a view (rocks_view): reads at this snapshot of db, which it does not
     * own */
    const rocksdb_snapshot_t *snap;
};

struct rocks_iter {
    struct rocks_engine *e;
    rocksdb_iterator_t *it;
    struct rocks_iter *prev, *next;
};

static const struct ms_engine_ops rocks_ops;

static bool reserved(const uint8_t *k, size_t kn)
{
    return kn > 0 && k[0] == 0x00;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Copies rocksdb's malloc'd error string into errmsg with our prefix, frees
 * it, and returns MS_EIO. */
static int rocks_err(char *errmsg, size_t size, const char *op,
                     const char *path, char *rerr)
{
    ms_seterr(errmsg, size, MS_EIO, "rocksdb: %s %s: %s", op, path,
              rerr != NULL ? rerr : "unknown error");
    rocksdb_free(rerr);
    return MS_EIO;
}

static int eng_err(struct rocks_engine *e, const char *op, char *rerr)
{
    return rocks_err(e->base.errmsg, sizeof(e->base.errmsg), op, e->path, rerr);
}

static int eng_inval(struct rocks_engine *e, const char *what)
{
    return ms_seterr(e->base.errmsg, sizeof(e->base.errmsg), MS_EINVAL,
                     "rocksdb: %s: %s", e->path, what);
}

static void release_value(struct rocks_engine *e)
{
    if (e->pin != NULL) {
        rocksdb_pinnableslice_destroy(e->pin);
        e->pin = NULL;
    }
    if (e->val != NULL) {
        rocksdb_free(e->val);
        e->val = NULL;
    }
}

static int rocks_get(struct ms_engine *base, const uint8_t *k, size_t kn,
                     const uint8_t **v, size_t *vn, bool *found)
{
    struct rocks_engine *e = (struct rocks_engine *)base;
    char *rerr = NULL;

    release_value(e);
    *found = false;
    *v = NULL;
    *vn = 0;
    if (reserved(k, kn))
        return 0;
    if (e->in_txn) {
        /* Read your writes: the batch first, then the database. */
        size_t n = 0;
        e->val = rocksdb_writebatch_wi_get_from_batch_and_db(
            e->batch, e->db, e->ropts, (const char *)k, kn, &n, &rerr);
        if (rerr != NULL)
            return eng_err(e, "get", rerr);
        if (e->val != NULL) {
            *found = true;
            *v = (const uint8_t *)e->val;
            *vn = n;
        }
        return 0;
    }
    e->pin = rocksdb_get_pinned(e->db, e->ropts, (const char *)k, kn, &rerr);
    if (rerr != NULL)
        return eng_err(e, "get", rerr);
    if (e->pin != NULL) {
        *found = true;
        *v = (const uint8_t *)rocksdb_pinnableslice_value(e->pin, vn);
    }
    return 0;
}

static int rocks_begin(struct ms_engine *base)
{
    struct rocks_engine *e = (struct rocks_engine *)base;

    release_value(e);
    if (e->in_txn)
        return eng_inval(e, "begin inside a transaction");
    if (e->iters != NULL)
        return eng_inval(e, "begin with a live iterator");
    rocksdb_writebatch_wi_clear(e->batch);
    e->in_txn = true;
    e->read_failed = false;
    /* RocksDB's per-thread perf counters cost ~10% of a small write; we
     * never read them. The level is per thread, so it is set here, on the
     * thread that applies. */
    rocksdb_set_perf_level(rocksdb_disable);
    return 0;
}

static int rocks_put(struct ms_engine *base, const uint8_t *k, size_t kn,
                     const uint8_t *v, size_t vn)
{
    struct rocks_engine *e = (struct rocks_engine *)base;

    release_value(e);
    if (!e->in_txn)
        return eng_inval(e, "put outside a transaction");
    if (reserved(k, kn))
        return eng_inval(e, "put of a reserved key (first byte 0x00)");
    rocksdb_writebatch_wi_put(e->batch, (const char *)k, kn, (const char *)v,
                              vn);
    return 0;
}

static int rocks_del(struct ms_engine *base, const uint8_t *k, size_t kn)
{
    struct rocks_engine *e = (struct rocks_engine *)base;

    release_value(e);
    if (!e->in_txn)
        return eng_inval(e, "del outside a transaction");
    if (reserved(k, kn))
        return eng_inval(e, "del of a reserved key (first byte 0x00)");
    rocksdb_writebatch_wi_delete(e->batch, (const char *)k, kn);
    return 0;
}

/* The batch is written with sync=false (the WAL stays on): the Raft log has
 * already fsynced the entry being applied, and the applied index travels in
 * the same atomic batch as the data. After a process crash RocksDB's WAL
 * (written with write(2) on every commit) recovers the batch; after a power
 * loss either the whole batch survives or none of it, applied index
 * included, and the entries after the recovered applied index are applied
 * again from the Raft log. Either way every entry is applied exactly once,
 * without an fsync per apply. */
static int rocks_commit(struct ms_engine *base, uint64_t applied_index)
{
    struct rocks_engine *e = (struct rocks_engine *)base;
    uint8_t rec[8];
    char *rerr = NULL;

    release_value(e);
    if (!e->in_txn)
        return eng_inval(e, "commit outside a transaction");
    if (e->iters != NULL)
        return eng_inval(e, "commit with a live iterator");
    e->in_txn = false;
    if (e->read_failed) {
        rocksdb_writebatch_wi_clear(e->batch);
        /* errmsg still holds the iterator's error. */
        return MS_EIO;
    }
    put_be64(rec, applied_index);
    rocksdb_writebatch_wi_put(e->batch, applied_key, APPLIED_KEY_LEN,
                              (const char *)rec, sizeof(rec));
    rocksdb_write_writebatch_wi(e->db, e->wopts, e->batch, &rerr);
    rocksdb_writebatch_wi_clear(e->batch);
    if (rerr != NULL)
        return eng_err(e, "commit", rerr);
    e->applied = applied_index;
    return 0;
}

static uint64_t rocks_applied_index(struct ms_engine *base)
{
    return ((struct rocks_engine *)base)->applied;
}

/* One range deletion from the first key to just past the last one, written
 * with fsync: atomic and durable. The applied-index record is inside the
 * range, so the index reads 0 afterwards. Then SST files lying wholly in the
 * range are dropped at once; the rest goes away with compaction. */
static int rocks_clear(struct ms_engine *base)
{
    struct rocks_engine *e = (struct rocks_engine *)base;
    rocksdb_iterator_t *it = NULL;
    rocksdb_writebatch_t *wb = NULL;
    char *end = NULL;
    char *rerr = NULL;
    int rc = 0;

    release_value(e);
    if (e->in_txn)
        return eng_inval(e, "clear inside a transaction");
    if (e->iters != NULL)
        return eng_inval(e, "clear with a live iterator");
    it = rocksdb_create_iterator(e->db, e->ropts);
    rocksdb_iter_seek_to_last(it);
    if (!rocksdb_iter_valid(it)) {
        rocksdb_iter_get_error(it, &rerr);
        if (rerr != NULL)
            rc = eng_err(e, "clear", rerr);
        goto out;
    }
    size_t kn;
    const char *k = rocksdb_iter_key(it, &kn);
    end = malloc(kn + 1);
    if (end == NULL) {
        rc = ms_seterr(e->base.errmsg, sizeof(e->base.errmsg), MS_ENOMEM,
                       "rocksdb: clear %s: out of memory", e->path);
        goto out;
    }
    memcpy(end, k, kn);
    end[kn] = '\0'; /* the smallest key after the last one */
    wb = rocksdb_writebatch_create();
    rocksdb_writebatch_delete_range(wb, "", 0, end, kn + 1);
    rocksdb_write(e->db, e->wopts_sync, wb, &rerr);
    if (rerr != NULL) {
        rc = eng_err(e, "clear", rerr);
        goto out;
    }
    e->applied = 0;
    rocksdb_delete_file_in_range(e->db, "", 0, end, kn + 1, &rerr);
    if (rerr != NULL)
        rc = eng_err(e, "clear", rerr);
out:
    if (wb != NULL)
        rocksdb_writebatch_destroy(wb);
    free(end);
    rocksdb_iter_destroy(it);
    return rc;
}

static int rocks_iter_new(struct ms_engine *base, struct ms_engine_iter **out)
{
    struct rocks_engine *e = (struct rocks_engine *)base;
    struct rocks_iter *ri;
    rocksdb_iterator_t *it;

    release_value(e);
    ri = malloc(sizeof(*ri));
    if (ri == NULL)
        return ms_seterr(e->base.errmsg, sizeof(e->base.errmsg), MS_ENOMEM,
                         "rocksdb: iterator %s: out of memory", e->path);
    it = rocksdb_create_iterator(e->db, e->ropts);
    if (e->in_txn) {
        /* Takes ownership of the base iterator. */
        it = rocksdb_writebatch_wi_create_iterator_with_base(e->batch, it);
    }
    ri->e = e;
    ri->it = it;
    ri->prev = NULL;
    ri->next = e->iters;
    if (e->iters != NULL)
        e->iters->prev = ri;
    e->iters = ri;
    *out = (struct ms_engine_iter *)ri;
    return 0;
}

static bool iter_on_reserved(struct rocks_iter *ri)
{
    size_t kn;
    const char *k;

    if (!rocksdb_iter_valid(ri->it))
        return false;
    k = rocksdb_iter_key(ri->it, &kn);
    return reserved((const uint8_t *)k, kn);
}

/* After a forward move: step over the reserved range. */
static void skip_forward(struct rocks_iter *ri)
{
    if (iter_on_reserved(ri))
        rocksdb_iter_seek(ri->it, "\x01", 1);
}

/* After a backward move: the only visible key below the reserved range is
 * the empty key. */
static void skip_backward(struct rocks_iter *ri)
{
    if (iter_on_reserved(ri))
        rocksdb_iter_seek_for_prev(ri->it, "", 0);
}

static void rocks_iter_seek(struct ms_engine_iter *it, const uint8_t *k,
                            size_t kn)
{
    struct rocks_iter *ri = (struct rocks_iter *)it;

    rocksdb_iter_seek(ri->it, (const char *)k, kn);
    skip_forward(ri);
}

static void rocks_iter_seek_for_prev(struct ms_engine_iter *it,
                                     const uint8_t *k, size_t kn)
{
    struct rocks_iter *ri = (struct rocks_iter *)it;

    rocksdb_iter_seek_for_prev(ri->it, (const char *)k, kn);
    skip_backward(ri);
}

/* An iterator that stops on an error looks like the end of the range; so
 * that no write transaction acts on a truncated scan, the error is kept in
 * errmsg and fails the transaction's commit. */
static bool rocks_iter_valid(struct ms_engine_iter *it)
{
    struct rocks_iter *ri = (struct rocks_iter *)it;
    char *rerr = NULL;

    if (rocksdb_iter_valid(ri->it))
        return true;
    rocksdb_iter_get_error(ri->it, &rerr);
    if (rerr != NULL) {
        eng_err(ri->e, "iterate", rerr);
        if (ri->e->in_txn)
            ri->e->read_failed = true;
    }
    return false;
}

static void rocks_iter_next(struct ms_engine_iter *it)
{
    struct rocks_iter *ri = (struct rocks_iter *)it;

    if (!rocksdb_iter_valid(ri->it))
        return;
    rocksdb_iter_next(ri->it);
    skip_forward(ri);
}

static void rocks_iter_prev(struct ms_engine_iter *it)
{
    struct rocks_iter *ri = (struct rocks_iter *)it;

    if (!rocksdb_iter_valid(ri->it))
        return;
    rocksdb_iter_prev(ri->it);
    skip_backward(ri);
}

static const uint8_t *rocks_iter_key(struct ms_engine_iter *it, size_t *kn)
{
    struct rocks_iter *ri = (struct rocks_iter *)it;

    *kn = 0;
    if (!rocksdb_iter_valid(ri->it))
        return NULL;
    return (const uint8_t *)rocksdb_iter_key(ri->it, kn);
}

static const uint8_t *rocks_iter_value(struct ms_engine_iter *it, size_t *vn)
{
    struct rocks_iter *ri = (struct rocks_iter *)it;

    *vn = 0;
    if (!rocksdb_iter_valid(ri->it))
        return NULL;
    return (const uint8_t *)rocksdb_iter_value(ri->it, vn);
}

static void rocks_iter_free(struct ms_engine_iter *it)
{
    struct rocks_iter *ri = (struct rocks_iter *)it;

    if (ri == NULL)
        return;
    rocksdb_iter_destroy(ri->it);
    if (ri->prev != NULL)
        ri->prev->next = ri->next;
    else
        ri->e->iters = ri->next;
    if (ri->next != NULL)
        ri->next->prev = ri->prev;
    free(ri);
}

/* The live table files on disk plus the memtables (whose writes are in
 * the WAL on disk): two property reads, no I/O. Deleted and overwritten
 * data counts until a compaction of the files drops it (defragment). */
static uint64_t rocks_bytes(struct ms_engine *base)
{
    struct rocks_engine *e = (struct rocks_engine *)base;
    uint64_t live = 0, mem = 0;

    if (rocksdb_property_int(e->db, "rocksdb.live-sst-files-size", &live) != 0)
        live = 0;
    if (rocksdb_property_int(e->db, "rocksdb.cur-size-all-mem-tables", &mem) !=
        0)
        mem = 0;
    return live + mem;
}

/* Background work is behind when a full memtable still waits for its
 * flush or RocksDB slows or stops writes (too many level-0 files or too
 * much pending compaction): a write now could block the caller. Three
 * property reads, no I/O. */
static bool rocks_busy(struct ms_engine *base)
{
    struct rocks_engine *e = (struct rocks_engine *)base;
    uint64_t imm = 0, delayed = 0, stopped = 0;

    if (rocksdb_property_int(e->db, "rocksdb.num-immutable-mem-table", &imm) !=
        0)
        imm = 0;
    if (rocksdb_property_int(e->db, "rocksdb.actual-delayed-write-rate",
                             &delayed) != 0)
        delayed = 0;
    if (rocksdb_property_int(e->db, "rocksdb.is-write-stopped", &stopped) != 0)
        stopped = 0;
    return imm > 0 || delayed > 0 || stopped > 0;
}

static void rocks_close(struct ms_engine *base)
{
    struct rocks_engine *e = (struct rocks_engine *)base;

    if (e == NULL)
        return;
    release_value(e);
    /* RocksDB asserts that no iterator outlives the database. */
    while (e->iters != NULL)
        rocks_iter_free((struct ms_engine_iter *)e->iters);
    if (e->batch != NULL)
        rocksdb_writebatch_wi_destroy(e->batch);
    if (e->db != NULL)
        rocksdb_close(e->db);
    if (e->ropts != NULL)
        rocksdb_readoptions_destroy(e->ropts);
    if (e->wopts != NULL)
        rocksdb_writeoptions_destroy(e->wopts);
    if (e->wopts_sync != NULL)
        rocksdb_writeoptions_destroy(e->wopts_sync);
    free(e->path);
    free(e);
}

/* --- read-only views (snapshots served from another thread) --- */

static const struct ms_engine_ops rocks_view_ops;

static int view_write(struct ms_engine *base)
{
    return eng_inval((struct rocks_engine *)base, "write to a read-only view");
}

static int view_begin(struct ms_engine *base)
{
    return view_write(base);
}

static int view_put(struct ms_engine *base, const uint8_t *k, size_t kn,
                    const uint8_t *v, size_t vn)
{
    (void)k;
    (void)kn;
    (void)v;
    (void)vn;
    return view_write(base);
}

static int view_del(struct ms_engine *base, const uint8_t *k, size_t kn)
{
    (void)k;
    (void)kn;
    return view_write(base);
}

static int view_commit(struct ms_engine *base, uint64_t applied_index)
{
    (void)applied_index;
    return view_write(base);
}

static int view_clear(struct ms_engine *base)
{
    return view_write(base);
}

static int rocks_view(struct ms_engine *base, struct ms_engine **out)
{
    struct rocks_engine *e = (struct rocks_engine *)base;
    struct rocks_engine *v;

    *out = NULL;
    if (e->in_txn)
        return eng_inval(e, "view inside a transaction");
    v = calloc(1, sizeof(*v));
    if (v == NULL || (v->path = strdup(e->path)) == NULL ||
        (v->ropts = rocksdb_readoptions_create()) == NULL) {
        if (v != NULL) {
            free(v->path);
            free(v);
        }
        return ms_seterr(e->base.errmsg, sizeof(e->base.errmsg), MS_ENOMEM,
                         "rocksdb: view %s: out of memory", e->path);
    }
    v->base.ops = &rocks_view_ops;
    v->db = e->db;
    v->applied = e->applied;
    v->snap = rocksdb_create_snapshot(e->db);
    rocksdb_readoptions_set_snapshot(v->ropts, v->snap);
    /* a full scan: keep it out of the block cache the loop's reads use */
    rocksdb_readoptions_set_fill_cache(v->ropts, 0);
    *out = &v->base;
    return 0;
}

static void rocks_view_close(struct ms_engine *base)
{
    struct rocks_engine *v = (struct rocks_engine *)base;

    if (v == NULL)
        return;
    release_value(v);
    while (v->iters != NULL)
        rocks_iter_free((struct ms_engine_iter *)v->iters);
    rocksdb_release_snapshot(v->db, v->snap);
    rocksdb_readoptions_destroy(v->ropts);
    free(v->path);
    free(v);
}

static uint64_t view_bytes(struct ms_engine *base)
{
    (void)base;
    return 0;
}

static const struct ms_engine_ops rocks_view_ops = {
    .get = rocks_get,
    .begin = view_begin,
    .put = view_put,
    .del = view_del,
    .commit = view_commit,
    .applied_index = rocks_applied_index,
    .clear = view_clear,
    .iter_new = rocks_iter_new,
    .iter_seek = rocks_iter_seek,
    .iter_seek_for_prev = rocks_iter_seek_for_prev,
    .iter_valid = rocks_iter_valid,
    .iter_next = rocks_iter_next,
    .iter_prev = rocks_iter_prev,
    .iter_key = rocks_iter_key,
    .iter_value = rocks_iter_value,
    .iter_free = rocks_iter_free,
    .bytes = view_bytes,
    .close = rocks_view_close,
};

/* A manual compaction of the whole key space: RocksDB rewrites the table
 * files without the deleted and overwritten records. Thread-safe. */
static int rocks_defragment(struct ms_engine *base)
{
    struct rocks_engine *e = (struct rocks_engine *)base;

    rocksdb_compact_range(e->db, NULL, 0, NULL, 0);
    return 0;
}

static const struct ms_engine_ops rocks_ops = {
    .get = rocks_get,
    .begin = rocks_begin,
    .put = rocks_put,
    .del = rocks_del,
    .commit = rocks_commit,
    .applied_index = rocks_applied_index,
    .clear = rocks_clear,
    .iter_new = rocks_iter_new,
    .iter_seek = rocks_iter_seek,
    .iter_seek_for_prev = rocks_iter_seek_for_prev,
    .iter_valid = rocks_iter_valid,
    .iter_next = rocks_iter_next,
    .iter_prev = rocks_iter_prev,
    .iter_key = rocks_iter_key,
    .iter_value = rocks_iter_value,
    .iter_free = rocks_iter_free,
    .bytes = rocks_bytes,
    .close = rocks_close,
    .view = rocks_view,
    .defragment = rocks_defragment,
    .busy = rocks_busy,
};

/* Options for the database; the caller destroys them (and the cache) after
 * rocksdb_open, which copies what it needs. */
static rocksdb_options_t *make_options(rocksdb_cache_t *cache, int compression)
{
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_block_based_table_options_t *t;

    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_increase_parallelism(o, 2);
    rocksdb_options_set_write_buffer_size(o, WRITE_BUFFER_SIZE);
    rocksdb_options_set_max_write_buffer_number(o, MAX_WRITE_BUFFERS);
    rocksdb_options_set_level_compaction_dynamic_level_bytes(o, 1);
    /* Most lookups are of keys not written yet (new keys); a whole-key
     * bloom filter in the memtable answers those without a skiplist
     * search. */
    rocksdb_options_set_memtable_whole_key_filtering(o, 1);
    rocksdb_options_set_memtable_prefix_bloom_size_ratio(o,
                                                         MEMTABLE_BLOOM_RATIO);
    rocksdb_options_set_compression(o, compression);
    rocksdb_options_set_bytes_per_sync(o, 1u << 20);
    rocksdb_options_set_keep_log_file_num(o, 4);
    /* The store is written and iterated on the event loop: obsolete files
     * and memtables are deleted by background jobs, never inline (an
     * unlink of an old table file took 7 ms on the loop during a
     * compaction sweep). */
    rocksdb_options_set_avoid_unnecessary_blocking_io(o, 1);
    rocksdb_options_set_max_log_file_size(o, 4u << 20);

    t = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(t, cache);
    /* The table options own the filter policy from here on. Index and
     * filter blocks stay in the table readers (not in the block cache):
     * with them in the cache, every lookup of an absent key re-read the
     * filter from the file (measured: 3x slower puts). */
    rocksdb_block_based_options_set_filter_policy(
        t, rocksdb_filterpolicy_create_bloom_full(BLOOM_BITS_PER_KEY));
    rocksdb_options_set_block_based_table_factory(o, t);
    rocksdb_block_based_options_destroy(t);
    return o;
}

static rocksdb_t *open_db(const char *path, int compression, char **rerr)
{
    rocksdb_cache_t *cache = rocksdb_cache_create_lru(BLOCK_CACHE_SIZE);
    rocksdb_options_t *o = make_options(cache, compression);
    rocksdb_t *db = rocksdb_open(o, path, rerr);

    rocksdb_options_destroy(o);
    rocksdb_cache_destroy(cache);
    return db;
}

int ms_engine_rocksdb_open(const char *path, struct ms_engine **out,
                           char *errmsg, size_t errmsg_size)
{
    struct rocks_engine *e = NULL;
    rocksdb_pinnableslice_t *pin = NULL;
    char *rerr = NULL;
    struct stat st;
    int rc;

    if (path == NULL || path[0] == '\0')
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "rocksdb: open: empty path");
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return ms_seterr(errmsg, errmsg_size, MS_EIO,
                         "rocksdb: open %s: mkdir: %s", path, strerror(errno));
    if (stat(path, &st) != 0)
        return ms_seterr(errmsg, errmsg_size, MS_EIO, "rocksdb: open %s: %s",
                         path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return ms_seterr(errmsg, errmsg_size, MS_EIO,
                         "rocksdb: open %s: not a directory", path);

    e = calloc(1, sizeof(*e));
    if (e == NULL)
        goto nomem;
    e->base.ops = &rocks_ops;
    e->path = strdup(path);
    if (e->path == NULL)
        goto nomem;

    e->db = open_db(path, rocksdb_lz4_compression, &rerr);
    if (e->db == NULL && rerr != NULL && strstr(rerr, "ompression") != NULL) {
        /* A RocksDB built without LZ4: store uncompressed. */
        rocksdb_free(rerr);
        rerr = NULL;
        e->db = open_db(path, rocksdb_no_compression, &rerr);
    }
    if (e->db == NULL) {
        rc = rocks_err(errmsg, errmsg_size, "open", path, rerr);
        goto err;
    }

    e->ropts = rocksdb_readoptions_create();
    if (e->ropts != NULL)
        rocksdb_readoptions_set_background_purge_on_iterator_cleanup(e->ropts,
                                                                     1);
    e->wopts = rocksdb_writeoptions_create();
    e->wopts_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(e->wopts, 0);
    rocksdb_writeoptions_set_sync(e->wopts_sync, 1);
    /* overwrite_keys: required by iterators over batch + database. */
    e->batch = rocksdb_writebatch_wi_create(0, 1);

    pin = rocksdb_get_pinned(e->db, e->ropts, applied_key, APPLIED_KEY_LEN,
                             &rerr);
    if (rerr != NULL) {
        rc = rocks_err(errmsg, errmsg_size, "open", path, rerr);
        goto err;
    }
    if (pin != NULL) {
        size_t n;
        const char *v = rocksdb_pinnableslice_value(pin, &n);
        if (n != 8) {
            rc = ms_seterr(errmsg, errmsg_size, MS_ECORRUPT,
                           "rocksdb: open %s: applied index record has %zu "
                           "bytes, want 8",
                           path, n);
            goto err;
        }
        e->applied = get_be64((const uint8_t *)v);
        rocksdb_pinnableslice_destroy(pin);
        pin = NULL;
    }
    *out = &e->base;
    return 0;

nomem:
    rc = ms_seterr(errmsg, errmsg_size, MS_ENOMEM,
                   "rocksdb: open %s: out of memory", path);
err:
    if (pin != NULL)
        rocksdb_pinnableslice_destroy(pin);
    if (e != NULL)
        rocks_close(&e->base);
    return rc;
}
