/* test_codec.c - the operation model and the JSON and protobuf codecs:
 * round trips, exact encodings, and rejection of every kind of bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/codec.h"
#include "codec/op.h"
#include "util/error.h"

/* --- random batches ------------------------------------------------------ */

struct gen {
    uint64_t s;
    struct ms_arena *arena;
};

static uint64_t rnd(struct gen *g)
{
    /* xorshift64* */
    g->s ^= g->s >> 12;
    g->s ^= g->s << 25;
    g->s ^= g->s >> 27;
    return g->s * 2685821657736338717ULL;
}

static unsigned rnd_below(struct gen *g, unsigned n)
{
    return (unsigned)(rnd(g) % n);
}

static struct ms_bytes gen_bytes(struct gen *g)
{
    struct ms_bytes b = {NULL, 0};
    size_t len;
    uint8_t *p;

    switch (rnd_below(g, 8)) {
    case 0:
        return b; /* empty */
    case 1:
        len = 1 + rnd_below(g, 3);
        break;
    case 2:
        len = 300 + rnd_below(g, 100);
        break;
    default:
        len = rnd_below(g, 40);
        break;
    }
    if (len == 0)
        return b;
    p = ms_arena_alloc(g->arena, len);
    assert_non_null(p);
    unsigned style = rnd_below(g, 4);
    for (size_t i = 0; i < len; i++) {
        if (style == 0)
            p[i] = 0; /* all zero bytes */
        else if (style == 1)
            p[i] = (uint8_t)(rnd_below(g, 2) ? 0 : 0xff);
        else
            p[i] = (uint8_t)rnd(g);
    }
    b.data = p;
    b.len = len;
    return b;
}

static int64_t gen_i64(struct gen *g)
{
    static const int64_t special[] = {
        0,   1,   -1,   INT64_MIN, INT64_MAX,      INT64_MIN + 1, INT64_MAX - 1,
        127, 128, -128, 1LL << 53, (1LL << 53) + 1};
    if (rnd_below(g, 3) == 0)
        return special[rnd_below(g, sizeof(special) / sizeof(special[0]))];
    return (int64_t)rnd(g);
}

static uint64_t gen_u64(struct gen *g)
{
    switch (rnd_below(g, 4)) {
    case 0:
        return 0;
    case 1:
        return UINT64_MAX;
    default:
        return rnd(g);
    }
}

static bool gen_bool(struct gen *g)
{
    return rnd_below(g, 2) != 0;
}

static void gen_op(struct gen *g, struct ms_op *op, int depth, bool in_txn);

static void gen_ops(struct gen *g, struct ms_op **ops, size_t *n, int depth)
{
    *n = rnd_below(g, depth < 3 ? 4 : 2);
    *ops = *n ? ms_arena_zalloc(g->arena, *n * sizeof(**ops)) : NULL;
    for (size_t i = 0; i < *n; i++)
        gen_op(g, &(*ops)[i], depth, true);
}

static void gen_compare(struct gen *g, struct ms_compare *c)
{
    c->result = (enum ms_compare_result)rnd_below(g, 4);
    c->target = (enum ms_compare_target)rnd_below(g, 5);
    c->key = gen_bytes(g);
    c->range_end = gen_bytes(g);
    if (c->target == MS_CMP_VALUE)
        c->value = gen_bytes(g);
    else
        c->number = gen_i64(g);
}

/* depth: number of txns op is nested in */
static void gen_op(struct gen *g, struct ms_op *op, int depth, bool in_txn)
{
    unsigned types = in_txn ? 4 : 7;
    unsigned t = 1 + rnd_below(g, types);

    if (t == MS_OP_TXN && depth >= MS_CODEC_MAX_TXN_DEPTH)
        t = MS_OP_PUT;
    if (t == MS_OP_TXN && depth >= 2 && rnd_below(g, 4) != 0)
        t = MS_OP_RANGE; /* keep most txns shallow */
    memset(op, 0, sizeof(*op));
    op->type = (enum ms_op_type)t;
    if (!in_txn) {
        op->node_id = gen_u64(g);
        op->request_id = gen_u64(g);
    }
    switch (op->type) {
    case MS_OP_PUT:
        op->u.put.key = gen_bytes(g);
        op->u.put.value = gen_bytes(g);
        op->u.put.lease = gen_i64(g);
        op->u.put.prev_kv = gen_bool(g);
        op->u.put.ignore_value = gen_bool(g);
        op->u.put.ignore_lease = gen_bool(g);
        break;
    case MS_OP_DELETE_RANGE:
        op->u.delete_range.key = gen_bytes(g);
        op->u.delete_range.range_end = gen_bytes(g);
        op->u.delete_range.prev_kv = gen_bool(g);
        break;
    case MS_OP_RANGE: {
        struct ms_range *r = &op->u.range;
        r->key = gen_bytes(g);
        r->range_end = gen_bytes(g);
        r->limit = gen_i64(g);
        r->revision = gen_i64(g);
        r->sort_order = (enum ms_sort_order)rnd_below(g, 3);
        r->sort_target = (enum ms_sort_target)rnd_below(g, 5);
        r->serializable = gen_bool(g);
        r->keys_only = gen_bool(g);
        r->count_only = gen_bool(g);
        r->min_mod_revision = gen_i64(g);
        r->max_mod_revision = gen_i64(g);
        r->min_create_revision = gen_i64(g);
        r->max_create_revision = gen_i64(g);
        break;
    }
    case MS_OP_TXN: {
        struct ms_txn *x = &op->u.txn;
        x->n_compare = rnd_below(g, 5);
        x->compare =
            x->n_compare
                ? ms_arena_zalloc(g->arena, x->n_compare * sizeof(*x->compare))
                : NULL;
        for (size_t i = 0; i < x->n_compare; i++)
            gen_compare(g, &x->compare[i]);
        gen_ops(g, &x->success, &x->n_success, depth + 1);
        gen_ops(g, &x->failure, &x->n_failure, depth + 1);
        break;
    }
    case MS_OP_COMPACT:
        op->u.compact.revision = gen_i64(g);
        op->u.compact.physical = gen_bool(g);
        break;
    case MS_OP_LEASE_GRANT:
        op->u.lease_grant.id = gen_i64(g);
        op->u.lease_grant.ttl = gen_i64(g);
        break;
    case MS_OP_LEASE_REVOKE:
        op->u.lease_revoke.id = gen_i64(g);
        break;
    }
}

/* A random batch whose memory lives in b->arena (ms_batch_free). */
static void gen_batch(uint64_t seed, struct ms_batch *b, size_t max_ops)
{
    struct gen g = {seed * 0x9E3779B97F4A7C15ULL + 1, &b->arena};

    memset(b, 0, sizeof(*b));
    g.arena = &b->arena;
    b->n_ops = rnd_below(&g, (unsigned)max_ops + 1);
    b->ops = b->n_ops ? ms_arena_zalloc(&b->arena, b->n_ops * sizeof(*b->ops))
                      : NULL;
    for (size_t i = 0; i < b->n_ops; i++)
        gen_op(&g, &b->ops[i], 0, false);
}

/* --- helpers ------------------------------------------------------------ */

static const enum ms_codec_id codecs[] = {MS_CODEC_PROTOBUF, MS_CODEC_JSON};

