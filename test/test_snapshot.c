/* test_snapshot.c - snapshot save/load round trips across backends, the
 * reader API, and detection of truncated or corrupted snapshots. */
#include "store_fixture.h"

/* Builds a state with history, tombstones, leases and a compaction. */
static void build_state(struct fx *f)
{
    struct ms_op ops[3] = {op_put("b", "b1"), op_put("c", "c1"),
                           op_put("bin\0ary", "x")};
    struct ms_result *r;

    ops[2].u.put.key = (struct ms_bytes){(const uint8_t *)"bin\0ary", 7};
    assert_int_equal(fx_apply(f, op_grant(11, 60))->err, 0);
    assert_int_equal(fx_apply(f, op_grant(12, 5))->err, 0);
    fx_apply(f, op_put("a", "a1"));           /* 2 */
    fx_apply(f, op_put_lease("a", "a2", 11)); /* 3 */
    fx_apply_n(f, ops, 3);                    /* 4 5 6 */
    fx_apply(f, op_del("c", BNONE));          /* 7 */
    fx_apply(f, op_put("d", ""));             /* 8: empty value */
    fx_apply(f, op_put("b", "b2"));           /* 9 */
    r = fx_apply(f, op_compact(4));
    assert_int_equal(r->err, 0);
    fx_apply(f, op_put_lease("e", "e1", 12)); /* 10 */
    fx_apply(f, op_del("d", BNONE));          /* 11 */
    assert_int_equal(ms_store_revision(f->s), 11);
}

static const uint8_t members[] = "member-table\0bytes";
static const struct ms_snapshot_extra extra_in = {
    .members = (uint8_t *)members,
    .members_len = sizeof(members),
    .codec = 2,
};

static void load_into(struct fx *f, const struct ms_buf *snap,
                      struct ms_snapshot_extra *x)
{
    struct mem_src src = {snap->data, snap->len, 0, 977};
    char err[MS_ERRMSG_SIZE];
    int rc = ms_store_snapshot_load(f->s, mem_read, &src, x, err, sizeof(err));
    if (rc != 0)
        fail_msg("load: %s", err);
}

/* Saves src, loads it into dst, and checks both give the same dump and the
 * same bytes, and that dst serves the same reads (history included). */
static void round_trip(enum ms_store_backend from, enum ms_store_backend to)
{
    struct fx *a = fx_new(from), *b = fx_new(to);
    struct ms_buf s1 = MS_BUF_INIT, s2 = MS_BUF_INIT;
    struct ms_buf d1 = MS_BUF_INIT, d2 = MS_BUF_INIT;
    struct ms_snapshot_extra x;
    struct ms_result *r;

    if (a == NULL || b == NULL) {
        fx_free(a);
        fx_free(b);
        fprintf(stderr, "note: rocksdb backend not available\n");
        skip();
    }
    build_state(a);
    fx_apply(b, op_put("stale", "state")); /* replaced by the load */
    fx_save(a, &extra_in, &s1);
    load_into(b, &s1, &x);
    assert_int_equal(x.codec, 2);
    assert_int_equal(x.members_len, sizeof(members));
    assert_memory_equal(x.members, members, sizeof(members));
    free(x.members);

    assert_int_equal(ms_store_revision(b->s), 11);
    assert_int_equal(ms_store_compact_revision(b->s), 4);
    assert_int_equal(ms_store_applied_index(b->s), a->index);
    assert_int_equal(ms_store_key_count(b->s), ms_store_key_count(a->s));
    fx_save(b, &extra_in, &s2);
    dump_snapshot(&s1, &d1);
    dump_snapshot(&s2, &d2);
    assert_int_equal(d1.len, d2.len);
    assert_memory_equal(d1.data, d2.data, d1.len);
    assert_int_equal(s1.len, s2.len);
    assert_memory_equal(s1.data, s2.data, s1.len);

    /* reads, history and leases work on the loaded store */
    r = fx_get(b, "stale", BNONE, 0);
    assert_int_equal(r->u.range.count, 0);
    r = fx_get(b, "b", BNONE, 4);
    assert_bytes(r->u.range.kvs[0].value, "b1");
    r = fx_get(b, "c", BNONE, 6);
    assert_int_equal(r->u.range.count, 1);
    r = fx_get(b, "a", BNONE, 3);
    assert_int_equal(r->err, MS_ECOMPACTED);
    b->index = a->index;
    r = fx_apply(b, op_revoke(11));
    assert_int_equal(r->revision, 12);
    r = fx_get(b, "a", BNONE, 0);
    assert_int_equal(r->u.range.count, 0);
    r = fx_apply(b, op_put_lease("x", "1", 12));
    assert_int_equal(r->err, 0);

    ms_buf_free(&s1);
    ms_buf_free(&s2);
    ms_buf_free(&d1);
    ms_buf_free(&d2);
    fx_free(a);
    fx_free(b);
}

