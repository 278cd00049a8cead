/* test_engine.c - one suite run against every engine through the vtable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/engine.h"
#include "util/error.h"

enum kind { KIND_MEMORY, KIND_ROCKSDB };

static const enum kind kind_memory = KIND_MEMORY;
static const enum kind kind_rocksdb = KIND_ROCKSDB;

struct fx {
    enum kind kind;
    char dir[64];  /* temp dir (rocksdb) */
    char path[96]; /* dir/db */
    struct ms_engine *e;
    char errmsg[MS_ERRMSG_SIZE];
};

static int rm_entry(const char *p, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int open_engine(struct fx *f)
{
    if (f->kind == KIND_MEMORY)
        return ms_engine_memory_open(&f->e, f->errmsg, sizeof(f->errmsg));
    return ms_engine_rocksdb_open(f->path, &f->e, f->errmsg, sizeof(f->errmsg));
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    f->kind = *(const enum kind *)*state;
    snprintf(f->dir, sizeof(f->dir), "/tmp/ms_test_engine.XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/db", f->dir);
    /* A memory engine that is not written yet (MS_ENOTIMPL) leaves e NULL
     * and its tests skip. */
    if (open_engine(f) != 0)
        f->e = NULL;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    if (f->e != NULL)
        f->e->ops->close(f->e);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static struct ms_engine *eng(void **state)
{
    struct fx *f = *state;

    if (f->e == NULL) {
        print_message("engine not available: %s\n", f->errmsg);
        skip();
    }
    return f->e;
}

static const uint8_t *B(const char *s)
{
    return (const uint8_t *)s;
}

static void put(struct ms_engine *e, const char *k, size_t kn, const char *v)
{
    assert_int_equal(e->ops->put(e, B(k), kn, B(v), strlen(v)), 0);
}

static void putz(struct ms_engine *e, const char *k, const char *v)
{
    put(e, k, strlen(k), v);
}

/* Commits the given NUL-terminated key=value pairs as one transaction. */
static void commit_kvs(struct ms_engine *e, uint64_t idx, const char **kv,
                       size_t n)
{
    assert_int_equal(e->ops->begin(e), 0);
    for (size_t i = 0; i + 1 < n; i += 2)
        putz(e, kv[i], kv[i + 1]);
    assert_int_equal(e->ops->commit(e, idx), 0);
}

/* Asserts get(k) finds exactly v (v NULL: absent). */
static void expect_get(struct ms_engine *e, const char *k, size_t kn,
                       const char *v)
{
    const uint8_t *got = NULL;
    size_t gn = 0;
    bool found = true;

    assert_int_equal(e->ops->get(e, B(k), kn, &got, &gn, &found), 0);
    if (v == NULL) {
        assert_false(found);
        return;
    }
    assert_true(found);
    assert_int_equal(gn, strlen(v));
    assert_memory_equal(got, v, gn);
}

static void expect_getz(struct ms_engine *e, const char *k, const char *v)
{
    expect_get(e, k, strlen(k), v);
}

/* Asserts the iterator is on key k (kn bytes). */
static void expect_at(struct ms_engine *e, struct ms_engine_iter *it,
                      const char *k, size_t kn)
{
    size_t n = 0;
    const uint8_t *p;

    assert_true(e->ops->iter_valid(it));
    p = e->ops->iter_key(it, &n);
    assert_int_equal(n, kn);
    if (kn > 0)
        assert_memory_equal(p, k, kn);
}

static void expect_atz(struct ms_engine *e, struct ms_engine_iter *it,
                       const char *k)
{
    expect_at(e, it, k, strlen(k));
}

/* Counts the keys a full forward scan returns. */
static size_t count_keys(struct ms_engine *e)
{
    struct ms_engine_iter *it;
    size_t n = 0;

    assert_int_equal(e->ops->iter_new(e, &it), 0);
    for (e->ops->iter_seek(it, B(""), 0); e->ops->iter_valid(it);
         e->ops->iter_next(it))
        n++;
    e->ops->iter_free(it);
    return n;
}

/* --- both engines ------------------------------------------------------ */

/* A new engine is empty with applied index 0. */
static void test_new_engine_empty(void **state)
{
    struct ms_engine *e = eng(state);

    assert_int_equal(e->ops->applied_index(e), 0);
    assert_int_equal(count_keys(e), 0);
    expect_getz(e, "a", NULL);
}

/* put/get/del in transactions; commit records the applied index. */
static void test_put_get_del(void **state)
{
    struct ms_engine *e = eng(state);
    const char *kv[] = {"a", "1", "b", "2"};

    commit_kvs(e, 1, kv, 4);
    expect_getz(e, "a", "1");
    expect_getz(e, "b", "2");
    expect_getz(e, "c", NULL);
    assert_int_equal(e->ops->applied_index(e), 1);

    assert_int_equal(e->ops->begin(e), 0);
    assert_int_equal(e->ops->del(e, B("a"), 1), 0);
    putz(e, "b", "22");
    assert_int_equal(e->ops->commit(e, 2), 0);
    expect_getz(e, "a", NULL);
    expect_getz(e, "b", "22");
    assert_int_equal(e->ops->applied_index(e), 2);
    assert_int_equal(count_keys(e), 1);
}

/* get inside a transaction sees its own puts, overwrites and deletes. */
static void test_read_your_writes_get(void **state)
{
    struct ms_engine *e = eng(state);
    const char *kv[] = {"a", "1", "b", "2"};

    commit_kvs(e, 1, kv, 4);
    assert_int_equal(e->ops->begin(e), 0);
    putz(e, "c", "3");
    putz(e, "a", "11");
    assert_int_equal(e->ops->del(e, B("b"), 1), 0);
    expect_getz(e, "c", "3");
    expect_getz(e, "a", "11");
    expect_getz(e, "b", NULL);
    putz(e, "b", "222");
    expect_getz(e, "b", "222");
    assert_int_equal(e->ops->commit(e, 2), 0);
    expect_getz(e, "a", "11");
    expect_getz(e, "b", "222");
    expect_getz(e, "c", "3");
}

/* Iterators made inside a transaction merge its writes with the data. */
static void test_read_your_writes_iter(void **state)
{
    struct ms_engine *e = eng(state);
    const char *kv[] = {"a", "1", "c", "3", "e", "5"};
    struct ms_engine_iter *it;
    size_t vn;
    const uint8_t *v;

    commit_kvs(e, 1, kv, 6);
    assert_int_equal(e->ops->begin(e), 0);
    putz(e, "b", "2");
    putz(e, "c", "33");
    assert_int_equal(e->ops->del(e, B("e"), 1), 0);
    putz(e, "f", "6");

    assert_int_equal(e->ops->iter_new(e, &it), 0);
    e->ops->iter_seek(it, B(""), 0);
    expect_atz(e, it, "a");
    e->ops->iter_next(it);
    expect_atz(e, it, "b");
    e->ops->iter_next(it);
    expect_atz(e, it, "c");
    v = e->ops->iter_value(it, &vn);
    assert_int_equal(vn, 2);
    assert_memory_equal(v, "33", 2);
    e->ops->iter_next(it);
    expect_atz(e, it, "f");
    e->ops->iter_next(it);
    assert_false(e->ops->iter_valid(it));

    e->ops->iter_seek_for_prev(it, B("e"), 1);
    expect_atz(e, it, "c");
    e->ops->iter_prev(it);
    expect_atz(e, it, "b");
    e->ops->iter_free(it);
    assert_int_equal(e->ops->commit(e, 2), 0);

    assert_int_equal(count_keys(e), 4);
}

/* Keys order by memcmp, shorter first; 0x00 and 0xFF bytes are plain
 * bytes: "a" < "a\0" < "a\0\0" < "a\x01" < "ab" < "a\xff" < "b" < "\xff". */
static void test_binary_order(void **state)
{
    struct ms_engine *e = eng(state);
    static const struct {
        const char *k;
        size_t n;
    } sorted[] = {
        {"a", 1},     {"a\0", 2}, {"a\0\0", 3}, {"a\x01", 2}, {"ab", 2},
        {"a\xff", 2}, {"b", 1},   {"b\0c", 3},  {"\xff", 1},  {"\xff\xff", 2},
    };
    const size_t n = sizeof(sorted) / sizeof(sorted[0]);
    struct ms_engine_iter *it;
    size_t i;

    /* Insert in a scrambled order. */
    assert_int_equal(e->ops->begin(e), 0);
    for (i = 0; i < n; i++) {
        size_t j = (i * 7) % n;
        put(e, sorted[j].k, sorted[j].n, "v");
    }
    assert_int_equal(e->ops->commit(e, 1), 0);
    assert_int_equal(count_keys(e), n);

    assert_int_equal(e->ops->iter_new(e, &it), 0);
    e->ops->iter_seek(it, B(""), 0);
    for (i = 0; i < n; i++) {
        expect_at(e, it, sorted[i].k, sorted[i].n);
        e->ops->iter_next(it);
    }
    assert_false(e->ops->iter_valid(it));
    e->ops->iter_seek_for_prev(it, B("\xff\xff\xff"), 3);
    for (i = n; i-- > 0;) {
        expect_at(e, it, sorted[i].k, sorted[i].n);
        e->ops->iter_prev(it);
    }
    assert_false(e->ops->iter_valid(it));

    /* seek on a prefix lands on the prefix itself, then its extensions */
    e->ops->iter_seek(it, B("a\0"), 2);
    expect_at(e, it, "a\0", 2);
    e->ops->iter_seek(it, B("a\0\x01"), 3);
    expect_at(e, it, "a\x01", 2);
    e->ops->iter_seek_for_prev(it, B("a\0\x01"), 3);
    expect_at(e, it, "a\0\0", 3);
    e->ops->iter_free(it);

    expect_get(e, "a\0", 2, "v");
    expect_get(e, "a\0\x01", 3, NULL);
}

/* seek / seek_for_prev / next / prev at both ends of the key range. */
static void test_seek_edges(void **state)
{
    struct ms_engine *e = eng(state);
    const char *kv[] = {"b", "1", "d", "2"};
    struct ms_engine_iter *it;

    assert_int_equal(e->ops->iter_new(e, &it), 0);
    e->ops->iter_seek(it, B(""), 0);
    assert_false(e->ops->iter_valid(it));
    e->ops->iter_seek_for_prev(it, B("\xff"), 1);
    assert_false(e->ops->iter_valid(it));
    e->ops->iter_free(it);

    commit_kvs(e, 1, kv, 4);
    assert_int_equal(e->ops->iter_new(e, &it), 0);
    e->ops->iter_seek(it, B("a"), 1);
    expect_atz(e, it, "b");
    e->ops->iter_seek(it, B("b"), 1);
    expect_atz(e, it, "b");
    e->ops->iter_seek(it, B("c"), 1);
    expect_atz(e, it, "d");
    e->ops->iter_seek(it, B("d\0"), 2);
    assert_false(e->ops->iter_valid(it));
    e->ops->iter_seek(it, B("e"), 1);
    assert_false(e->ops->iter_valid(it));

    e->ops->iter_seek_for_prev(it, B("a"), 1);
    assert_false(e->ops->iter_valid(it));
    e->ops->iter_seek_for_prev(it, B("b"), 1);
    expect_atz(e, it, "b");
    e->ops->iter_seek_for_prev(it, B("b\0"), 2);
    expect_atz(e, it, "b");
    e->ops->iter_seek_for_prev(it, B("c"), 1);
    expect_atz(e, it, "b");
    e->ops->iter_seek_for_prev(it, B("z"), 1);
    expect_atz(e, it, "d");

    /* walking off either end */
    e->ops->iter_next(it);
    assert_false(e->ops->iter_valid(it));
    e->ops->iter_seek(it, B("b"), 1);
    e->ops->iter_prev(it);
    assert_false(e->ops->iter_valid(it));
    /* a fresh seek revives an exhausted iterator */
    e->ops->iter_seek(it, B("c"), 1);
    expect_atz(e, it, "d");
    e->ops->iter_prev(it);
    expect_atz(e, it, "b");
    e->ops->iter_free(it);
}

/* Empty values, binary values and a large value round-trip exactly. */
static void test_values(void **state)
{
    struct ms_engine *e = eng(state);
    static const uint8_t bin[] = {0x00, 0xff, 0x00, 0x01};
    const size_t big_n = 200 * 1024;
    uint8_t *big = malloc(big_n);
    const uint8_t *v;
    size_t vn;
    bool found;

    assert_non_null(big);
    for (size_t i = 0; i < big_n; i++)
        big[i] = (uint8_t)(i * 31 + 7);
    assert_int_equal(e->ops->begin(e), 0);
    assert_int_equal(e->ops->put(e, B("empty"), 5, B(""), 0), 0);
    assert_int_equal(e->ops->put(e, B("bin"), 3, bin, sizeof(bin)), 0);
    assert_int_equal(e->ops->put(e, B("big"), 3, big, big_n), 0);
    assert_int_equal(e->ops->commit(e, 1), 0);

    assert_int_equal(e->ops->get(e, B("empty"), 5, &v, &vn, &found), 0);
    assert_true(found);
    assert_int_equal(vn, 0);
    assert_int_equal(e->ops->get(e, B("bin"), 3, &v, &vn, &found), 0);
    assert_true(found);
    assert_int_equal(vn, sizeof(bin));
    assert_memory_equal(v, bin, sizeof(bin));
    assert_int_equal(e->ops->get(e, B("big"), 3, &v, &vn, &found), 0);
    assert_true(found);
    assert_int_equal(vn, big_n);
    assert_memory_equal(v, big, big_n);
    free(big);
}

/* applied_index follows each commit, also one without writes. */
static void test_applied_index(void **state)
{
    struct ms_engine *e = eng(state);
    const char *kv[] = {"a", "1"};

    commit_kvs(e, 7, kv, 2);
    assert_int_equal(e->ops->applied_index(e), 7);
    assert_int_equal(e->ops->begin(e), 0);
    assert_int_equal(e->ops->commit(e, 9), 0);
    assert_int_equal(e->ops->applied_index(e), 9);
    commit_kvs(e, UINT64_MAX - 1, kv, 2);
    assert_int_equal(e->ops->applied_index(e), UINT64_MAX - 1);
}

/* The applied-index record never shows through iterators or get. */
static void test_applied_key_hidden(void **state)
{
    struct ms_engine *e = eng(state);
    const char *kv[] = {"a", "1", "k", "2"};
    struct ms_engine_iter *it;

    commit_kvs(e, 3, kv, 4);
    assert_int_equal(count_keys(e), 2);
    assert_int_equal(e->ops->iter_new(e, &it), 0);
    e->ops->iter_seek(it, B(""), 0);
    expect_atz(e, it, "a");
    e->ops->iter_prev(it);
    assert_false(e->ops->iter_valid(it));
    e->ops->iter_seek(it, B("\0"), 1);
    expect_atz(e, it, "a");
    e->ops->iter_seek_for_prev(it, B("\0zzzzzzzz"), 9);
    assert_false(e->ops->iter_valid(it));
    e->ops->iter_seek_for_prev(it, B("a"), 1);
    expect_atz(e, it, "a");
    e->ops->iter_prev(it);
    assert_false(e->ops->iter_valid(it));
    e->ops->iter_free(it);

    /* the same inside a transaction */
    assert_int_equal(e->ops->begin(e), 0);
    putz(e, "b", "3");
    assert_int_equal(e->ops->iter_new(e, &it), 0);
    e->ops->iter_seek_for_prev(it, B("b"), 1);
    expect_atz(e, it, "b");
    e->ops->iter_prev(it);
    expect_atz(e, it, "a");
    e->ops->iter_prev(it);
    assert_false(e->ops->iter_valid(it));
    e->ops->iter_seek(it, B(""), 0);
    expect_atz(e, it, "a");
    e->ops->iter_free(it);
    assert_int_equal(e->ops->commit(e, 4), 0);
    expect_get(e, "\0applied", 8, NULL);
}

/* clear removes every key, resets the applied index, and the engine keeps
 * working afterwards. */
static void test_clear(void **state)
{
    struct ms_engine *e = eng(state);
    const char *kv[] = {"a", "1", "b", "2", "\xff\xff", "3"};
    const char *kv2[] = {"c", "4"};

    commit_kvs(e, 5, kv, 6);
    assert_int_equal(e->ops->clear(e), 0);
    assert_int_equal(count_keys(e), 0);
    expect_getz(e, "a", NULL);
    expect_getz(e, "\xff\xff", NULL);
    assert_int_equal(e->ops->applied_index(e), 0);
    /* clearing an empty engine is fine */
    assert_int_equal(e->ops->clear(e), 0);

    commit_kvs(e, 6, kv2, 2);
    expect_getz(e, "c", "4");
    expect_getz(e, "a", NULL);
    assert_int_equal(count_keys(e), 1);
    assert_int_equal(e->ops->applied_index(e), 6);
}

/* bytes grows with the data held. */
static void test_bytes(void **state)
{
    struct ms_engine *e = eng(state);
    char k[32], v[128];
    uint64_t before = e->ops->bytes(e);

    memset(v, 'x', sizeof(v) - 1);
    v[sizeof(v) - 1] = '\0';
    assert_int_equal(e->ops->begin(e), 0);
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof(k), "key%06d", i);
        putz(e, k, v);
    }
    assert_int_equal(e->ops->commit(e, 1), 0);
    assert_true(e->ops->bytes(e) > before);
    assert_true(e->ops->bytes(e) >= 1000u * 100);
}

