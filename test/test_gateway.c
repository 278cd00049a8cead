/* test_gateway.c - etcd v3 gateway translation: requests, responses, errors
 * (expected texts are etcd 3.4.23's, observed on its gateway). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/gateway.h"
#include "codec/codec.h"
#include "util/error.h"

struct fx {
    struct ms_arena arena;
    struct ms_op op;
    struct ms_gw_error err;
    struct ms_buf out;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    ms_arena_free(&f->arena);
    ms_buf_free(&f->out);
    free(f);
    return 0;
}

static const struct ms_op *parse_ok(struct fx *f, enum ms_gw_endpoint ep,
                                    const char *body)
{
    int rc = ms_gw_parse(ep, body, strlen(body), 0, &f->arena, &f->op, &f->err);
    if (rc != 0)
        fail_msg("parse of %s failed (%d): %s", body, rc, f->err.message);
    return &f->op;
}

static void parse_err_n(struct fx *f, enum ms_gw_endpoint ep, const char *body,
                        size_t len, size_t max_ops, int rc_want, int status,
                        int code, const char *msg)
{
    int rc = ms_gw_parse(ep, body, len, max_ops, &f->arena, &f->op, &f->err);
    if (rc != rc_want)
        fail_msg("%s: rc %d, want %d (%s)", body, rc, rc_want, f->err.message);
    assert_int_equal(f->err.http_status, status);
    assert_int_equal(f->err.grpc_code, code);
    assert_string_equal(f->err.message, msg);
}

static void parse_err(struct fx *f, enum ms_gw_endpoint ep, const char *body,
                      int rc_want, const char *msg)
{
    parse_err_n(f, ep, body, strlen(body), 0, rc_want, 400, 3, msg);
}

static void assert_bytes(struct ms_bytes b, const char *want)
{
    assert_int_equal(b.len, strlen(want));
    if (b.len > 0)
        assert_memory_equal(b.data, want, b.len);
}

static void assert_out(struct fx *f, const char *want)
{
    char *got = malloc(f->out.len + 1);
    assert_non_null(got);
    memcpy(got, f->out.data, f->out.len);
    got[f->out.len] = '\0';
    assert_string_equal(got, want);
    free(got);
    ms_buf_reset(&f->out);
}

/* --- requests ------------------------------------------------------------ */

/* Paths map to endpoints, the /v3/kv/lease aliases included. */
static void test_paths(void **state)
{
    enum ms_gw_endpoint ep;
    (void)state;

    assert_int_equal(ms_gw_endpoint_from_path("/v3/kv/put", 10, &ep), 0);
    assert_int_equal(ep, MS_GW_PUT);
    assert_int_equal(ms_gw_endpoint_from_path("/v3/kv/lease/revoke", 19, &ep),
                     0);
    assert_int_equal(ep, MS_GW_LEASE_REVOKE);
    assert_int_equal(ms_gw_endpoint_from_path("/v3/kv/putx", 11, &ep),
                     MS_ENOTFOUND);
    assert_string_equal(ms_gw_endpoint_path(MS_GW_DELETE_RANGE),
                        "/v3/kv/deleterange");
}

/* A put with every field, in snake_case, int64 as a string. */
static void test_put_snake(void **state)
{
    struct fx *f = *state;
    const struct ms_op *op = parse_ok(
        f, MS_GW_PUT,
        "{\"key\":\"Zm9v\",\"value\":\"YmFy\","
        "\"lease\":\"7587862072907302403\","
        "\"prev_kv\":true,\"ignore_value\":false,\"ignore_lease\":false}");

    assert_int_equal(op->type, MS_OP_PUT);
    assert_bytes(op->u.put.key, "foo");
    assert_bytes(op->u.put.value, "bar");
    assert_true(op->u.put.lease == 7587862072907302403LL);
    assert_true(op->u.put.prev_kv);
    assert_int_equal(op->node_id, 0);
}

/* camelCase names and int64 as a JSON number (exact, beyond 2^53). */
static void test_put_camel(void **state)
{
    struct fx *f = *state;
    const struct ms_op *op =
        parse_ok(f, MS_GW_PUT,
                 "{\"key\":\"Zm9v\",\"prevKv\":true,\"ignoreValue\":true,"
                 "\"ignoreLease\":true,\"lease\":0}");

    assert_true(op->u.put.prev_kv);
    assert_true(op->u.put.ignore_value);
    assert_true(op->u.put.ignore_lease);
    op =
        parse_ok(f, MS_GW_PUT, "{\"key\":\"Zm9v\",\"lease\":9007199254740993}");
    assert_true(op->u.put.lease == 9007199254740993LL);
    op = parse_ok(f, MS_GW_PUT,
                  "{\"key\":\"Zm9v\",\"lease\":\"-9223372036854775808\"}");
    assert_true(op->u.put.lease == INT64_MIN);
}

/* A range with every field: enum names, int64 strings, snake_case. */
static void test_range_snake(void **state)
{
    struct fx *f = *state;
    const struct ms_range *r =
        &parse_ok(f, MS_GW_RANGE,
                  "{\"key\":\"YQ==\",\"range_end\":\"AA==\",\"limit\":\"10\","
                  "\"revision\":\"-1\",\"sort_order\":\"DESCEND\","
                  "\"sort_target\":\"VALUE\",\"serializable\":true,"
                  "\"keys_only\":true,\"count_only\":true,"
                  "\"min_mod_revision\":\"1\",\"max_mod_revision\":\"2\","
                  "\"min_create_revision\":\"3\","
                  "\"max_create_revision\":\"4\"}")
             ->u.range;

    assert_bytes(r->key, "a");
    assert_int_equal(r->range_end.len, 1);
    assert_int_equal(r->range_end.data[0], 0);
    assert_int_equal(r->limit, 10);
    assert_int_equal(r->revision, -1);
    assert_int_equal(r->sort_order, MS_SORT_DESCEND);
    assert_int_equal(r->sort_target, MS_SORT_VALUE);
    assert_true(r->serializable && r->keys_only && r->count_only);
    assert_int_equal(r->min_mod_revision, 1);
    assert_int_equal(r->max_mod_revision, 2);
    assert_int_equal(r->min_create_revision, 3);
    assert_int_equal(r->max_create_revision, 4);
}