static void encode_with_writer(enum ms_codec_id c, const struct ms_batch *b,
                               struct ms_buf *out)
{
    struct ms_batch_writer w;

    assert_int_equal(ms_batch_writer_init(&w, c, out), 0);
    for (size_t i = 0; i < b->n_ops; i++)
        assert_int_equal(ms_batch_writer_add(&w, &b->ops[i]), 0);
    assert_int_equal(ms_batch_writer_finish(&w), 0);
}

static void decode_ok(const uint8_t *p, size_t n, struct ms_batch *out)
{
    char err[MS_ERRMSG_SIZE] = "";
    int rc;

    memset(out, 0, sizeof(*out));
    rc = ms_codec_decode_batch(p, n, out, err, sizeof(err));
    if (rc != 0)
        print_error("decode failed: %s: %s\n", ms_errname(rc), err);
    assert_int_equal(rc, 0);
}

/* Decoding p must fail with code, leave the batch empty and say why;
 * when where is not NULL the message must contain it. */
static void expect_fail(const uint8_t *p, size_t n, int code, const char *where)
{
    struct ms_batch b;
    char err[MS_ERRMSG_SIZE] = "";
    int rc;

    memset(&b, 0, sizeof(b));
    rc = ms_codec_decode_batch(p, n, &b, err, sizeof(err));
    if (rc != code)
        print_error("want %s, got %s (%s)\n", ms_errname(code), ms_errname(rc),
                    err);
    assert_int_equal(rc, code);
    assert_null(b.ops);
    assert_int_equal(b.n_ops, 0);
    assert_null(b.arena.head);
    assert_true(err[0] != '\0');
    if (where != NULL && strstr(err, where) == NULL) {
        print_error("message '%s' lacks '%s'\n", err, where);
        fail();
    }
}

/* header + text */
static void json_fail(const char *text, int code, const char *where)
{
    struct ms_buf b = MS_BUF_INIT;
    uint8_t hdr[2] = {MS_CODEC_FORMAT_VERSION, MS_CODEC_JSON};

    assert_int_equal(ms_buf_append(&b, hdr, 2), 0);
    assert_int_equal(ms_buf_puts(&b, text), 0);
    expect_fail(b.data, b.len, code, where);
    ms_buf_free(&b);
}

static void json_ok(const char *text, size_t n_ops)
{
    struct ms_buf b = MS_BUF_INIT;
    uint8_t hdr[2] = {MS_CODEC_FORMAT_VERSION, MS_CODEC_JSON};
    struct ms_batch out;

    assert_int_equal(ms_buf_append(&b, hdr, 2), 0);
    assert_int_equal(ms_buf_puts(&b, text), 0);
    decode_ok(b.data, b.len, &out);
    assert_int_equal(out.n_ops, n_ops);
    ms_batch_free(&out);
    ms_buf_free(&b);
}

/* header + bytes */
static void pb_fail(const uint8_t *bytes, size_t n, int code, const char *where)
{
    struct ms_buf b = MS_BUF_INIT;
    uint8_t hdr[2] = {MS_CODEC_FORMAT_VERSION, MS_CODEC_PROTOBUF};

    assert_int_equal(ms_buf_append(&b, hdr, 2), 0);
    assert_int_equal(ms_buf_append(&b, bytes, n), 0);
    expect_fail(b.data, b.len, code, where);
    ms_buf_free(&b);
}

#define PB_FAIL(code, where, ...)                                              \
    do {                                                                       \
        static const uint8_t bytes_[] = {__VA_ARGS__};                         \
        pb_fail(bytes_, sizeof(bytes_), code, where);                          \
    } while (0)

static struct ms_bytes str_bytes(const char *s)
{
    struct ms_bytes b = {(const uint8_t *)s, strlen(s)};
    return b;
}

/* One op of every type, a txn holding compares of every target. */
static void sample_batch(struct ms_batch *b)
{
    static struct ms_compare cmps[5];
    static struct ms_op inner[3];
    static struct ms_op ops[7];

    memset(cmps, 0, sizeof(cmps));
    memset(inner, 0, sizeof(inner));
    memset(ops, 0, sizeof(ops));
    for (int i = 0; i < 5; i++) {
        cmps[i].result = (enum ms_compare_result)(i % 4);
        cmps[i].target = (enum ms_compare_target)i;
        cmps[i].key = str_bytes("k");
        if (i == MS_CMP_VALUE) {
            cmps[i].value.data = (const uint8_t *)"v\0x";
            cmps[i].value.len = 3;
        } else
            cmps[i].number = -i;
    }
    inner[0].type = MS_OP_PUT;
    inner[0].u.put.key = str_bytes("a");
    inner[1].type = MS_OP_DELETE_RANGE;
    inner[1].u.delete_range.key = str_bytes("b");
    inner[2].type = MS_OP_RANGE;
    inner[2].u.range.key = str_bytes("c");
    inner[2].u.range.sort_order = MS_SORT_DESCEND;
    ops[0].type = MS_OP_PUT;
    ops[0].node_id = 1;
    ops[0].request_id = 77;
    ops[0].u.put.key = str_bytes("hello");
    ops[0].u.put.value = str_bytes("world");
    ops[1].type = MS_OP_DELETE_RANGE;
    ops[1].u.delete_range.key = str_bytes("a");
    ops[1].u.delete_range.range_end = str_bytes("z");
    ops[2].type = MS_OP_RANGE;
    ops[2].u.range.key = str_bytes("p");
    ops[2].u.range.limit = 10;
    ops[3].type = MS_OP_TXN;
    ops[3].u.txn.compare = cmps;
    ops[3].u.txn.n_compare = 5;
    ops[3].u.txn.success = inner;
    ops[3].u.txn.n_success = 2;
    ops[3].u.txn.failure = inner + 2;
    ops[3].u.txn.n_failure = 1;
    ops[4].type = MS_OP_COMPACT;
    ops[4].u.compact.revision = 5;
    ops[4].u.compact.physical = true;
    ops[5].type = MS_OP_LEASE_GRANT;
    ops[5].u.lease_grant.id = 9;
    ops[5].u.lease_grant.ttl = 60;
    ops[6].type = MS_OP_LEASE_REVOKE;
    ops[6].u.lease_revoke.id = 9;
    memset(b, 0, sizeof(*b));
    b->ops = ops;
    b->n_ops = 7;
}

/* --- success cases ------------------------------------------------------ */

/* Hundreds of random batches survive encode/decode in both codecs, the
 * writer and ms_codec_encode_batch give the same bytes, and re-encoding a
 * decoded batch gives those bytes again. */