/* --- rocksdb only ----------------------------------------------------- */

/* Data and applied index survive close and reopen; so does a clear. */
static void test_rocksdb_reopen(void **state)
{
    struct fx *f = *state;
    struct ms_engine *e = eng(state);
    const char *kv[] = {"a", "1", "b\0", "2", "z", "3"};

    commit_kvs(e, 41, kv, 6);
    assert_int_equal(e->ops->begin(e), 0);
    assert_int_equal(e->ops->del(e, B("z"), 1), 0);
    put(e, "b\0c", 3, "4");
    assert_int_equal(e->ops->commit(e, 42), 0);
    e->ops->close(e);
    f->e = NULL;

    assert_int_equal(open_engine(f), 0);
    e = f->e;
    assert_int_equal(e->ops->applied_index(e), 42);
    expect_getz(e, "a", "1");
    expect_getz(e, "b", "2");
    expect_get(e, "b\0c", 3, "4");
    expect_getz(e, "z", NULL);
    assert_int_equal(count_keys(e), 3);

    assert_int_equal(e->ops->clear(e), 0);
    e->ops->close(e);
    f->e = NULL;
    assert_int_equal(open_engine(f), 0);
    e = f->e;
    assert_int_equal(e->ops->applied_index(e), 0);
    assert_int_equal(count_keys(e), 0);
}