/* The same in camelCase with numbers for int64 and for enums. */
static void test_range_camel_numbers(void **state)
{
    struct fx *f = *state;
    const struct ms_range *r =
        &parse_ok(f, MS_GW_RANGE,
                  "{\"key\":\"YQ==\",\"rangeEnd\":\"Yg==\",\"limit\":10,"
                  "\"revision\":7,\"sortOrder\":1,\"sortTarget\":3,"
                  "\"keysOnly\":true,\"countOnly\":false,"
                  "\"minModRevision\":1,\"maxModRevision\":\" 2 \","
                  "\"minCreateRevision\":3,\"maxCreateRevision\":-0}")
             ->u.range;

    assert_bytes(r->range_end, "b");
    assert_int_equal(r->limit, 10);
    assert_int_equal(r->revision, 7);
    assert_int_equal(r->sort_order, MS_SORT_ASCEND);
    assert_int_equal(r->sort_target, MS_SORT_MOD);
    assert_true(r->keys_only);
    assert_false(r->count_only);
    assert_int_equal(r->max_mod_revision, 2);
    assert_int_equal(r->min_create_revision, 3);
    assert_int_equal(r->max_create_revision, 0);
}

/* When both spellings appear the camelCase one wins, whatever the order;
 * of a repeated key the last wins (jsonpb). */
static void test_camel_wins_last_wins(void **state)
{
    struct fx *f = *state;
    const struct ms_range *r =
        &parse_ok(f, MS_GW_RANGE,
                  "{\"keysOnly\":false,\"key\":\"Zm9v\",\"keys_only\":true,"
                  "\"limit\":1,\"limit\":2,\"key\":\"YQ==\"}")
             ->u.range;

    assert_false(r->keys_only);
    assert_int_equal(r->limit, 2);
    assert_bytes(r->key, "a");
}

/* Unknown fields (any JSON), null values and bytes after the first value
 * are ignored; escaped key names are matched after unescaping. */
static void test_unknown_null_trailing(void **state)
{
    struct fx *f = *state;
    const struct ms_put *p =
        &parse_ok(f, MS_GW_PUT,
                  "{\"bogus\":{\"a\":[1,{\"b\":null}],\"c\":\"}\"},"
                  "\"s\\\"\":\"a\\\\\",\"t\":\"a\\\"}\","
                  "\"k\\u0065y\":\"Zm9v\",\"value\":null,\"lease\":null,"
                  "\"prev_kv\":null,\"TTL\":5} trailing ]")
             ->u.put;

    assert_bytes(p->key, "foo");
    assert_int_equal(p->value.len, 0);
    assert_int_equal(p->lease, 0);
    assert_false(p->prev_kv);
}

/* An empty or blank body and "null" are the empty message: for a range
 * that means "key is not provided", for a compaction revision 0. */
static void test_empty_body(void **state)
{
    struct fx *f = *state;
    const struct ms_op *op;

    parse_err(f, MS_GW_RANGE, "", MS_EKEYEMPTY,
              "etcdserver: key is not provided");
    parse_err(f, MS_GW_PUT, " \n\t", MS_EKEYEMPTY,
              "etcdserver: key is not provided");
    parse_err(f, MS_GW_DELETE_RANGE, "null", MS_EKEYEMPTY,
              "etcdserver: key is not provided");
    op = parse_ok(f, MS_GW_COMPACTION, "");
    assert_int_equal(op->type, MS_OP_COMPACT);
    assert_int_equal(op->u.compact.revision, 0);
    op = parse_ok(f, MS_GW_TXN, "{}");
    assert_int_equal(op->type, MS_OP_TXN);
    assert_int_equal(op->u.txn.n_compare + op->u.txn.n_success, 0);
}

/* A deleterange with range_end and prev_kv, both spellings. */
static void test_delete_range(void **state)
{
    struct fx *f = *state;
    const struct ms_delete_range *d =
        &parse_ok(f, MS_GW_DELETE_RANGE,
                  "{\"key\":\"YQ==\",\"range_end\":\"Yw==\",\"prev_kv\":true}")
             ->u.delete_range;

    assert_bytes(d->key, "a");
    assert_bytes(d->range_end, "c");
    assert_true(d->prev_kv);
    d = &parse_ok(f, MS_GW_DELETE_RANGE,
                  "{\"key\":\"YQ==\",\"rangeEnd\":\"ZA==\",\"prevKv\":true}")
             ->u.delete_range;
    assert_bytes(d->range_end, "d");
    assert_true(d->prev_kv);
}

/* A txn: compares of every target, all four request kinds in snake_case
 * and camelCase, a nested txn. */