static void test_round_trip_random(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 400; seed++) {
        struct ms_batch src;
        gen_batch(seed, &src, seed % 50 == 0 ? 200 : 12);
        for (size_t c = 0; c < 2; c++) {
            struct ms_buf a = MS_BUF_INIT, b = MS_BUF_INIT, again = MS_BUF_INIT;
            struct ms_batch out;
            enum ms_codec_id got;

            encode_with_writer(codecs[c], &src, &a);
            assert_int_equal(ms_codec_encode_batch(codecs[c], &src, &b), 0);
            assert_int_equal(a.len, b.len);
            assert_memory_equal(a.data, b.data, a.len);
            assert_int_equal(ms_codec_peek(a.data, a.len, &got), 0);
            assert_int_equal(got, codecs[c]);

            decode_ok(a.data, a.len, &out);
            assert_int_equal(out.n_ops, src.n_ops);
            assert_true(ms_batch_equal(&src, &out));
            assert_int_equal(ms_codec_encode_batch(codecs[c], &out, &again), 0);
            assert_int_equal(again.len, a.len);
            assert_memory_equal(again.data, a.data, a.len);

            ms_batch_free(&out);
            ms_buf_free(&a);
            ms_buf_free(&b);
            ms_buf_free(&again);
        }
        ms_batch_free(&src);
    }
}

/* Every op type, compares of every target, extreme numbers and binary
 * bytes (zero bytes included) decode to an equal batch. */
static void test_round_trip_every_kind(void **state)
{
    struct ms_batch src;
    (void)state;

    sample_batch(&src);
    src.ops[0].node_id = UINT64_MAX;
    src.ops[0].u.put.lease = INT64_MIN;
    src.ops[2].u.range.revision = INT64_MAX;
    src.ops[2].u.range.min_create_revision = INT64_MIN;
    for (size_t c = 0; c < 2; c++) {
        struct ms_buf a = MS_BUF_INIT;
        struct ms_batch out;
        assert_int_equal(ms_codec_encode_batch(codecs[c], &src, &a), 0);
        decode_ok(a.data, a.len, &out);
        assert_true(ms_batch_equal(&src, &out));
        assert_int_equal(out.ops[3].u.txn.compare[3].value.len, 3);
        assert_memory_equal(out.ops[3].u.txn.compare[3].value.data, "v\0x", 3);
        assert_int_equal(out.ops[0].u.put.lease, INT64_MIN);
        ms_batch_free(&out);
        ms_buf_free(&a);
    }
}

/* An empty batch round-trips: protobuf is header + count record, JSON is
 * header + {"ops":[]}. */
static void test_empty_batch(void **state)
{
    static const uint8_t pb[] = {1, MS_CODEC_PROTOBUF, 0x10, 0x00};
    static const char js[] = "\x01\x02{\"ops\":[]}";
    struct ms_batch empty = {NULL, 0, {NULL, 0}}, out;
    struct ms_buf b = MS_BUF_INIT;
    (void)state;

    assert_int_equal(ms_codec_encode_batch(MS_CODEC_PROTOBUF, &empty, &b), 0);
    assert_int_equal(b.len, sizeof(pb));
    assert_memory_equal(b.data, pb, sizeof(pb));
    ms_buf_reset(&b);
    assert_int_equal(ms_codec_encode_batch(MS_CODEC_JSON, &empty, &b), 0);
    assert_int_equal(b.len, sizeof(js) - 1);
    assert_memory_equal(b.data, js, b.len);
    decode_ok(b.data, b.len, &out);
    assert_int_equal(out.n_ops, 0);
    ms_batch_free(&out);
    decode_ok(pb, sizeof(pb), &out);
    assert_int_equal(out.n_ops, 0);
    ms_batch_free(&out);
    ms_buf_free(&b);
}

/* The exact bytes of one put in each codec (pins the wire formats). */
static void test_exact_encoding(void **state)
{
    static const char js[] =
        "\x01\x02{\"ops\":[{\"node_id\":\"1\",\"request_id\":\"2\",\"put\":"
        "{\"key\":\"a2V5\",\"value\":\"\",\"lease\":\"-1\",\"prev_kv\":true,"
        "\"ignore_value\":false,\"ignore_lease\":false}}]}";
    static const uint8_t pb[] = {
        1,    1,                                  /* header */
        0x0a, 24,                                 /* ops record */
        0x08, 1,    0x10, 2,                      /* node_id, request_id */
        0x1a, 18,                                 /* put */
        0x0a, 3,    'k',  'e',  'y',              /* key */
        0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* lease -1 */
        0xff, 0xff, 0xff, 0x01, 0x20, 0x01,       /* prev_kv */
        0x10, 1,                                  /* count */
    };
    struct ms_op op;
    struct ms_batch b = {&op, 1, {NULL, 0}};
    struct ms_buf out = MS_BUF_INIT;
    (void)state;

    memset(&op, 0, sizeof(op));
    op.type = MS_OP_PUT;
    op.node_id = 1;
    op.request_id = 2;
    op.u.put.key = str_bytes("key");
    op.u.put.lease = -1;
    op.u.put.prev_kv = true;
    assert_int_equal(ms_codec_encode_batch(MS_CODEC_JSON, &b, &out), 0);
    assert_int_equal(out.len, sizeof(js) - 1);
    assert_memory_equal(out.data, js, out.len);
    ms_buf_reset(&out);
    assert_int_equal(ms_codec_encode_batch(MS_CODEC_PROTOBUF, &b, &out), 0);
    assert_int_equal(out.len, sizeof(pb));
    assert_memory_equal(out.data, pb, sizeof(pb));
    ms_buf_free(&out);
}

/* The writer appends after what the buffer already holds. */
static void test_writer_appends(void **state)
{
    struct ms_batch src, out;
    (void)state;

    sample_batch(&src);
    for (size_t c = 0; c < 2; c++) {
        struct ms_buf b = MS_BUF_INIT;
        assert_int_equal(ms_buf_puts(&b, "xyz"), 0);
        encode_with_writer(codecs[c], &src, &b);
        assert_memory_equal(b.data, "xyz", 3);
        decode_ok(b.data + 3, b.len - 3, &out);
        assert_true(ms_batch_equal(&src, &out));
        ms_batch_free(&out);
        ms_buf_free(&b);
    }
}

/* JSON input may carry whitespace and fields in any order. */
static void test_json_whitespace_and_order(void **state)
{
    (void)state;
    json_ok(" \n{ \"ops\" : [ { \"put\" : { \"ignore_lease\":false, "
            "\"key\" : \"YQ==\", \"value\":\"\", \"lease\":\"0\", "
            "\"prev_kv\":false, \"ignore_value\":true }, "
            "\"request_id\":\"0\", \"node_id\":\"3\" } ] }\r\n\t",
            1);
}

/* Txns nest exactly MS_CODEC_MAX_TXN_DEPTH deep in both codecs. */
static void test_txn_max_depth(void **state)
{
    struct ms_op ops[MS_CODEC_MAX_TXN_DEPTH + 2];
    struct ms_batch b = {ops, 1, {NULL, 0}}, out;
    (void)state;

    memset(ops, 0, sizeof(ops));
    for (int i = 0; i < MS_CODEC_MAX_TXN_DEPTH; i++) {
        ops[i].type = MS_OP_TXN;
        ops[i].u.txn.success = &ops[i + 1];
        ops[i].u.txn.n_success = 1;
    }
    ops[MS_CODEC_MAX_TXN_DEPTH].type = MS_OP_PUT;
    for (size_t c = 0; c < 2; c++) {
        struct ms_buf buf = MS_BUF_INIT;
        assert_int_equal(ms_codec_encode_batch(codecs[c], &b, &buf), 0);
        decode_ok(buf.data, buf.len, &out);
        assert_true(ms_batch_equal(&b, &out));
        ms_batch_free(&out);
        /* one level more is not encodable */
        ops[MS_CODEC_MAX_TXN_DEPTH].type = MS_OP_TXN;
        ops[MS_CODEC_MAX_TXN_DEPTH].u.txn.success =
            &ops[MS_CODEC_MAX_TXN_DEPTH + 1];
        ops[MS_CODEC_MAX_TXN_DEPTH].u.txn.n_success = 1;
        ops[MS_CODEC_MAX_TXN_DEPTH + 1].type = MS_OP_PUT;
        ms_buf_reset(&buf);
        assert_int_equal(ms_codec_encode_batch(codecs[c], &b, &buf), MS_EINVAL);
        assert_int_equal(buf.len, 0);
        memset(&ops[MS_CODEC_MAX_TXN_DEPTH], 0, sizeof(ops[0]));
        ops[MS_CODEC_MAX_TXN_DEPTH].type = MS_OP_PUT;
        ms_buf_free(&buf);
    }
}