/* Keys starting with 0x00 are reserved: put and del refuse them. */
static void test_rocksdb_reserved_keys(void **state)
{
    struct ms_engine *e = eng(state);

    assert_int_equal(e->ops->begin(e), 0);
    assert_int_equal(e->ops->put(e, B("\0applied"), 8, B("x"), 1), MS_EINVAL);
    assert_int_equal(e->ops->del(e, B("\0applied"), 8), MS_EINVAL);
    putz(e, "a", "1");
    assert_int_equal(e->ops->commit(e, 3), 0);
    assert_int_equal(e->ops->applied_index(e), 3);
}

/* The empty key is an ordinary key that sorts before every other one. */
static void test_rocksdb_empty_key(void **state)
{
    struct ms_engine *e = eng(state);
    struct ms_engine_iter *it;

    assert_int_equal(e->ops->begin(e), 0);
    put(e, "", 0, "e");
    putz(e, "a", "1");
    assert_int_equal(e->ops->commit(e, 1), 0);
    expect_get(e, "", 0, "e");
    assert_int_equal(count_keys(e), 2);
    assert_int_equal(e->ops->iter_new(e, &it), 0);
    e->ops->iter_seek_for_prev(it, B("a"), 1);
    expect_atz(e, it, "a");
    e->ops->iter_prev(it); /* steps over the applied-index record */
    expect_at(e, it, "", 0);
    e->ops->iter_next(it);
    expect_atz(e, it, "a");
    e->ops->iter_seek_for_prev(it, B("\0zz"), 3);
    expect_at(e, it, "", 0);
    e->ops->iter_free(it);
}