/* memory -> memory round trip: identical state. */
static void test_memory_to_memory(void **state)
{
    (void)state;
    round_trip(MS_BACKEND_MEMORY, MS_BACKEND_MEMORY);
}

/* memory -> rocksdb round trip: identical state. */
static void test_memory_to_rocksdb(void **state)
{
    (void)state;
    round_trip(MS_BACKEND_MEMORY, MS_BACKEND_ROCKSDB);
}

/* rocksdb -> memory round trip: identical state. */
static void test_rocksdb_to_memory(void **state)
{
    (void)state;
    round_trip(MS_BACKEND_ROCKSDB, MS_BACKEND_MEMORY);
}

/* The reader API, without a store, reports header and counts. */
static void test_reader_info(void **state)
{
    struct fx *f = fx_new(MS_BACKEND_MEMORY);
    struct ms_buf snap = MS_BUF_INIT;
    struct ms_snapshot_info info;
    char err[MS_ERRMSG_SIZE];

    (void)state;
    build_state(f);
    fx_save(f, &extra_in, &snap);
    struct mem_src src = {snap.data, snap.len, 0, 0};
    assert_int_equal(
        ms_snapshot_verify(mem_read, &src, &info, err, sizeof(err)), 0);
    assert_int_equal(info.header.format_version, MS_SNAPSHOT_FORMAT_VERSION);
    assert_int_equal(info.header.codec, 2);
    assert_int_equal(info.header.revision, 11);
    assert_int_equal(info.header.compact_revision, 4);
    assert_int_equal(info.header.applied_index, f->index);
    assert_int_equal(info.leases, 2);
    /* keys a b bin.ary c d e; live: a b bin.ary e */
    assert_int_equal(info.keys, 6);
    assert_int_equal(info.live_keys, 4);
    assert_int_equal(info.live_keys, ms_store_key_count(f->s));
    /* versions kept after compact(4): a@3; b@9,b@4; bin@6; c@7(del),c@5;
     * d@11(del),d@8; e@10 */
    assert_int_equal(info.versions, 9);
    assert_int_equal(info.tombstones, 2);
    assert_int_equal(info.records, 11);
    assert_int_equal(info.members_len, sizeof(members));
    assert_int_equal(info.bytes, snap.len);
    ms_buf_free(&snap);
    fx_free(f);
}

/* An empty store round-trips too (no records, no members). */
static void test_empty_store(void **state)
{
    struct fx *a = fx_new(MS_BACKEND_MEMORY), *b = fx_new(MS_BACKEND_MEMORY);
    struct ms_buf snap = MS_BUF_INIT;
    struct ms_snapshot_extra x;

    (void)state;
    fx_save(a, NULL, &snap);
    load_into(b, &snap, &x);
    assert_null(x.members);
    assert_int_equal(x.members_len, 0);
    assert_int_equal(ms_store_revision(b->s), 1);
    assert_int_equal(ms_store_key_count(b->s), 0);
    ms_buf_free(&snap);
    fx_free(a);
    fx_free(b);
}

static bool is_load_error(int rc)
{
    return rc == MS_ECORRUPT || rc == MS_ECHECKSUM || rc == MS_ETRUNCATED ||
           rc == MS_EVERSION;
}

/* Loads bytes that must fail; checks the error names an offset and the
 * store is left empty. */
static void expect_load_failure(struct fx *f, const uint8_t *p, size_t n,
                                int want, const char *what, size_t at)
{
    struct mem_src src = {p, n, 0, 0};
    struct ms_snapshot_extra x;
    char err[MS_ERRMSG_SIZE] = "";
    int rc = ms_store_snapshot_load(f->s, mem_read, &src, &x, err, sizeof(err));

    if (!is_load_error(rc) || (want != 0 && rc != want))
        fail_msg("%s at %zu: rc %s (%s)", what, at, ms_errname(rc), err);
    if (strstr(err, "offset ") == NULL)
        fail_msg("%s at %zu: errmsg names no offset: %s", what, at, err);
    assert_null(x.members);
    assert_int_equal(ms_store_revision(f->s), 1);
    assert_int_equal(ms_store_key_count(f->s), 0);
    assert_int_equal(ms_store_applied_index(f->s), 0);
    assert_int_equal(fx_all(f, 0)->u.range.count, 0);
}