/* Names, parsing and the header peek. */
static void test_names_and_peek(void **state)
{
    enum ms_codec_id id;
    static const uint8_t ok[] = {1, 2};
    static const uint8_t badver[] = {2, 1};
    static const uint8_t badcodec[] = {1, 3};
    (void)state;

    assert_int_equal(ms_codec_parse("protobuf", &id), 0);
    assert_int_equal(id, MS_CODEC_PROTOBUF);
    assert_int_equal(ms_codec_parse("json", &id), 0);
    assert_int_equal(id, MS_CODEC_JSON);
    assert_int_equal(ms_codec_parse("JSON", &id), MS_EINVAL);
    assert_int_equal(ms_codec_parse("", &id), MS_EINVAL);
    assert_string_equal(ms_codec_name(MS_CODEC_PROTOBUF), "protobuf");
    assert_string_equal(ms_codec_name(MS_CODEC_JSON), "json");
    assert_string_equal(ms_codec_name((enum ms_codec_id)9), "unknown");
    assert_int_equal(ms_codec_peek(ok, 2, &id), 0);
    assert_int_equal(id, MS_CODEC_JSON);
    assert_int_equal(ms_codec_peek(ok, 0, &id), MS_ETRUNCATED);
    assert_int_equal(ms_codec_peek(ok, 1, &id), MS_ETRUNCATED);
    assert_int_equal(ms_codec_peek(badver, 2, &id), MS_EVERSION);
    assert_int_equal(ms_codec_peek(badcodec, 2, &id), MS_ECODEC);
    assert_string_equal(ms_op_type_name(MS_OP_PUT), "put");
    assert_string_equal(ms_op_type_name(MS_OP_DELETE_RANGE), "delete_range");
    assert_string_equal(ms_op_type_name(MS_OP_LEASE_REVOKE), "lease_revoke");
    assert_string_equal(ms_op_type_name((enum ms_op_type)0), "unknown");
}

/* ms_op_equal sees a difference in any one field, byte or nested op; a
 * compare's operand counts only where its target selects it. */
static void test_op_equal(void **state)
{
    struct ms_batch a, b;
    struct ms_op x, y;
    (void)state;

    sample_batch(&a);
    assert_true(ms_batch_equal(&a, &a));
    memset(&x, 0, sizeof(x));
    x.type = MS_OP_PUT;
    x.u.put.key = str_bytes("k");
    y = x;
    assert_true(ms_op_equal(&x, &y));
    y.u.put.key = str_bytes("K");
    assert_false(ms_op_equal(&x, &y));
    y = x;
    y.u.put.value = str_bytes("\0");
    y.u.put.value.len = 1;
    assert_false(ms_op_equal(&x, &y));
    y = x;
    y.u.put.ignore_lease = true;
    assert_false(ms_op_equal(&x, &y));
    y = x;
    y.request_id = 1;
    assert_false(ms_op_equal(&x, &y));
    y = x;
    y.type = MS_OP_DELETE_RANGE;
    assert_false(ms_op_equal(&x, &y));
    x.type = y.type = (enum ms_op_type)42;
    assert_false(ms_op_equal(&x, &y));

    /* nested: change one compare of the sample txn */
    b = a;
    struct ms_op t = a.ops[3];
    struct ms_compare cmps[5];
    memcpy(cmps, t.u.txn.compare, sizeof(cmps));
    t.u.txn.compare = cmps;
    assert_true(ms_op_equal(&a.ops[3], &t));
    cmps[0].number = 1234;
    assert_false(ms_op_equal(&a.ops[3], &t));
    cmps[0].number = a.ops[3].u.txn.compare[0].number;
    cmps[0].value = str_bytes("ignored for a version compare");
    assert_true(ms_op_equal(&a.ops[3], &t));
    cmps[3].number = 99; /* ignored for a value compare */
    assert_true(ms_op_equal(&a.ops[3], &t));
    t.u.txn.n_failure = 0;
    assert_false(ms_op_equal(&a.ops[3], &t));
    b.n_ops = 6;
    assert_false(ms_batch_equal(&a, &b));
}

/* --- failure cases: both codecs ------------------------------------------ */

/* Bad headers: empty, cut, unknown version, unknown codec. */
static void test_bad_header(void **state)
{
    static const uint8_t one[] = {1};
    static const uint8_t v0[] = {0, 1, 0x10, 0};
    static const uint8_t v2[] = {2, 1, 0x10, 0};
    static const uint8_t c0[] = {1, 0, 0x10, 0};
    static const uint8_t c9[] = {1, 9, 0x10, 0};
    (void)state;

    expect_fail(one, 0, MS_ETRUNCATED, NULL);
    expect_fail(one, 1, MS_ETRUNCATED, NULL);
    expect_fail(v0, sizeof(v0), MS_EVERSION, "version 0");
    expect_fail(v2, sizeof(v2), MS_EVERSION, "version 2");
    expect_fail(c0, sizeof(c0), MS_ECODEC, "codec id 0");
    expect_fail(c9, sizeof(c9), MS_ECODEC, "codec id 9");
}

/* Cutting a valid payload at every byte offset always fails with
 * MS_ETRUNCATED (never a shorter batch), in both codecs. */
static void test_truncation_every_offset(void **state)
{
    struct ms_batch src;
    (void)state;

    sample_batch(&src);
    for (size_t c = 0; c < 2; c++) {
        struct ms_buf b = MS_BUF_INIT;
        assert_int_equal(ms_codec_encode_batch(codecs[c], &src, &b), 0);
        for (size_t n = 0; n < b.len; n++) {
            /* a copy of exactly n bytes, so ASan sees any overread */
            uint8_t *p = malloc(n ? n : 1);
            assert_non_null(p);
            memcpy(p, b.data, n);
            expect_fail(p, n, MS_ETRUNCATED, NULL);
            free(p);
        }
        ms_buf_free(&b);
    }
}