/* Overwriting or deleting the iterator's current key inside a transaction
 * (what a range delete does) leaves the walk intact: every key once. */
static void test_rocksdb_write_during_iteration(void **state)
{
    struct ms_engine *e = eng(state);
    struct ms_engine_iter *it;
    char k[32], want[32], big[300];
    size_t n = 0, kn;
    const uint8_t *p;

    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(e->ops->begin(e), 0);
    for (int i = 0; i < 500; i++) {
        snprintf(k, sizeof(k), "k%04d", i);
        putz(e, k, "v");
    }
    assert_int_equal(e->ops->commit(e, 1), 0);
    assert_int_equal(e->ops->begin(e), 0);
    for (int i = 500; i < 600; i++) {
        snprintf(k, sizeof(k), "k%04d", i);
        putz(e, k, "v");
    }
    assert_int_equal(e->ops->iter_new(e, &it), 0);
    for (e->ops->iter_seek(it, B("k"), 1); e->ops->iter_valid(it) && n < 1000;
         e->ops->iter_next(it)) {
        p = e->ops->iter_key(it, &kn);
        assert_true(kn < sizeof(k));
        memcpy(k, p, kn);
        k[kn] = '\0';
        snprintf(want, sizeof(want), "k%04zu", n);
        assert_string_equal(k, want); /* in order, none skipped or twice */
        if (n % 3 == 0)
            assert_int_equal(e->ops->del(e, B(k), kn), 0);
        else
            put(e, k, kn, big);
        n++;
    }
    e->ops->iter_free(it);
    assert_int_equal(n, 600);
    assert_int_equal(e->ops->commit(e, 2), 0);
    assert_int_equal(count_keys(e), 400);
    expect_getz(e, "k0000", NULL);
    expect_getz(e, "k0001", big);
}