/* Every truncation of a snapshot fails (MS_ETRUNCATED) with an offset and
 * leaves the store empty. */
static void test_truncation(void **state)
{
    struct fx *a = fx_new(MS_BACKEND_MEMORY), *b = fx_new(MS_BACKEND_MEMORY);
    struct ms_buf snap = MS_BUF_INIT;

    (void)state;
    build_state(a);
    fx_save(a, &extra_in, &snap);
    for (size_t n = 0; n < snap.len; n++) {
        /* the store holds data before each attempt */
        b->index = 0;
        fx_apply(b, op_put("before", "x"));
        expect_load_failure(b, snap.data, n, MS_ETRUNCATED, "truncation", n);
    }
    ms_buf_free(&snap);
    fx_free(a);
    fx_free(b);
}

/* A flipped bit anywhere is detected (corrupt record, bad version,
 * checksum), the error names an offset, and the store is left empty;
 * trailing bytes are rejected too. */
static void test_bit_flips(void **state)
{
    struct fx *a = fx_new(MS_BACKEND_MEMORY), *b = fx_new(MS_BACKEND_MEMORY);
    struct ms_buf snap = MS_BUF_INIT;
    uint8_t *p;

    (void)state;
    build_state(a);
    fx_save(a, &extra_in, &snap);
    p = malloc(snap.len + 1);
    assert_non_null(p);
    for (size_t i = 0; i < snap.len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(p, snap.data, snap.len);
            p[i] ^= (uint8_t)(1u << bit);
            expect_load_failure(b, p, snap.len, 0, "bit flip", i);
        }
    }
    memcpy(p, snap.data, snap.len);
    p[6] = 9;
    expect_load_failure(b, p, snap.len, MS_EVERSION, "version", 6);
    memcpy(p, snap.data, snap.len);
    p[snap.len - 1] ^= 0x80;
    expect_load_failure(b, p, snap.len, MS_ECHECKSUM, "checksum", snap.len);
    memcpy(p, snap.data, snap.len);
    p[snap.len] = 0;
    expect_load_failure(b, p, snap.len + 1, MS_ECORRUPT, "trailing", 0);
    free(p);
    ms_buf_free(&snap);
    fx_free(a);
    fx_free(b);
}

/* A failed load into rocksdb leaves it empty too, also after a reopen. */
static void test_rocksdb_failed_load_empty(void **state)
{
    struct fx *a = fx_new(MS_BACKEND_MEMORY), *b = fx_new(MS_BACKEND_ROCKSDB);
    struct ms_buf snap = MS_BUF_INIT;

    (void)state;
    if (b == NULL) {
        fx_free(a);
        skip();
    }
    build_state(a);
    fx_save(a, &extra_in, &snap);
    fx_apply(b, op_put("before", "x"));
    snap.data[snap.len - 2] ^= 1; /* checksum */
    expect_load_failure(b, snap.data, snap.len, MS_ECHECKSUM, "checksum", 0);
    ms_results_free(&b->rs);
    ms_store_close(b->s);
    b->s = NULL;
    assert_int_equal(fx_open(b), 0);
    assert_int_equal(ms_store_revision(b->s), 1);
    assert_int_equal(fx_all(b, 0)->u.range.count, 0);
    ms_buf_free(&snap);
    fx_free(a);
    fx_free(b);
}

/* The reader rejects out-of-order records and bad header fields with an
 * offset (hand-written snapshots). */