/* Bytes after a complete payload are MS_ETRAILING in both codecs. */
static void test_trailing_garbage(void **state)
{
    struct ms_batch src;
    (void)state;

    sample_batch(&src);
    for (size_t c = 0; c < 2; c++) {
        struct ms_buf b = MS_BUF_INIT;
        assert_int_equal(ms_codec_encode_batch(codecs[c], &src, &b), 0);
        assert_int_equal(ms_buf_putc(&b, 'x'), 0);
        expect_fail(b.data, b.len, MS_ETRAILING, NULL);
        b.data[b.len - 1] = 0;
        expect_fail(b.data, b.len, MS_ETRAILING, NULL);
        ms_buf_free(&b);
    }
    json_fail("{\"ops\":[]}{}", MS_ETRAILING, "2 bytes after");
    json_fail("{\"ops\":[]} \n x", MS_ETRAILING, NULL);
}

/* A payload over MS_CODEC_MAX_PAYLOAD is refused before parsing. */
static void test_oversize_payload(void **state)
{
    size_t n = (size_t)MS_CODEC_MAX_PAYLOAD + 1;
    uint8_t *p = calloc(1, n);
    (void)state;

    assert_non_null(p);
    p[0] = MS_CODEC_FORMAT_VERSION;
    for (size_t c = 0; c < 2; c++) {
        p[1] = (uint8_t)codecs[c];
        expect_fail(p, n, MS_ETOOLARGE, "limit");
    }
    free(p);
}

/* The writer refuses ops neither codec can carry, and unknown codecs. */
static void test_writer_rejects(void **state)
{
    struct ms_buf b = MS_BUF_INIT;
    struct ms_batch_writer w;
    struct ms_op op, inner;
    struct ms_compare cmp;
    (void)state;

    assert_int_equal(ms_batch_writer_init(&w, (enum ms_codec_id)7, &b),
                     MS_ECODEC);
    for (size_t c = 0; c < 2; c++) {
        ms_buf_reset(&b);
        assert_int_equal(ms_batch_writer_init(&w, codecs[c], &b), 0);
        size_t len = b.len;

        memset(&op, 0, sizeof(op));
        op.type = (enum ms_op_type)0;
        assert_int_equal(ms_batch_writer_add(&w, &op), MS_EINVAL);
        op.type = (enum ms_op_type)8;
        assert_int_equal(ms_batch_writer_add(&w, &op), MS_EINVAL);
        op.type = MS_OP_RANGE;
        op.u.range.sort_order = (enum ms_sort_order)3;
        assert_int_equal(ms_batch_writer_add(&w, &op), MS_EINVAL);
        op.u.range.sort_order = MS_SORT_NONE;
        op.u.range.sort_target = (enum ms_sort_target)5;
        assert_int_equal(ms_batch_writer_add(&w, &op), MS_EINVAL);
        memset(&op, 0, sizeof(op));
        op.type = MS_OP_PUT;
        op.u.put.value.len = 3; /* data NULL */
        assert_int_equal(ms_batch_writer_add(&w, &op), MS_EINVAL);

        memset(&op, 0, sizeof(op));
        memset(&inner, 0, sizeof(inner));
        memset(&cmp, 0, sizeof(cmp));
        op.type = MS_OP_TXN;
        op.u.txn.success = &inner;
        op.u.txn.n_success = 1;
        inner.type = MS_OP_COMPACT; /* not allowed in a txn */
        assert_int_equal(ms_batch_writer_add(&w, &op), MS_EINVAL);
        inner.type = MS_OP_LEASE_GRANT;
        assert_int_equal(ms_batch_writer_add(&w, &op), MS_EINVAL);
        inner.type = MS_OP_PUT;
        op.u.txn.compare = &cmp;
        op.u.txn.n_compare = 1;
        cmp.target = (enum ms_compare_target)5;
        assert_int_equal(ms_batch_writer_add(&w, &op), MS_EINVAL);
        cmp.target = MS_CMP_MOD;
        cmp.result = (enum ms_compare_result)4;
        assert_int_equal(ms_batch_writer_add(&w, &op), MS_EINVAL);
        cmp.result = MS_CMP_LESS;
        op.u.txn.compare = NULL; /* n_compare 1 */
        assert_int_equal(ms_batch_writer_add(&w, &op), MS_EINVAL);
        /* a rejected op leaves nothing behind */
        assert_int_equal(b.len, len);
        op.u.txn.compare = &cmp;
        assert_int_equal(ms_batch_writer_add(&w, &op), 0);
        assert_int_equal(ms_batch_writer_finish(&w), 0);
        struct ms_batch out;
        decode_ok(b.data, b.len, &out);
        assert_int_equal(out.n_ops, 1);
        assert_int_equal(out.ops[0].u.txn.compare[0].target, MS_CMP_MOD);
        ms_batch_free(&out);
    }
    ms_buf_free(&b);
}

/* --- failure cases: protobuf ------------------------------------------- */

/* Bad framing of the top-level records. */
static void test_pb_framing(void **state)
{
    (void)state;
    pb_fail(NULL, 0, MS_ETRUNCATED, "count record"); /* header only */
    PB_FAIL(MS_ETRUNCATED, NULL, 0x10);
    PB_FAIL(MS_ETRUNCATED, NULL, 0x10, 0x80);
    PB_FAIL(MS_EMALFORMED, "count record says 1", 0x10, 0x01);
    PB_FAIL(MS_ETRAILING, "after the count", 0x10, 0x00, 0x00);
    PB_FAIL(MS_ETRAILING, NULL, 0x10, 0x00, 0x0a, 0x02, 0x4a, 0x00);
    PB_FAIL(MS_EMALFORMED, "count record says 0", 0x0a, 0x02, 0x4a, 0x00, 0x10,
            0x00);
    PB_FAIL(MS_ETRUNCATED, "without its count", 0x0a, 0x02, 0x4a, 0x00);
    PB_FAIL(MS_EMALFORMED, "field 3", 0x18, 0x00);
    PB_FAIL(MS_EMALFORMED, "field 1 wire type 0", 0x08, 0x00);
    PB_FAIL(MS_EMALFORMED, "field 2 wire type 2", 0x12, 0x00);
    PB_FAIL(MS_EMALFORMED, NULL, 0x00);
    PB_FAIL(MS_ETRUNCATED, "ops[0]", 0x0a, 0x05, 0x1a);
    PB_FAIL(MS_ETRUNCATED, NULL, 0x0a);
    PB_FAIL(MS_ETRUNCATED, NULL, 0x0a, 0x80);
    PB_FAIL(MS_EMALFORMED, NULL, 0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0x01);
    PB_FAIL(MS_EMALFORMED, "ops[1]", 0x0a, 0x02, 0x4a, 0x00, 0x0a, 0x00, 0x10,
            0x02);
}