/* begin and commit refuse to run while an iterator is alive. */
static void test_rocksdb_live_iterator(void **state)
{
    struct ms_engine *e = eng(state);
    struct ms_engine_iter *it;

    assert_int_equal(e->ops->iter_new(e, &it), 0);
    assert_int_equal(e->ops->begin(e), MS_EINVAL);
    e->ops->iter_free(it);
    assert_int_equal(e->ops->begin(e), 0);
    assert_int_equal(e->ops->iter_new(e, &it), 0);
    assert_int_equal(e->ops->commit(e, 1), MS_EINVAL);
    assert_int_equal(e->ops->clear(e), MS_EINVAL);
    e->ops->iter_free(it);
    assert_int_equal(e->ops->commit(e, 1), 0);
    assert_int_equal(e->ops->applied_index(e), 1);
}

/* put and del outside begin..commit are refused with MS_EINVAL (the memory
 * engine does not check: its begin is a no-op). */
static void test_rocksdb_write_outside_txn(void **state)
{
    struct ms_engine *e = eng(state);

    e->errmsg[0] = '\0';
    assert_int_equal(e->ops->put(e, B("a"), 1, B("1"), 1), MS_EINVAL);
    assert_true(strlen(e->errmsg) > 0);
    assert_int_equal(e->ops->del(e, B("a"), 1), MS_EINVAL);
    expect_getz(e, "a", NULL);
}