static void test_reader_checks(void **state)
{
    struct ms_snapshot_writer w;
    struct ms_snapshot_header h = {MS_SNAPSHOT_FORMAT_VERSION, 1, 5, 0, 3};
    struct ms_buf snap = MS_BUF_INIT;
    struct ms_snapshot_info info;
    struct ms_kv kv = {.key = B("b"),
                       .value = B("v"),
                       .create_revision = 2,
                       .mod_revision = 2,
                       .version = 1};
    char err[MS_ERRMSG_SIZE];

    (void)state;
    /* keys out of order */
    assert_int_equal(ms_snapshot_writer_init(&w, buf_write, &snap, &h), 0);
    ms_snapshot_writer_kv(&w, &kv, false);
    kv.key = B("a");
    ms_snapshot_writer_kv(&w, &kv, false);
    assert_int_equal(ms_snapshot_writer_finish(&w, NULL, 0), 0);
    ms_snapshot_writer_free(&w);
    struct mem_src src = {snap.data, snap.len, 0, 0};
    assert_int_equal(
        ms_snapshot_verify(mem_read, &src, &info, err, sizeof(err)),
        MS_ECORRUPT);
    assert_non_null(strstr(err, "offset 42"));
    assert_non_null(strstr(err, "out of order"));

    /* a version beyond the header's revision */
    ms_buf_reset(&snap);
    kv.mod_revision = 6;
    assert_int_equal(ms_snapshot_writer_init(&w, buf_write, &snap, &h), 0);
    ms_snapshot_writer_kv(&w, &kv, false);
    assert_int_equal(ms_snapshot_writer_finish(&w, NULL, 0), 0);
    ms_snapshot_writer_free(&w);
    src = (struct mem_src){snap.data, snap.len, 0, 0};
    assert_int_equal(
        ms_snapshot_verify(mem_read, &src, &info, err, sizeof(err)),
        MS_ECORRUPT);
    assert_non_null(strstr(err, "offset 32"));

    /* compact revision above revision */
    ms_buf_reset(&snap);
    h.compact_revision = 9;
    assert_int_equal(ms_snapshot_writer_init(&w, buf_write, &snap, &h), 0);
    assert_int_equal(ms_snapshot_writer_finish(&w, NULL, 0), 0);
    ms_snapshot_writer_free(&w);
    src = (struct mem_src){snap.data, snap.len, 0, 0};
    assert_int_equal(
        ms_snapshot_verify(mem_read, &src, &info, err, sizeof(err)),
        MS_ECORRUPT);
    assert_non_null(strstr(err, "offset 16"));

    /* not a snapshot at all */
    src = (struct mem_src){(const uint8_t *)"hello world, not a snapshot....!",
                           32, 0, 0};
    assert_int_equal(
        ms_snapshot_verify(mem_read, &src, &info, err, sizeof(err)),
        MS_ECORRUPT);
    assert_non_null(strstr(err, "magic"));
    ms_buf_free(&snap);
}

/* A key attached to a lease the snapshot lacks is rejected on load. */
static void test_load_unknown_lease(void **state)
{
    struct fx *f = fx_new(MS_BACKEND_MEMORY);
    struct ms_snapshot_writer w;
    struct ms_snapshot_header h = {MS_SNAPSHOT_FORMAT_VERSION, 1, 5, 0, 3};
    struct ms_buf snap = MS_BUF_INIT;
    struct ms_kv kv = {.key = B("k"),
                       .value = B("v"),
                       .create_revision = 2,
                       .mod_revision = 2,
                       .version = 1,
                       .lease = 77};

    (void)state;
    assert_int_equal(ms_snapshot_writer_init(&w, buf_write, &snap, &h), 0);
    ms_snapshot_writer_kv(&w, &kv, false);
    assert_int_equal(ms_snapshot_writer_finish(&w, NULL, 0), 0);
    ms_snapshot_writer_free(&w);
    expect_load_failure(f, snap.data, snap.len, MS_ECORRUPT, "lease", 0);
    ms_buf_free(&snap);
    fx_free(f);
}

/* A write error of the sink is returned by save. */
static int failing_write(void *ctx, const void *p, size_t n)
{
    (void)ctx;
    (void)p;
    (void)n;
    return MS_ENOSPACE;
}

static void test_save_write_error(void **state)
{
    struct fx *f = fx_new(MS_BACKEND_MEMORY);
    char err[MS_ERRMSG_SIZE];

    (void)state;
    build_state(f);
    assert_int_equal(ms_store_snapshot_save(f->s, NULL, failing_write, NULL,
                                            err, sizeof(err)),
                     MS_ENOSPACE);
    assert_non_null(strstr(err, "offset"));
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_to_memory),
        cmocka_unit_test(test_memory_to_rocksdb),
        cmocka_unit_test(test_rocksdb_to_memory),
        cmocka_unit_test(test_reader_info),
        cmocka_unit_test(test_empty_store),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_rocksdb_failed_load_empty),
        cmocka_unit_test(test_reader_checks),
        cmocka_unit_test(test_load_unknown_lease),
        cmocka_unit_test(test_save_write_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