static void test_txn(void **state)
{
    struct fx *f = *state;
    const struct ms_txn *t =
        &parse_ok(
             f, MS_GW_TXN,
             "{\"compare\":["
             "{\"result\":\"EQUAL\",\"target\":\"VALUE\",\"key\":\"Zm9v\","
             "\"value\":\"YmF6\"},"
             "{\"result\":\"GREATER\",\"target\":\"VERSION\",\"key\":\"YQ==\","
             "\"version\":\"2\"},"
             "{\"result\":2,\"target\":1,\"key\":\"YQ==\",\"createRevision\":3,"
             "\"rangeEnd\":\"AA==\"},"
             "{\"result\":\"NOT_EQUAL\",\"target\":\"MOD\",\"key\":\"YQ==\","
             "\"mod_revision\":\"4\"},"
             "{\"target\":\"LEASE\",\"key\":\"YQ==\",\"lease\":\"5\"}],"
             "\"success\":["
             "{\"request_put\":{\"key\":\"Zm9v\",\"value\":\"MQ==\"}},"
             "{\"requestRange\":{\"key\":\"Zm9v\",\"limit\":1}},"
             "{\"request_delete_range\":{\"key\":\"eA==\"}},"
             "{\"requestTxn\":{\"success\":[{\"requestDeleteRange\":"
             "{\"key\":\"eQ==\"}}]}}],"
             "\"failure\":[{\"request_range\":{\"key\":\"Zm9v\"}},"
             "{\"request_txn\":{}}]}")
             ->u.txn;

    assert_int_equal(t->n_compare, 5);
    assert_int_equal(t->compare[0].result, MS_CMP_EQUAL);
    assert_int_equal(t->compare[0].target, MS_CMP_VALUE);
    assert_bytes(t->compare[0].key, "foo");
    assert_bytes(t->compare[0].value, "baz");
    assert_int_equal(t->compare[1].result, MS_CMP_GREATER);
    assert_int_equal(t->compare[1].target, MS_CMP_VERSION);
    assert_int_equal(t->compare[1].number, 2);
    assert_int_equal(t->compare[2].result, MS_CMP_LESS);
    assert_int_equal(t->compare[2].target, MS_CMP_CREATE);
    assert_int_equal(t->compare[2].number, 3);
    assert_int_equal(t->compare[2].range_end.len, 1);
    assert_int_equal(t->compare[3].result, MS_CMP_NOT_EQUAL);
    assert_int_equal(t->compare[3].number, 4);
    assert_int_equal(t->compare[4].target, MS_CMP_LEASE);
    assert_int_equal(t->compare[4].number, 5);
    assert_int_equal(t->n_success, 4);
    assert_int_equal(t->success[0].type, MS_OP_PUT);
    assert_bytes(t->success[0].u.put.value, "1");
    assert_int_equal(t->success[1].type, MS_OP_RANGE);
    assert_int_equal(t->success[1].u.range.limit, 1);
    assert_int_equal(t->success[2].type, MS_OP_DELETE_RANGE);
    assert_int_equal(t->success[3].type, MS_OP_TXN);
    assert_int_equal(t->success[3].u.txn.n_success, 1);
    assert_int_equal(t->success[3].u.txn.success[0].type, MS_OP_DELETE_RANGE);
    assert_bytes(t->success[3].u.txn.success[0].u.delete_range.key, "y");
    assert_int_equal(t->n_failure, 2);
    assert_int_equal(t->failure[1].type, MS_OP_TXN);
}

/* A compare reads only the oneof member its target names: target VERSION
 * with mod_revision set compares against 0, as etcd's getters do. */
static void test_compare_union(void **state)
{
    struct fx *f = *state;
    const struct ms_txn *t =
        &parse_ok(f, MS_GW_TXN,
                  "{\"compare\":[{\"target\":\"VERSION\",\"key\":\"YQ==\","
                  "\"mod_revision\":\"100\"},{\"target\":\"VALUE\","
                  "\"key\":\"YQ==\",\"version\":1}]}")
             ->u.txn;

    assert_int_equal(t->compare[0].number, 0);
    assert_int_equal(t->compare[1].value.len, 0);
}

/* Compaction, lease grant and revoke. */
static void test_compaction_lease(void **state)
{
    struct fx *f = *state;
    const struct ms_op *op =
        parse_ok(f, MS_GW_COMPACTION, "{\"revision\":\"5\",\"physical\":true}");

    assert_int_equal(op->u.compact.revision, 5);
    assert_true(op->u.compact.physical);
    op = parse_ok(f, MS_GW_LEASE_GRANT, "{\"TTL\":60,\"ID\":\"1234\"}");
    assert_int_equal(op->type, MS_OP_LEASE_GRANT);
    assert_int_equal(op->u.lease_grant.ttl, 60);
    assert_int_equal(op->u.lease_grant.id, 1234);
    /* the names are case-sensitive: "ttl"/"id" are unknown fields */
    op = parse_ok(f, MS_GW_LEASE_GRANT, "{\"ttl\":60,\"id\":5}");
    assert_int_equal(op->u.lease_grant.ttl, 0);
    assert_int_equal(op->u.lease_grant.id, 0);
    op = parse_ok(f, MS_GW_LEASE_REVOKE, "{\"ID\":\"-5\"}");
    assert_int_equal(op->type, MS_OP_LEASE_REVOKE);
    assert_int_equal(op->u.lease_revoke.id, -5);
}

/* Bytes as Go decodes []byte: CR/LF inside base64 skipped, non-zero
 * trailing bits accepted, JSON escapes undone first, or an array of
 * numbers. */
static void test_bytes_forms(void **state)
{
    struct fx *f = *state;

    assert_bytes(
        parse_ok(f, MS_GW_RANGE, "{\"key\":\"Zm\\n9v\\r\"}")->u.range.key,
        "foo");
    assert_bytes(
        parse_ok(f, MS_GW_RANGE, "{\"key\":\"\\u005am9v\"}")->u.range.key,
        "foo");
    assert_bytes(parse_ok(f, MS_GW_RANGE, "{\"key\":\"Zm9=\"}")->u.range.key,
                 "fo");
    parse_ok(f, MS_GW_RANGE, "{\"key\":[102,111,null,111]}");
    assert_int_equal(f->op.u.range.key.len, 4);
    assert_memory_equal(f->op.u.range.key.data, "fo\0o", 4);
    assert_bytes(
        parse_ok(f, MS_GW_RANGE, "{\"key\":\"Zm9vYmFyYg==\"}")->u.range.key,
        "foobarb");
}