/* A view shows the state committed when it was taken (gets, iteration,
 * applied index) while the engine goes on; writes to it fail with
 * MS_EINVAL; the memory engine has none. */
static void test_rocksdb_view(void **state)
{
    struct ms_engine *e = eng(state), *v = NULL;
    static const char *kv1[] = {"a", "1", "b", "2"};
    static const char *kv2[] = {"a", "changed", "c", "3"};
    struct ms_engine_iter *it;
    size_t n = 0, kn;

    commit_kvs(e, 5, kv1, 4);
    assert_non_null(e->ops->view);
    assert_int_equal(e->ops->view(e, &v), 0);
    commit_kvs(e, 6, kv2, 4);
    expect_getz(v, "a", "1");
    expect_getz(v, "c", NULL);
    expect_getz(e, "a", "changed");
    assert_int_equal(v->ops->applied_index(v), 5);
    assert_int_equal(e->ops->applied_index(e), 6);
    assert_int_equal(v->ops->iter_new(v, &it), 0);
    for (v->ops->iter_seek(it, B(""), 0); v->ops->iter_valid(it);
         v->ops->iter_next(it)) {
        const uint8_t *k = v->ops->iter_key(it, &kn);
        assert_true(kn == 1 && (k[0] == 'a' || k[0] == 'b'));
        n++;
    }
    assert_int_equal(n, 2);
    v->ops->iter_free(it);
    assert_int_equal(v->ops->begin(v), MS_EINVAL);
    assert_int_equal(v->ops->put(v, B("x"), 1, B("1"), 1), MS_EINVAL);
    assert_int_equal(v->ops->del(v, B("a"), 1), MS_EINVAL);
    assert_int_equal(v->ops->commit(v, 9), MS_EINVAL);
    assert_int_equal(v->ops->clear(v), MS_EINVAL);
    v->ops->close(v);
    expect_getz(e, "c", "3");
}

/* defragment drops deleted data from the files: bytes (the live files
 * plus memtables) fall back after a delete of everything; the memory
 * engine has nothing to defragment. */