/* Bad Op messages inside well-framed records. */
static void test_pb_bad_ops(void **state)
{
    (void)state;
    /* an Op without an operation */
    PB_FAIL(MS_EMALFORMED, "no operation", 0x0a, 0x00, 0x10, 0x01);
    PB_FAIL(MS_EMALFORMED, "no operation", 0x0a, 0x02, 0x08, 0x01, 0x10, 0x01);
    /* unknown fields in the Op, in the Put */
    PB_FAIL(MS_EMALFORMED, "unknown field 15", 0x0a, 0x04, 0x1a, 0x00, 0x78,
            0x01, 0x10, 0x01);
    PB_FAIL(MS_EMALFORMED, "ops[0].put: unknown field 15", 0x0a, 0x04, 0x1a,
            0x02, 0x78, 0x01, 0x10, 0x01);
    /* bad wire data: sub-message past the Op's end, truncated varint,
     * group wire types, a known field with the wrong wire type */
    PB_FAIL(MS_EMALFORMED, NULL, 0x0a, 0x02, 0x1a, 0x05, 0x10, 0x01);
    PB_FAIL(MS_EMALFORMED, NULL, 0x0a, 0x02, 0x08, 0x80, 0x10, 0x01);
    PB_FAIL(MS_EMALFORMED, "wire type 3", 0x0a, 0x03, 0x1a, 0x00, 0x0b, 0x10,
            0x01);
    PB_FAIL(MS_EMALFORMED, NULL, 0x0a, 0x04, 0x0a, 0x00, 0x1a, 0x00, 0x10,
            0x01);
    PB_FAIL(MS_EMALFORMED, NULL, 0x0a, 0x03, 0x1d, 0x00, 0x00, 0x10, 0x01);
    /* enum values out of range */
    PB_FAIL(MS_EMALFORMED, "ops[0].range: sort_order", 0x0a, 0x04, 0x2a, 0x02,
            0x28, 0x07, 0x10, 0x01);
    PB_FAIL(MS_EMALFORMED, "sort_target", 0x0a, 0x04, 0x2a, 0x02, 0x30, 0x05,
            0x10, 0x01);
    PB_FAIL(MS_EMALFORMED, "compare[0]: result", 0x0a, 0x08, 0x32, 0x06, 0x0a,
            0x04, 0x08, 0x04, 0x20, 0x00, 0x10, 0x01);
    PB_FAIL(MS_EMALFORMED, "target", 0x0a, 0x06, 0x32, 0x04, 0x0a, 0x02, 0x10,
            0x05, 0x10, 0x01);
    /* compare operand not the one the target names, or missing */
    PB_FAIL(MS_EMALFORMED, "target 3", 0x0a, 0x08, 0x32, 0x06, 0x0a, 0x04, 0x10,
            0x03, 0x20, 0x00, 0x10, 0x01);
    PB_FAIL(MS_EMALFORMED, "ops[0].txn.compare[0]", 0x0a, 0x04, 0x32, 0x02,
            0x0a, 0x00, 0x10, 0x01);
    /* compact inside a txn */
    PB_FAIL(MS_EMALFORMED, "ops[0].txn.success[0]", 0x0a, 0x06, 0x32, 0x04,
            0x12, 0x02, 0x3a, 0x00, 0x10, 0x01);
}

/* Builds header + one Op record holding txns nested depth deep around a
 * put, + count; lengths are computed inside out, bytes written outside in. */
static size_t varint_len(size_t v)
{
    size_t n = 1;
    while (v >= 128) {
        v >>= 7;
        n++;
    }
    return n;
}

static void append_varint(struct ms_buf *out, size_t v)
{
    while (v >= 128) {
        assert_int_equal(ms_buf_putc(out, (uint8_t)(v | 128)), 0);
        v >>= 7;
    }
    assert_int_equal(ms_buf_putc(out, (uint8_t)v), 0);
}

static void pb_nested(size_t depth, struct ms_buf *out)
{
    size_t *op_len = calloc(depth + 1, sizeof(size_t));
    size_t *txn_len = calloc(depth + 1, sizeof(size_t));

    assert_non_null(op_len);
    assert_non_null(txn_len);
    op_len[0] = 2; /* 1a 00: put {} */
    for (size_t k = 1; k <= depth; k++) {
        txn_len[k] = 1 + varint_len(op_len[k - 1]) + op_len[k - 1];
        op_len[k] = 1 + varint_len(txn_len[k]) + txn_len[k];
    }
    assert_int_equal(ms_buf_putc(out, 1), 0);
    assert_int_equal(ms_buf_putc(out, MS_CODEC_PROTOBUF), 0);
    assert_int_equal(ms_buf_putc(out, 0x0a), 0);
    append_varint(out, op_len[depth]);
    for (size_t k = depth; k >= 1; k--) {
        assert_int_equal(ms_buf_putc(out, 0x32), 0); /* Op.txn */
        append_varint(out, txn_len[k]);
        assert_int_equal(ms_buf_putc(out, 0x12), 0); /* Txn.success */
        append_varint(out, op_len[k - 1]);
    }
    assert_int_equal(ms_buf_append(out, "\x1a\x00\x10\x01", 4), 0);
    free(op_len);
    free(txn_len);
}

/* Txns nested beyond the limit are MS_ETOOLARGE, even 100000 deep (no
 * stack overflow in protobuf-c's recursive unpack). */
static void test_pb_too_deep(void **state)
{
    struct ms_buf b = MS_BUF_INIT;
    struct ms_batch out;
    (void)state;

    pb_nested(MS_CODEC_MAX_TXN_DEPTH, &b);
    decode_ok(b.data, b.len, &out);
    assert_int_equal(out.ops[0].type, MS_OP_TXN);
    ms_batch_free(&out);
    ms_buf_reset(&b);
    pb_nested(MS_CODEC_MAX_TXN_DEPTH + 1, &b);
    expect_fail(b.data, b.len, MS_ETOOLARGE, "nested");
    ms_buf_reset(&b);
    pb_nested(100000, &b);
    expect_fail(b.data, b.len, MS_ETOOLARGE, "nested");
    ms_buf_free(&b);
}

/* More than MS_CODEC_MAX_OPS ops is MS_ETOOLARGE. */
static void test_pb_too_many_ops(void **state)
{
    struct ms_buf b = MS_BUF_INIT;
    size_t n = (size_t)MS_CODEC_MAX_OPS + 1;
    (void)state;

    assert_int_equal(ms_buf_reserve(&b, 4 * n + 16), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ms_buf_append(&b, "\x0a\x02\x4a\x00", 4), 0);
    assert_int_equal(ms_buf_append(&b, "\x10\x81\x80\x40", 4), 0);
    pb_fail(b.data, b.len, MS_ETOOLARGE, "more than");
    ms_buf_free(&b);
}

/* --- failure cases: JSON ------------------------------------------------- */

/* Cut-off and broken JSON text. */
static void test_json_syntax(void **state)
{
    (void)state;
    json_fail("", MS_ETRUNCATED, "ends early");
    json_fail("  \n", MS_ETRUNCATED, NULL);
    json_fail("{\"ops\":[", MS_ETRUNCATED, NULL);
    json_fail("{\"ops\":[{\"node_id\":\"1", MS_ETRUNCATED, NULL);
    json_fail("{\"ops\":[{\"node_id\":\"\\u00", MS_ETRUNCATED, NULL);
    json_fail("{\"ops\":[{\"x\":tr", MS_ETRUNCATED, NULL);
    json_fail("{\"ops\":[{\"x\":-", MS_ETRUNCATED, NULL);
    json_fail("{\"ops\":[{\"x\":1.", MS_ETRUNCATED, NULL);
    json_fail("{\"ops\":[{\"x\":1e", MS_ETRUNCATED, NULL);
    json_fail("{\"ops\":[}", MS_EMALFORMED, "invalid JSON at byte 8");
    json_fail("{\"ops\":[1 2]}", MS_EMALFORMED, "invalid JSON");
    json_fail("{\"ops\":[tru]}", MS_EMALFORMED, "invalid JSON");
    json_fail("{\"ops\" [", MS_EMALFORMED, "invalid JSON");
    json_fail("{ops:[]}", MS_EMALFORMED, "invalid JSON");
    json_fail("{\"ops\":[\"\\x\"]}", MS_EMALFORMED, "invalid JSON");
    json_fail("{\"ops\":[\"a\tb\"", MS_EMALFORMED, "invalid JSON");
    /* cJSON takes 01 for a number; a number is never valid here anyway */
    json_fail("{\"ops\":[01]}", MS_EMALFORMED, "ops[0]: expected object");
    json_fail("x", MS_EMALFORMED, "invalid JSON at byte 0");
}