/* Malformed JSON: 400, code 3 and the Go decoder's exact text. */
static void test_malformed_json(void **state)
{
    static const struct {
        const char *body;
        const char *msg;
    } cases[] = {
        {"{", "unexpected EOF"},
        {"{\"key\":\"Zm9v\"", "unexpected EOF"},
        {"{\"key\":\"Zm9v\",}",
         "invalid character '}' looking for beginning of object key string"},
        {"garbage", "invalid character 'g' looking for beginning of value"},
        {"{\"a\" 1}", "invalid character '1' after object key"},
        {"{\"a\":1 2}", "invalid character '2' after object key:value pair"},
        {"{\"a\":[1 2]}", "invalid character '2' after array element"},
        {"{\"a\":[1,]}",
         "invalid character ']' looking for beginning of value"},
        {"{\"a\":tru}",
         "invalid character '}' in literal true (expecting 'e')"},
        {"{\"a\":-}", "invalid character '}' in numeric literal"},
        {"{\"a\":1.}",
         "invalid character '}' after decimal point in numeric literal"},
        {"{\"a\":1e}", "invalid character '}' in exponent of numeric literal"},
        {"{\"a\":01}", "invalid character '1' after object key:value pair"},
        {"{\"a\":\"\\q\"}", "invalid character 'q' in string escape code"},
        {"{\"a\":\"\\u12\"}",
         "invalid character '\"' in \\u hexadecimal character escape"},
        {"{\"a\":\"\x01\"}", "invalid character '\\x01' in string literal"},
        {"{'a':1}",
         "invalid character '\\'' looking for beginning of object key string"},
        {"{\"a\":\xc3}", "invalid character '\xc3\x83' looking for beginning "
                         "of value"},
        {"[]", "json: cannot unmarshal array into Go value of type "
               "map[string]json.RawMessage"},
        {"\"x\"", "json: cannot unmarshal string into Go value of type "
                  "map[string]json.RawMessage"},
    };
    struct fx *f = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        parse_err(f, MS_GW_RANGE, cases[i].body, MS_EMALFORMED, cases[i].msg);
}

/* Nesting beyond encoding/json's 10000 levels is refused as Go does. */
static void test_max_depth(void **state)
{
    struct fx *f = *state;
    size_t n = 2 * 10001 + 8;
    char *b = malloc(n);
    size_t k = 0;

    assert_non_null(b);
    k += (size_t)sprintf(b, "{\"a\":");
    for (int i = 0; i < 10000; i++)
        b[k++] = '[';
    parse_err_n(f, MS_GW_RANGE, b, k, 0, MS_EMALFORMED, 400, 3,
                "invalid character '[' exceeded max depth");
    free(b);
}

/* Wrong types: Go's UnmarshalTypeError texts. */
static void test_wrong_types(void **state)
{
    static const struct {
        const char *body;
        const char *msg;
    } cases[] = {
        {"{\"key\":123}",
         "json: cannot unmarshal number into Go value of type []uint8"},
        {"{\"key\":{}}",
         "json: cannot unmarshal object into Go value of type []uint8"},
        {"{\"key\":[1111]}",
         "json: cannot unmarshal number 1111 into Go value of type uint8"},
        {"{\"key\":[\"a\"]}",
         "json: cannot unmarshal string into Go value of type uint8"},
        {"{\"key\":\"Zm9v\",\"limit\":1.5}",
         "json: cannot unmarshal number 1.5 into Go value of type int64"},
        {"{\"key\":\"Zm9v\",\"limit\":\"1e2\"}",
         "json: cannot unmarshal number 1e2 into Go value of type int64"},
        {"{\"key\":\"Zm9v\",\"limit\":\"9223372036854775808\"}",
         "json: cannot unmarshal number 9223372036854775808 into Go value of "
         "type int64"},
        {"{\"key\":\"Zm9v\",\"limit\":true}",
         "json: cannot unmarshal bool into Go value of type int64"},
        {"{\"key\":\"Zm9v\",\"limit\":\"abc\"}",
         "invalid character 'a' looking for beginning of value"},
        {"{\"key\":\"Zm9v\",\"limit\":\"\"}", "unexpected end of JSON input"},
        {"{\"key\":\"Zm9v\",\"limit\":\"5 x\"}",
         "invalid character 'x' after top-level value"},
        {"{\"key\":\"Zm9v\",\"limit\":\"-\"}",
         "invalid character ' ' in numeric literal"},
        {"{\"key\":\"Zm9v\",\"keys_only\":\"true\"}",
         "json: cannot unmarshal string into Go value of type bool"},
        {"{\"key\":\"Zm9v\",\"keys_only\":1}",
         "json: cannot unmarshal number into Go value of type bool"},
        {"{\"key\":\"Zm9v\",\"sort_order\":\"FOO\"}",
         "unknown value \"FOO\" for enum etcdserverpb.RangeRequest_SortOrder"},
        {"{\"key\":\"Zm9v\",\"sort_order\":\"1\"}",
         "unknown value \"1\" for enum etcdserverpb.RangeRequest_SortOrder"},
        {"{\"key\":\"Zm9v\",\"sort_target\":\"<\\t\xff\"}",
         "unknown value \"<\\\\t\\xff\" for enum "
         "etcdserverpb.RangeRequest_SortTarget"},
        {"{\"key\":\"Zm9v\",\"sort_order\":1.5}",
         "json: cannot unmarshal number 1.5 into Go value of type "
         "etcdserverpb.RangeRequest_SortOrder"},
        {"{\"key\":\"Zm9v\",\"sort_order\":true}",
         "json: cannot unmarshal bool into Go value of type "
         "etcdserverpb.RangeRequest_SortOrder"},
        /* the first bad field in proto order is reported, not in text order */
        {"{\"limit\":true,\"key\":5}",
         "json: cannot unmarshal number into Go value of type []uint8"},
    };
    struct fx *f = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        parse_err(f, MS_GW_RANGE, cases[i].body, MS_EMALFORMED, cases[i].msg);
    parse_err(f, MS_GW_TXN, "{\"compare\":{}}", MS_EMALFORMED,
              "json: cannot unmarshal object into Go value of type "
              "[]json.RawMessage");
    parse_err(f, MS_GW_TXN, "{\"success\":[5]}", MS_EMALFORMED,
              "json: cannot unmarshal number into Go value of type "
              "map[string]json.RawMessage");
    parse_err(f, MS_GW_TXN,
              "{\"compare\":[{\"key\":\"Zm9v\",\"result\":\"BIG\"}]}",
              MS_EMALFORMED,
              "unknown value \"BIG\" for enum "
              "etcdserverpb.Compare_CompareResult");
}