static void test_rocksdb_defragment(void **state)
{
    struct ms_engine *e = eng(state);
    char k[32], v[1024];
    uint64_t full, empty;

    uint32_t x = 12345;

    v[sizeof(v) - 1] = '\0';
    assert_int_equal(e->ops->begin(e), 0);
    for (int i = 0; i < 4000; i++) {
        snprintf(k, sizeof(k), "key%06d", i);
        for (size_t j = 0; j + 1 < sizeof(v); j++) {
            x = x * 1103515245u + 12345u; /* incompressible values */
            v[j] = (char)('a' + (x >> 16) % 26);
        }
        putz(e, k, v);
    }
    assert_int_equal(e->ops->commit(e, 1), 0);
    assert_int_equal(e->ops->defragment(e), 0);
    full = e->ops->bytes(e);
    assert_true(full >= 4000u * 500);
    assert_int_equal(e->ops->begin(e), 0);
    for (int i = 0; i < 4000; i++) {
        snprintf(k, sizeof(k), "key%06d", i);
        assert_int_equal(e->ops->del(e, B(k), strlen(k)), 0);
    }
    assert_int_equal(e->ops->commit(e, 2), 0);
    assert_int_equal(e->ops->defragment(e), 0);
    empty = e->ops->bytes(e);
    assert_true(empty < full / 10);
    assert_int_equal(e->ops->applied_index(e), 2);
    expect_getz(e, "key000001", NULL);
}

/* Opening a path that is a regular file fails with MS_EIO naming it. */
static void test_rocksdb_open_regular_file(void **state)
{
    struct fx *f = *state;
    char path[128];
    char errmsg[MS_ERRMSG_SIZE] = "";
    struct ms_engine *e2 = NULL;
    int fd;

    snprintf(path, sizeof(path), "%s/file", f->dir);
    fd = open(path, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(ms_engine_rocksdb_open(path, &e2, errmsg, sizeof(errmsg)),
                     MS_EIO);
    assert_null(e2);
    assert_non_null(strstr(errmsg, path));
    assert_non_null(strstr(errmsg, "rocksdb: open"));

    /* ... and so does a directory below a missing parent */
    snprintf(path, sizeof(path), "%s/missing/db", f->dir);
    assert_int_equal(ms_engine_rocksdb_open(path, &e2, errmsg, sizeof(errmsg)),
                     MS_EIO);
    assert_non_null(strstr(errmsg, path));
}

/* A directory already open (LOCK held) cannot be opened a second time. */
static void test_rocksdb_open_locked(void **state)
{
    struct fx *f = *state;
    char errmsg[MS_ERRMSG_SIZE] = "";
    struct ms_engine *e2 = NULL;

    (void)eng(state);
    assert_int_equal(
        ms_engine_rocksdb_open(f->path, &e2, errmsg, sizeof(errmsg)), MS_EIO);
    assert_null(e2);
    assert_non_null(strstr(errmsg, f->path));
}

#define T(t, kind)                                                             \
    cmocka_unit_test_prestate_setup_teardown(t, setup, teardown, (void *)&kind)
#define COMMON(kind)                                                           \
    T(test_new_engine_empty, kind), T(test_put_get_del, kind),                 \
        T(test_read_your_writes_get, kind),                                    \
        T(test_read_your_writes_iter, kind), T(test_binary_order, kind),       \
        T(test_seek_edges, kind), T(test_values, kind),                        \
        T(test_applied_index, kind), T(test_applied_key_hidden, kind),         \
        T(test_clear, kind), T(test_bytes, kind)

int main(void)
{
    const struct CMUnitTest memory[] = {
        COMMON(kind_memory),
    };
    const struct CMUnitTest rocksdb[] = {
        COMMON(kind_rocksdb),
        T(test_rocksdb_reopen, kind_rocksdb),
        T(test_rocksdb_reserved_keys, kind_rocksdb),
        T(test_rocksdb_empty_key, kind_rocksdb),
        T(test_rocksdb_write_during_iteration, kind_rocksdb),
        T(test_rocksdb_live_iterator, kind_rocksdb),
        T(test_rocksdb_write_outside_txn, kind_rocksdb),
        T(test_rocksdb_view, kind_rocksdb),
        T(test_rocksdb_defragment, kind_rocksdb),
        T(test_rocksdb_open_regular_file, kind_rocksdb),
        T(test_rocksdb_open_locked, kind_rocksdb),
    };
    int failed = 0;

    failed += cmocka_run_group_tests_name("engine_memory", memory, NULL, NULL);
    failed +=
        cmocka_run_group_tests_name("engine_rocksdb", rocksdb, NULL, NULL);
    return failed;
}