/* Valid JSON that breaks the schema names the field path. */
static void test_json_schema(void **state)
{
#define OP(body) "{\"ops\":[{\"node_id\":\"1\",\"request_id\":\"2\"," body "}]}"
#define PUT(k, v, l)                                                           \
    OP("\"put\":{\"key\":" k ",\"value\":" v ",\"lease\":" l                   \
       ",\"prev_kv\":false,\"ignore_value\":false,\"ignore_lease\":false}")
    (void)state;
    json_ok(PUT("\"a2V5\"", "\"\"", "\"-9223372036854775808\""), 1);
    json_fail("[]", MS_EMALFORMED, "expected a JSON object");
    json_fail("{}", MS_EMALFORMED, "missing field ops");
    json_fail("{\"ops\":{}}", MS_EMALFORMED, "ops: expected array");
    json_fail("{\"ops\":[],\"x\":1}", MS_EMALFORMED, "unknown field \"x\"");
    json_fail("{\"ops\":[],\"ops\":[]}", MS_EMALFORMED, "duplicate");
    json_fail("{\"ops\":[7]}", MS_EMALFORMED, "ops[0]: expected object");
    json_fail("{\"ops\":[{}]}", MS_EMALFORMED, "ops[0]: missing field node_id");
    json_fail("{\"ops\":[{\"node_id\":\"1\",\"request_id\":\"2\"}]}",
              MS_EMALFORMED, "ops[0]: missing operation");
    json_fail(OP("\"frobnicate\":{}"), MS_EMALFORMED,
              "ops[0]: unknown field \"frobnicate\"");
    json_fail(OP("\"lease_revoke\":{\"id\":\"1\"},\"compact\":{}"),
              MS_EMALFORMED, "more than one operation");
    json_fail("{\"ops\":[{\"node_id\":1,\"request_id\":\"2\"}]}", MS_EMALFORMED,
              "ops[0].node_id: expected uint64");
    json_fail("{\"ops\":[{\"node_id\":\"-1\",\"request_id\":\"2\"}]}",
              MS_EMALFORMED, "ops[0].node_id");
    json_fail("{\"ops\":[{\"node_id\":\"18446744073709551616\"}]}",
              MS_EMALFORMED, "ops[0].node_id");
    json_ok("{\"ops\":[{\"node_id\":\"18446744073709551615\","
            "\"request_id\":\"0\",\"lease_revoke\":{\"id\":\"0\"}}]}",
            1);
    json_fail("{\"ops\":[{\"node_id\":\"1\",\"node_id\":\"1\"}]}",
              MS_EMALFORMED, "ops[0].node_id: duplicate field");
    /* wrong JSON types and bad numbers in a put */
    json_fail(PUT("5", "\"\"", "\"0\""), MS_EMALFORMED,
              "ops[0].put.key: expected base64 string");
    json_fail(PUT("null", "\"\"", "\"0\""), MS_EMALFORMED, "ops[0].put.key");
    json_fail(PUT("\"\"", "[]", "\"0\""), MS_EMALFORMED, "ops[0].put.value");
    json_fail(PUT("\"\"", "\"\"", "0"), MS_EMALFORMED,
              "ops[0].put.lease: expected int64");
    json_fail(PUT("\"\"", "\"\"", "\"9223372036854775808\""), MS_EMALFORMED,
              "ops[0].put.lease");
    json_fail(PUT("\"\"", "\"\"", "\"-9223372036854775809\""), MS_EMALFORMED,
              "ops[0].put.lease");
    json_fail(PUT("\"\"", "\"\"", "\"01\""), MS_EMALFORMED, "lease");
    json_fail(PUT("\"\"", "\"\"", "\"-0\""), MS_EMALFORMED, "lease");
    json_fail(PUT("\"\"", "\"\"", "\"+1\""), MS_EMALFORMED, "lease");
    json_fail(PUT("\"\"", "\"\"", "\"\""), MS_EMALFORMED, "lease");
    json_fail(PUT("\"\"", "\"\"", "\"1 \""), MS_EMALFORMED, "lease");
    json_fail(OP("\"put\":{\"key\":\"\",\"value\":\"\",\"lease\":\"0\","
                 "\"prev_kv\":\"false\",\"ignore_value\":false,"
                 "\"ignore_lease\":false}"),
              MS_EMALFORMED, "ops[0].put.prev_kv: expected true or false");
    json_fail(OP("\"put\":{\"key\":\"\",\"value\":\"\",\"lease\":\"0\","
                 "\"prev_kv\":false,\"ignore_value\":false}"),
              MS_EMALFORMED, "ops[0].put: missing field ignore_lease");
    json_fail(OP("\"put\":{\"key\":\"\",\"value\":\"\",\"lease\":\"0\","
                 "\"prev_kv\":false,\"ignore_value\":false,"
                 "\"ignore_lease\":false,\"Key\":\"\"}"),
              MS_EMALFORMED, "ops[0].put: unknown field \"Key\"");
    json_fail(OP("\"put\":[]"), MS_EMALFORMED, "ops[0].put: expected object");
    /* enums */
    json_fail(OP("\"range\":{\"key\":\"\",\"range_end\":\"\",\"limit\":\"0\","
                 "\"revision\":\"0\",\"sort_order\":\"ASCEND\","
                 "\"sort_target\":\"key\",\"serializable\":false,"
                 "\"keys_only\":false,\"count_only\":false,"
                 "\"min_mod_revision\":\"0\",\"max_mod_revision\":\"0\","
                 "\"min_create_revision\":\"0\","
                 "\"max_create_revision\":\"0\"}"),
              MS_EMALFORMED, "ops[0].range.sort_order: expected one of");
#undef PUT
#undef OP
}

/* Invalid base64 in a bytes field is MS_EBASE64 with the field's path. */
static void test_json_bad_base64(void **state)
{
    static const char *const bad[] = {"QQ=",    "Q===",  "QQ==QQ==", "****",
                                      "QUJD\n", "QU JD", "=QQQ",     "QUJ"};
    char text[512];
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text),
                 "{\"ops\":[{\"node_id\":\"1\",\"request_id\":\"2\","
                 "\"delete_range\":{\"key\":\"QQ==\",\"range_end\":\"%s\","
                 "\"prev_kv\":true}}]}",
                 bad[i]);
        /* "QUJD\n" must be written escaped in JSON */
        if (strchr(bad[i], '\n') != NULL)
            snprintf(text, sizeof(text),
                     "{\"ops\":[{\"node_id\":\"1\",\"request_id\":\"2\","
                     "\"delete_range\":{\"key\":\"QQ==\",\"range_end\":"
                     "\"QUJD\\n\",\"prev_kv\":true}}]}");
        json_fail(text, MS_EBASE64, "ops[0].delete_range.range_end");
    }
}