/* An enum number with no name is refused (etcd stores it; our operation
 * model cannot carry it): a deliberate difference, still 400/3. */
static void test_enum_number_out_of_range(void **state)
{
    struct fx *f = *state;

    parse_err(f, MS_GW_RANGE, "{\"key\":\"Zm9v\",\"sort_target\":9}",
              MS_EMALFORMED,
              "unknown value 9 for enum etcdserverpb.RangeRequest_SortTarget");
    parse_err(f, MS_GW_TXN, "{\"compare\":[{\"key\":\"YQ==\",\"target\":-1}]}",
              MS_EMALFORMED,
              "unknown value -1 for enum etcdserverpb.Compare_CompareTarget");
}

/* Bad base64: 400/3 with the offset Go's decoder reports. */
static void test_bad_base64(void **state)
{
    static const struct {
        const char *key;
        const char *msg;
    } cases[] = {
        {"Zm9", "illegal base64 data at input byte 0"},
        {"Zm9v!", "illegal base64 data at input byte 4"},
        {"Zm9vYg", "illegal base64 data at input byte 4"},
        {"Zm9vYg=", "illegal base64 data at input byte 7"},
        {"Zm9vYg==x", "illegal base64 data at input byte 8"},
        {"Zm9vY===", "illegal base64 data at input byte 5"},
        {"=", "illegal base64 data at input byte 0"},
        {"Zm9v\\\\n", "illegal base64 data at input byte 4"},
        {"Zm-v", "illegal base64 data at input byte 2"},
    };
    struct fx *f = *state;
    char body[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body), "{\"key\":\"%s\"}", cases[i].key);
        parse_err(f, MS_GW_PUT, body, MS_EBASE64, cases[i].msg);
    }
}

/* The checks etcd's API layer makes before Raft. */
static void test_api_checks(void **state)
{
    struct fx *f = *state;

    parse_err(f, MS_GW_PUT, "{\"key\":\"\",\"value\":\"YQ==\"}", MS_EKEYEMPTY,
              "etcdserver: key is not provided");
    parse_err(f, MS_GW_DELETE_RANGE, "{\"range_end\":\"YQ==\"}", MS_EKEYEMPTY,
              "etcdserver: key is not provided");
    parse_err(f, MS_GW_PUT,
              "{\"key\":\"YQ==\",\"value\":\"YQ==\",\"ignore_value\":true}",
              MS_EINVAL, "etcdserver: value is provided");
    parse_err(f, MS_GW_PUT,
              "{\"key\":\"YQ==\",\"lease\":5,\"ignore_lease\":true}", MS_EINVAL,
              "etcdserver: lease is provided");
    parse_err(f, MS_GW_TXN, "{\"compare\":[{\"key\":\"\"}]}", MS_EKEYEMPTY,
              "etcdserver: key is not provided");
    parse_err(f, MS_GW_TXN, "{\"success\":[{}]}", MS_EINVAL,
              "etcdserver: key not found");
    parse_err(f, MS_GW_TXN, "{\"success\":[{\"request_put\":null}]}", MS_EINVAL,
              "etcdserver: key not found");
    parse_err(f, MS_GW_TXN,
              "{\"success\":[{\"request_txn\":{\"success\":[{\"request_put\":"
              "{\"key\":\"\"}}]}}]}",
              MS_EKEYEMPTY, "etcdserver: key is not provided");
    /* compares are checked before success, success before failure */
    parse_err(f, MS_GW_TXN,
              "{\"failure\":[{}],\"success\":[{\"request_range\":{}}]}",
              MS_EKEYEMPTY, "etcdserver: key is not provided");
    parse_err_n(f, MS_GW_LEASE_GRANT, "{\"TTL\":9000000001}", 18, 0, MS_EINVAL,
                400, 11, "etcdserver: too large lease TTL");
    assert_int_equal(ms_gw_parse(MS_GW_LEASE_GRANT, "{\"TTL\":9000000000}", 18,
                                 0, &f->arena, &f->op, &f->err),
                     0);
}

/* Too many txn ops: the largest list against max_txn_ops; a nested txn
 * gets only what its parent's count leaves (etcd's checkTxnRequest). */
static void test_too_many_ops(void **state)
{
    struct fx *f = *state;
    const char *three = "{\"success\":[{\"request_range\":{\"key\":\"YQ==\"}},"
                        "{\"request_range\":{\"key\":\"YQ==\"}},"
                        "{\"request_range\":{\"key\":\"YQ==\"}}]}";
    const char *nested = "{\"compare\":[{\"key\":\"YQ==\"},{\"key\":\"YQ==\"}],"
                         "\"success\":[{\"request_txn\":{\"success\":["
                         "{\"request_range\":{\"key\":\"YQ==\"}},"
                         "{\"request_range\":{\"key\":\"YQ==\"}}]}}]}";

    parse_err_n(f, MS_GW_TXN, three, strlen(three), 2, MS_ETOOMANYOPS, 400, 3,
                "etcdserver: too many operations in txn request");
    assert_int_equal(ms_gw_parse(MS_GW_TXN, three, strlen(three), 3, &f->arena,
                                 &f->op, &f->err),
                     0);
    /* outer count 2, budget 4 - 2 = 2 for the nested txn: fits; 3: not */
    assert_int_equal(ms_gw_parse(MS_GW_TXN, nested, strlen(nested), 4,
                                 &f->arena, &f->op, &f->err),
                     0);
    parse_err_n(f, MS_GW_TXN, nested, strlen(nested), 3, MS_ETOOMANYOPS, 400, 3,
                "etcdserver: too many operations in txn request");
    /* too many ops is reported before an empty key */
    const char *two = "{\"compare\":[{\"key\":\"\"},{\"key\":\"\"}]}";
    parse_err_n(f, MS_GW_TXN, two, strlen(two), 1, MS_ETOOMANYOPS, 400, 3,
                "etcdserver: too many operations in txn request");
}