/* Txn structure errors: compares, operands, ops not allowed inside. */
static void test_json_txn(void **state)
{
#define TXN(cmp, succ, fail)                                                   \
    "{\"ops\":[{\"node_id\":\"1\",\"request_id\":\"2\",\"txn\":{"              \
    "\"compare\":[" cmp "],\"success\":[" succ "],\"failure\":[" fail "]}}]}"
#define CMP(target, operand)                                                   \
    "{\"result\":\"equal\",\"target\":\"" target "\",\"key\":\"\","            \
    "\"range_end\":\"\"" operand "}"
#define SUB(body) "{\"node_id\":\"0\",\"request_id\":\"0\"," body "}"
    (void)state;
    json_ok(
        TXN(CMP("version", ",\"version\":\"3\"") "," CMP(
                "value", ",\"value\":\"AA==\"") "," CMP("lease",
                                                        ",\"lease\":\"-1\""),
            SUB("\"txn\":{\"compare\":[],\"success\":[],\"failure\":[]}"), ""),
        1);
    json_fail(TXN(CMP("mod", ",\"version\":\"3\""), "", ""), MS_EMALFORMED,
              "ops[0].txn.compare[0]: target mod needs field mod_revision");
    json_fail(TXN(CMP("mod", ""), "", ""), MS_EMALFORMED,
              "needs field mod_revision");
    json_fail(
        TXN(CMP("mod", ",\"mod_revision\":\"1\",\"lease\":\"1\""), "", ""),
        MS_EMALFORMED, "more than one operand");
    json_fail(TXN(CMP("sideways", ",\"version\":\"1\""), "", ""), MS_EMALFORMED,
              "ops[0].txn.compare[0].target");
    json_fail(TXN(CMP("value", ",\"value\":\"A\""), "", ""), MS_EBASE64,
              "ops[0].txn.compare[0].value");
    json_fail(TXN(CMP("version", ",\"version\":\"1\",\"x\":1"), "", ""),
              MS_EMALFORMED, "unknown field \"x\"");
    json_fail(TXN("",
                  SUB("\"compact\":{\"revision\":\"1\","
                      "\"physical\":false}"),
                  ""),
              MS_EMALFORMED, "ops[0].txn.success[0]: compact is not allowed");
    json_fail(TXN("", "", SUB("\"put\":{}") "," SUB("\"put\":7")),
              MS_EMALFORMED, "ops[0].txn.failure[0].put: missing field key");
    json_fail("{\"ops\":[{\"node_id\":\"1\",\"request_id\":\"2\",\"txn\":{"
              "\"compare\":[],\"success\":[]}}]}",
              MS_EMALFORMED, "ops[0].txn: missing field failure");
    json_fail("{\"ops\":[{\"node_id\":\"1\",\"request_id\":\"2\",\"txn\":{"
              "\"compare\":{},\"success\":[],\"failure\":[]}}]}",
              MS_EMALFORMED, "ops[0].txn: compare: expected array");
#undef SUB
#undef CMP
#undef TXN
}

/* Nesting limits: txns beyond MS_CODEC_MAX_TXN_DEPTH and JSON nested past
 * cJSON's limit are MS_ETOOLARGE; so is an ops array over the op limit. */
static void test_json_limits(void **state)
{
    struct ms_buf b = MS_BUF_INIT;
    (void)state;

    for (int depth = MS_CODEC_MAX_TXN_DEPTH;
         depth <= MS_CODEC_MAX_TXN_DEPTH + 1; depth++) {
        ms_buf_reset(&b);
        assert_int_equal(ms_buf_puts(&b, "{\"ops\":["), 0);
        for (int i = 0; i < depth; i++)
            assert_int_equal(
                ms_buf_puts(&b, "{\"node_id\":\"0\",\"request_id\":\"0\","
                                "\"txn\":{\"compare\":[],\"failure\":[],"
                                "\"success\":["),
                0);
        for (int i = 0; i < depth; i++)
            assert_int_equal(ms_buf_puts(&b, "]}}"), 0);
        assert_int_equal(ms_buf_puts(&b, "]}"), 0);
        assert_int_equal(ms_buf_putc(&b, 0), 0);
        if (depth == MS_CODEC_MAX_TXN_DEPTH)
            json_ok((const char *)b.data, 1);
        else
            json_fail((const char *)b.data, MS_ETOOLARGE, "nested");
    }

    ms_buf_reset(&b);
    for (int i = 0; i < 2000; i++)
        assert_int_equal(ms_buf_putc(&b, '['), 0);
    for (int i = 0; i < 2000; i++)
        assert_int_equal(ms_buf_putc(&b, ']'), 0);
    assert_int_equal(ms_buf_putc(&b, 0), 0);
    json_fail((const char *)b.data, MS_ETOOLARGE, "nested");

    ms_buf_reset(&b);
    assert_int_equal(ms_buf_puts(&b, "{\"ops\":["), 0);
    for (size_t i = 0; i <= MS_CODEC_MAX_OPS; i++)
        assert_int_equal(ms_buf_puts(&b, i ? ",0" : "0"), 0);
    assert_int_equal(ms_buf_puts(&b, "]}"), 0);
    assert_int_equal(ms_buf_putc(&b, 0), 0);
    json_fail((const char *)b.data, MS_ETOOLARGE, "more than");
    ms_buf_free(&b);
}

/* A NULL errmsg is allowed. */
static void test_null_errmsg(void **state)
{
    static const uint8_t bad[] = {1, 2, '{'};
    struct ms_batch b;
    (void)state;

    memset(&b, 0, sizeof(b));
    assert_int_equal(ms_codec_decode_batch(bad, sizeof(bad), &b, NULL, 0),
                     MS_ETRUNCATED);
    assert_int_equal(b.n_ops, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_random),
        cmocka_unit_test(test_round_trip_every_kind),
        cmocka_unit_test(test_empty_batch),
        cmocka_unit_test(test_exact_encoding),
        cmocka_unit_test(test_writer_appends),
        cmocka_unit_test(test_json_whitespace_and_order),
        cmocka_unit_test(test_txn_max_depth),
        cmocka_unit_test(test_names_and_peek),
        cmocka_unit_test(test_op_equal),
        cmocka_unit_test(test_bad_header),
        cmocka_unit_test(test_truncation_every_offset),
        cmocka_unit_test(test_trailing_garbage),
        cmocka_unit_test(test_oversize_payload),
        cmocka_unit_test(test_writer_rejects),
        cmocka_unit_test(test_pb_framing),
        cmocka_unit_test(test_pb_bad_ops),
        cmocka_unit_test(test_pb_too_deep),
        cmocka_unit_test(test_pb_too_many_ops),
        cmocka_unit_test(test_json_syntax),
        cmocka_unit_test(test_json_schema),
        cmocka_unit_test(test_json_bad_base64),
        cmocka_unit_test(test_json_txn),
        cmocka_unit_test(test_json_limits),
        cmocka_unit_test(test_null_errmsg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