/* Txns nested deeper than the codec carries are refused with 400/3. */
static void test_txn_depth(void **state)
{
    struct fx *f = *state;
    char body[1024];
    size_t k = 0;
    int levels = MS_CODEC_MAX_TXN_DEPTH; /* nested inside the top txn */

    for (int i = 0; i < levels; i++)
        k += (size_t)sprintf(body + k, "{\"success\":[{\"request_txn\":");
    k += (size_t)sprintf(body + k, "{}");
    for (int i = 0; i < levels; i++)
        k += (size_t)sprintf(body + k, "}]}");
    parse_err_n(f, MS_GW_TXN, body, k, 0, MS_ETOOLARGE, 400, 3,
                "metastore: txn nested more than 8 deep");
    /* one level less is fine */
    size_t pre = strlen("{\"success\":[{\"request_txn\":");
    assert_int_equal(ms_gw_parse(MS_GW_TXN, body + pre, k - pre - 3, 0,
                                 &f->arena, &f->op, &f->err),
                     0);
}

/* --- responses ----------------------------------------------------------- */

static const struct ms_gw_header hdr13 = {324952591200643719ULL,
                                          3319814642761637952ULL, 13, 2};
#define HDR13                                                                  \
    "{\"cluster_id\":\"324952591200643719\",\"member_id\":"                    \
    "\"3319814642761637952\",\"revision\":\"13\",\"raft_term\":\"2\"}"

static struct ms_bytes B(const char *s) {
    struct ms_bytes b = {(const uint8_t *)s, strlen(s)};
    return b;
}

/* Headers: every field a string, zero fields omitted. */
static void
test_header(void **state)
{
    struct fx *f = *state;
    struct ms_gw_header h = {1, 2, 0, 3};

    assert_int_equal(ms_gw_write_header(&f->out, &hdr13), 0);
    assert_out(f, HDR13);
    assert_int_equal(ms_gw_write_header(&f->out, &h), 0);
    assert_out(f, "{\"cluster_id\":\"1\",\"member_id\":\"2\","
                  "\"raft_term\":\"3\"}");
    memset(&h, 0, sizeof(h));
    h.cluster_id = UINT64_MAX;
    assert_int_equal(ms_gw_write_header(&f->out, &h), 0);
    assert_out(f, "{\"cluster_id\":\"18446744073709551615\"}");
}

/* Put: header only, or with prev_kv; an empty value and version 0 are
 * omitted from a kv, a lease shown. */
static void test_put_response(void **state)
{
    struct fx *f = *state;
    struct ms_result r = {.type = MS_OP_PUT, .revision = 13};

    assert_int_equal(ms_gw_write_result(&f->out, &hdr13, &r), 0);
    assert_out(f, "{\"header\":" HDR13 "}");
    r.u.put.has_prev = true;
    r.u.put.prev_kv = (struct ms_kv){B("foo"), B("bar"), 2, 2, 1, 0};
    assert_int_equal(ms_gw_write_result(&f->out, &hdr13, &r), 0);
    assert_out(f, "{\"header\":" HDR13 ",\"prev_kv\":{\"key\":\"Zm9v\","
                  "\"create_revision\":\"2\",\"mod_revision\":\"2\","
                  "\"version\":\"1\",\"value\":\"YmFy\"}}");
    r.u.put.prev_kv = (struct ms_kv){B("foo"), B(""), 2, 4, 3, 1234};
    assert_int_equal(ms_gw_write_result(&f->out, &hdr13, &r), 0);
    assert_out(f, "{\"header\":" HDR13 ",\"prev_kv\":{\"key\":\"Zm9v\","
                  "\"create_revision\":\"2\",\"mod_revision\":\"4\","
                  "\"version\":\"3\",\"lease\":\"1234\"}}");
}

/* Range: kvs, more and count; nothing matched: header only; count only. */
static void test_range_response(void **state)
{
    struct fx *f = *state;
    struct ms_kv kv = {B("a"), B("1"), 6, 6, 1, 0};
    struct ms_result r = {.type = MS_OP_RANGE, .revision = 7};

    assert_int_equal(ms_gw_write_result(&f->out, &hdr13, &r), 0);
    assert_out(f, "{\"header\":" HDR13 "}");
    r.u.range.kvs = &kv;
    r.u.range.n_kvs = 1;
    r.u.range.more = true;
    r.u.range.count = 2;
    assert_int_equal(ms_gw_write_result(&f->out, &hdr13, &r), 0);
    assert_out(f, "{\"header\":" HDR13 ",\"kvs\":[{\"key\":\"YQ==\","
                  "\"create_revision\":\"6\",\"mod_revision\":\"6\","
                  "\"version\":\"1\",\"value\":\"MQ==\"}],\"more\":true,"
                  "\"count\":\"2\"}");
    r.u.range.n_kvs = 0;
    r.u.range.more = false;
    r.u.range.count = 1;
    assert_int_equal(ms_gw_write_result(&f->out, &hdr13, &r), 0);
    assert_out(f, "{\"header\":" HDR13 ",\"count\":\"1\"}");
}

/* Deleterange: deleted and prev_kvs; nothing deleted: header only. */
static void test_delete_range_response(void **state)
{
    struct fx *f = *state;
    struct ms_kv kvs[2] = {{B("a"), B("1"), 6, 6, 1, 0},
                           {B("b"), B("2"), 7, 7, 1, 0}};
    struct ms_result r = {.type = MS_OP_DELETE_RANGE};

    assert_int_equal(ms_gw_write_result(&f->out, &hdr13, &r), 0);
    assert_out(f, "{\"header\":" HDR13 "}");
    r.u.delete_range.deleted = 2;
    r.u.delete_range.prev_kvs = kvs;
    r.u.delete_range.n_prev_kvs = 2;
    assert_int_equal(ms_gw_write_result(&f->out, &hdr13, &r), 0);
    assert_out(f, "{\"header\":" HDR13 ",\"deleted\":\"2\",\"prev_kvs\":["
                  "{\"key\":\"YQ==\",\"create_revision\":\"6\","
                  "\"mod_revision\":\"6\",\"version\":\"1\","
                  "\"value\":\"MQ==\"},"
                  "{\"key\":\"Yg==\",\"create_revision\":\"7\","
                  "\"mod_revision\":\"7\",\"version\":\"1\","
                  "\"value\":\"Mg==\"}]}");
}

/* Txn: inner headers carry only their revision, a nested txn's header is
 * {} (etcd's exact output for this txn); succeeded false is omitted. */
static void test_txn_response(void **state)
{
    struct fx *f = *state;
    struct ms_kv foo = {B("foo"), B("1"), 2, 13, 5, 0};
    struct ms_result nested_resp[1] = {
        {.type = MS_OP_RANGE, .revision = 13, .u.range = {&foo, 1, false, 1}},
    };
    struct ms_result resp[4] = {
        {.type = MS_OP_PUT,
         .revision = 13,
         .u.put = {true, {B("foo"), B("baz"), 2, 5, 4, 0}}},
        {.type = MS_OP_RANGE, .revision = 13, .u.range = {&foo, 1, false, 1}},
        {.type = MS_OP_DELETE_RANGE, .revision = 13},
        {.type = MS_OP_TXN, .revision = 13, .u.txn = {true, nested_resp, 1}},
    };
    struct ms_result r = {
        .type = MS_OP_TXN, .revision = 13, .u.txn = {true, resp, 4}};

    assert_int_equal(ms_gw_write_result(&f->out, &hdr13, &r), 0);
    assert_out(
        f,
        "{\"header\":" HDR13 ",\"succeeded\":true,\"responses\":["
        "{\"response_put\":{\"header\":{\"revision\":\"13\"},\"prev_kv\":"
        "{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"5\","
        "\"version\":\"4\",\"value\":\"YmF6\"}}},"
        "{\"response_range\":{\"header\":{\"revision\":\"13\"},\"kvs\":"
        "[{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"13\","
        "\"version\":\"5\",\"value\":\"MQ==\"}],\"count\":\"1\"}},"
        "{\"response_delete_range\":{\"header\":{\"revision\":\"13\"}}},"
        "{\"response_txn\":{\"header\":{},\"succeeded\":true,\"responses\":["
        "{\"response_range\":{\"header\":{\"revision\":\"13\"},\"kvs\":"
        "[{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"13\","
        "\"version\":\"5\",\"value\":\"MQ==\"}],\"count\":\"1\"}}]}}]}");
    r.u.txn.succeeded = false;
    r.u.txn.n_responses = 0;
    assert_int_equal(ms_gw_write_result(&f->out, &hdr13, &r), 0);
    assert_out(f, "{\"header\":" HDR13 "}");
}

/* Compaction and revoke: header only; grant: ID and TTL (negative IDs as
 * etcd accepts them). */
static void test_other_responses(void **state)
{
    struct fx *f = *state;
    struct ms_result r = {.type = MS_OP_COMPACT};

    assert_int_equal(ms_gw_write_result(&f->out, &hdr13, &r), 0);
    assert_out(f, "{\"header\":" HDR13 "}");
    r.type = MS_OP_LEASE_REVOKE;
    assert_int_equal(ms_gw_write_result(&f->out, &hdr13, &r), 0);
    assert_out(f, "{\"header\":" HDR13 "}");
    r.type = MS_OP_LEASE_GRANT;
    r.u.lease_grant.id = 2324035613324722706LL;
    r.u.lease_grant.ttl = 60;
    assert_int_equal(ms_gw_write_result(&f->out, &hdr13, &r), 0);
    assert_out(f, "{\"header\":" HDR13
                  ",\"ID\":\"2324035613324722706\",\"TTL\":\"60\"}");
    r.u.lease_grant.id = -5;
    r.u.lease_grant.ttl = 0;
    assert_int_equal(ms_gw_write_result(&f->out, &hdr13, &r), 0);
    assert_out(f, "{\"header\":" HDR13 ",\"ID\":\"-5\"}");
}

/* A failed result, an unknown type or a lease op inside a txn are not
 * written, and nothing is appended. */
static void test_result_rejects(void **state)
{
    struct fx *f = *state;
    struct ms_result inner = {.type = MS_OP_COMPACT};
    struct ms_result r = {.type = MS_OP_PUT, .err = MS_ECOMPACTED};

    assert_int_equal(ms_gw_write_result(&f->out, &hdr13, &r), MS_EINVAL);
    r.err = 0;
    r.type = (enum ms_op_type)99;
    assert_int_equal(ms_gw_write_result(&f->out, &hdr13, &r), MS_EINVAL);
    r.type = MS_OP_TXN;
    r.u.txn.responses = &inner;
    r.u.txn.n_responses = 1;
    assert_int_equal(ms_gw_write_result(&f->out, &hdr13, &r), MS_EINVAL);
    assert_int_equal(f->out.len, 0);
}

/* Maintenance status and member list in etcd's field names and order. */
static void test_status_members(void **state)
{
    struct fx *f = *state;
    struct ms_gw_status st = {
        "3.4.23", 20480, 3319814642761637952ULL, 47, 2, 47, NULL, 0,
        16384,    false};
    const char *peers[] = {"http://127.0.0.1:23800"};
    const char *clients[] = {"http://127.0.0.1:23790"};
    struct ms_gw_member m[2] = {
        {3319814642761637952ULL, "default", peers, 1, clients, 1, false},
        {42, NULL, peers, 1, NULL, 0, true},
    };
    struct ms_gw_header h = hdr13;

    assert_int_equal(ms_gw_write_status(&f->out, &hdr13, &st), 0);
    assert_out(f, "{\"header\":" HDR13 ",\"version\":\"3.4.23\","
                  "\"dbSize\":\"20480\",\"leader\":\"3319814642761637952\","
                  "\"raftIndex\":\"47\",\"raftTerm\":\"2\","
                  "\"raftAppliedIndex\":\"47\",\"dbSizeInUse\":\"16384\"}");
    h.revision = 0;
    assert_int_equal(ms_gw_write_member_list(&f->out, &h, m, 2), 0);
    assert_out(f, "{\"header\":{\"cluster_id\":\"324952591200643719\","
                  "\"member_id\":\"3319814642761637952\",\"raft_term\":\"2\"},"
                  "\"members\":[{\"ID\":\"3319814642761637952\","
                  "\"name\":\"default\","
                  "\"peerURLs\":[\"http://127.0.0.1:23800\"],"
                  "\"clientURLs\":[\"http://127.0.0.1:23790\"]},"
                  "{\"ID\":\"42\",\"peerURLs\":[\"http://127.0.0.1:23800\"],"
                  "\"isLearner\":true}]}");
}

/* Strings are escaped as Go's encoding/json does. */
static void test_write_string(void **state)
{
    struct fx *f = *state;
    const char s[] = "a\"\\\n\r\t\x01<>&\x7f\xc3\xa9"
                     "\xe2\x80\xa8\xff\xed\xa0\x80";

    assert_int_equal(ms_gw_write_string(&f->out, s, sizeof(s) - 1), 0);
    assert_out(f, "\"a\\\"\\\\\\n\\r\\t\\u0001\\u003c\\u003e\\u0026\x7f"
                  "\xc3\xa9\\u2028\\ufffd\\ufffd\\ufffd\\ufffd\"");
}

/* --- errors -------------------------------------------------------------- */

/* The error body: error, message, code, in that order. */
static void test_error_json(void **state)
{
    struct fx *f = *state;
    struct ms_gw_error e;

    ms_gw_error_from_code(MS_ELEASE, NULL, &e);
    assert_int_equal(ms_gw_error_json(&e, &f->out), 0);
    assert_out(f, "{\"error\":\"etcdserver: requested lease not found\","
                  "\"message\":\"etcdserver: requested lease not found\","
                  "\"code\":5}");
    ms_gw_error_set(&e, 3, "unknown value \"<\" for enum X");
    assert_int_equal(ms_gw_error_json(&e, &f->out), 0);
    assert_out(f, "{\"error\":\"unknown value \\\"\\u003c\\\" for enum X\","
                  "\"message\":\"unknown value \\\"\\u003c\\\" for enum X\","
                  "\"code\":3}");
}

/* Our codes map to etcd's messages, gRPC codes and HTTP statuses. */
static void test_error_mapping(void **state)
{
    static const struct {
        int code;
        int status;
        int grpc;
        const char *msg;
    } cases[] = {
        {MS_EKEYEMPTY, 400, 3, "etcdserver: key is not provided"},
        {MS_ECOMPACTED, 400, 11,
         "etcdserver: mvcc: required revision has been compacted"},
        {MS_EFUTUREREV, 400, 11,
         "etcdserver: mvcc: required revision is a future revision"},
        {MS_EDUPKEY, 400, 3, "etcdserver: duplicate key given in txn request"},
        {MS_ELEASE, 404, 5, "etcdserver: requested lease not found"},
        {MS_EEXISTS, 412, 9, "etcdserver: lease already exists"},
        {MS_ETOOLARGE, 400, 3, "etcdserver: request is too large"},
        {MS_ETOOMANYOPS, 400, 3,
         "etcdserver: too many operations in txn request"},
        {MS_ENOTFOUND, 400, 3, "etcdserver: key not found"},
        {MS_ENOLEADER, 503, 14, "etcdserver: no leader"},
        {MS_ENOTLEADER, 503, 14, "etcdserver: not leader"},
        {MS_ETIMEOUT, 503, 14, "etcdserver: request timed out"},
        {MS_ESHUTDOWN, 503, 14, "etcdserver: server stopped"},
        {MS_ENOSPACE, 429, 8, "etcdserver: mvcc: database space exceeded"},
        {MS_EIO, 500, 2, "I/O error"},
        {MS_ENOMEM, 500, 2, "out of memory"},
    };
    struct ms_gw_error e;
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(ms_gw_error_from_code(cases[i].code, NULL, &e),
                         cases[i].code);
        assert_int_equal(e.http_status, cases[i].status);
        assert_int_equal(e.grpc_code, cases[i].grpc);
        assert_string_equal(e.message, cases[i].msg);
    }
    ms_gw_error_from_code(MS_EMALFORMED, "unexpected EOF", &e);
    assert_int_equal(e.http_status, 400);
    assert_string_equal(e.message, "unexpected EOF");
    assert_int_equal(ms_gw_http_status(9), 412);
    assert_int_equal(ms_gw_http_status(8), 429);
    assert_int_equal(ms_gw_http_status(12), 501);
}

/* A result's error takes its operation as context. */
static void test_error_from_result(void **state)
{
    struct ms_result r = {.type = MS_OP_LEASE_REVOKE, .err = MS_ENOTFOUND};
    struct ms_gw_error e;
    (void)state;

    assert_int_equal(ms_gw_error_from_result(&r, &e), MS_ENOTFOUND);
    assert_int_equal(e.http_status, 404);
    assert_string_equal(e.message, "etcdserver: requested lease not found");
    r.type = MS_OP_PUT;
    ms_gw_error_from_result(&r, &e);
    assert_int_equal(e.http_status, 400);
    assert_string_equal(e.message, "etcdserver: key not found");
    r.err = MS_ELEASE;
    ms_gw_error_from_result(&r, &e);
    assert_int_equal(e.http_status, 404);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_snake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_camel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_snake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_camel_numbers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_camel_wins_last_wins, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unknown_null_trailing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_empty_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compare_union, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytes_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_depth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enum_number_out_of_range, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_base64, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn_depth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_range_response, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_txn_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_responses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_result_rejects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_string, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_from_result, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
