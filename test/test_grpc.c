/* test_grpc.c - the gRPC pieces that need no network: SHA-256, grpc-timeout
 * and grpc-message encoding, and the protobuf codec between etcd's
 * messages and operations/results. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/grpc_codec.h"
#include "etcd/etcdserver/etcdserverpb/rpc.pb-c.h"
#include "grpc/server.h"
#include "util/error.h"
#include "util/sha256.h"

static void hex(const uint8_t *d, char *out)
{
    for (int i = 0; i < MS_SHA256_SIZE; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

/* SHA-256 gives FIPS 180-4's example digests, fed at once or bytewise. */
static void test_sha256_vectors(void **state)
{
    static const struct {
        const char *in;
        const char *digest;
    } v[] = {
        {"",
         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc",
         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    uint8_t d[MS_SHA256_SIZE];
    char h[2 * MS_SHA256_SIZE + 1];
    struct ms_sha256 s;
    (void)state;

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        ms_sha256_init(&s);
        ms_sha256_update(&s, v[i].in, strlen(v[i].in));
        ms_sha256_final(&s, d);
        hex(d, h);
        assert_string_equal(h, v[i].digest);
        ms_sha256_init(&s);
        for (size_t k = 0; v[i].in[k]; k++)
            ms_sha256_update(&s, v[i].in + k, 1);
        ms_sha256_final(&s, d);
        hex(d, h);
        assert_string_equal(h, v[i].digest);
    }
}

/* One million 'a' (the long FIPS example) in uneven pieces. */
static void test_sha256_million(void **state)
{
    static char a[1000];
    uint8_t d[MS_SHA256_SIZE];
    char h[2 * MS_SHA256_SIZE + 1];
    struct ms_sha256 s;
    (void)state;

    memset(a, 'a', sizeof(a));
    ms_sha256_init(&s);
    for (int i = 0; i < 1000; i++) {
        ms_sha256_update(&s, a, 333);
        ms_sha256_update(&s, a, 667);
    }
    ms_sha256_final(&s, d);
    hex(d, h);
    assert_string_equal(
        h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* grpc-timeout units, rounded up to milliseconds; bad values refused. */
static void test_grpc_timeout(void **state)
{
    uint64_t ms;
    (void)state;

    assert_int_equal(ms_grpc_parse_timeout("4999082u", &ms), 0);
    assert_int_equal(ms, 4000 + 999 + 1);
    assert_int_equal(ms_grpc_parse_timeout("5S", &ms), 0);
    assert_int_equal(ms, 5000);
    assert_int_equal(ms_grpc_parse_timeout("5010m", &ms), 0);
    assert_int_equal(ms, 5010);
    assert_int_equal(ms_grpc_parse_timeout("2M", &ms), 0);
    assert_int_equal(ms, 120000);
    assert_int_equal(ms_grpc_parse_timeout("1H", &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(ms_grpc_parse_timeout("1n", &ms), 0);
    assert_int_equal(ms, 1);
    assert_int_equal(ms_grpc_parse_timeout("S", &ms), MS_EMALFORMED);
    assert_int_equal(ms_grpc_parse_timeout("123456789S", &ms), MS_EMALFORMED);
    assert_int_equal(ms_grpc_parse_timeout("12x", &ms), MS_EMALFORMED);
    assert_int_equal(ms_grpc_parse_timeout("1.5S", &ms), MS_EMALFORMED);
}

/* grpc-message: printable ASCII as is, '%' and the rest as %XX. */
static void test_grpc_pct_encode(void **state)
{
    struct ms_buf b = MS_BUF_INIT;
    (void)state;

    assert_int_equal(ms_grpc_pct_encode(&b, "a b%\n\xc3\xa9~"), 0);
    ms_buf_putc(&b, 0);
    assert_string_equal((char *)b.data, "a b%25%0A%C3%A9~");
    ms_buf_free(&b);
}

/* A TxnRequest with a compare, nested ops and a nested txn decodes into
 * the same op the gateway would build. */
static void test_decode_txn(void **state)
{
    Etcdserverpb__TxnRequest t = ETCDSERVERPB__TXN_REQUEST__INIT,
                             inner = ETCDSERVERPB__TXN_REQUEST__INIT;
    Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT, *cmps[1] = {&cmp};
    Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
    Etcdserverpb__RequestOp op1 = ETCDSERVERPB__REQUEST_OP__INIT,
                            op2 = ETCDSERVERPB__REQUEST_OP__INIT;
    Etcdserverpb__RequestOp *succ[2] = {&op1, &op2};
    struct ms_arena a = {.chunk_size = 256};
    struct ms_op op;
    uint8_t buf[256];
    size_t n;
    (void)state;

    cmp.key = (ProtobufCBinaryData){1, (uint8_t *)"k"};
    cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE;
    cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE;
    cmp.value = (ProtobufCBinaryData){2, (uint8_t *)"v1"};
    put.key = (ProtobufCBinaryData){1, (uint8_t *)"k"};
    put.value = (ProtobufCBinaryData){2, (uint8_t *)"v2"};
    put.prev_kv = 1;
    op1.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
    op1.request_put = &put;
    op2.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN;
    op2.request_txn = &inner;
    t.n_compare = 1;
    t.compare = cmps;
    t.n_success = 2;
    t.success = succ;
    n = etcdserverpb__txn_request__pack(&t, buf);

    assert_int_equal(ms_pb_decode_op(MS_OP_TXN, buf, n, &a, &op), 0);
    assert_int_equal(op.type, MS_OP_TXN);
    assert_int_equal(op.u.txn.n_compare, 1);
    assert_int_equal(op.u.txn.compare[0].target, MS_CMP_VALUE);
    assert_memory_equal(op.u.txn.compare[0].value.data, "v1", 2);
    assert_int_equal(op.u.txn.n_success, 2);
    assert_int_equal(op.u.txn.success[0].type, MS_OP_PUT);
    assert_true(op.u.txn.success[0].u.put.prev_kv);
    assert_memory_equal(op.u.txn.success[0].u.put.value.data, "v2", 2);
    assert_int_equal(op.u.txn.success[1].type, MS_OP_TXN);
    assert_int_equal(op.u.txn.n_failure, 0);
    ms_arena_free(&a);
}

/* Bad bytes and out-of-range enums are MS_EMALFORMED, never a crash. */
static void test_decode_bad(void **state)
{
    static const uint8_t junk[] = {0xff, 0xff, 0xff};
    static const uint8_t sort5[] = {0x28, 0x05}; /* sort_order = 5 */
    struct ms_arena a = {.chunk_size = 256};
    struct ms_op op;
    (void)state;

    assert_int_equal(ms_pb_decode_op(MS_OP_PUT, junk, 3, &a, &op),
                     MS_EMALFORMED);
    assert_int_equal(ms_pb_decode_op(MS_OP_RANGE, sort5, 2, &a, &op),
                     MS_EMALFORMED);
    assert_int_equal(ms_pb_decode_op(MS_OP_PUT, NULL, 0, &a, &op), 0);
    assert_int_equal(op.u.put.key.len, 0);
    ms_arena_free(&a);
}

/* Results survive encode then decode (the forwarding path): a txn with a
 * range (kvs, count, more) and a put with prev_kv. */
static void test_result_roundtrip(void **state)
{
    struct ms_kv kvs[2] = {
        {{(const uint8_t *)"a", 1}, {(const uint8_t *)"1", 1}, 2, 3, 1, 0},
        {{(const uint8_t *)"b", 1}, {NULL, 0}, 4, 4, 1, 7},
    };
    struct ms_result inner[2] = {
        {.type = MS_OP_RANGE, .revision = 9},
        {.type = MS_OP_PUT, .revision = 9},
    };
    struct ms_result r = {.type = MS_OP_TXN, .revision = 9}, back;
    struct ms_gw_header h = {11, 12, 9, 13};
    struct ms_arena a = {.chunk_size = 256};
    struct ms_buf b = MS_BUF_INIT;
    (void)state;

    inner[0].u.range.kvs = kvs;
    inner[0].u.range.n_kvs = 2;
    inner[0].u.range.count = 5;
    inner[0].u.range.more = true;
    inner[1].u.put.has_prev = true;
    inner[1].u.put.prev_kv = kvs[0];
    r.u.txn.succeeded = true;
    r.u.txn.responses = inner;
    r.u.txn.n_responses = 2;
    assert_int_equal(ms_pb_encode_result(&h, &r, &b), 0);
    assert_int_equal(ms_pb_decode_result(MS_OP_TXN, b.data, b.len, &a, &back),
                     0);
    assert_int_equal(back.revision, 9);
    assert_true(back.u.txn.succeeded);
    assert_int_equal(back.u.txn.n_responses, 2);
    assert_int_equal(back.u.txn.responses[0].type, MS_OP_RANGE);
    assert_int_equal(back.u.txn.responses[0].u.range.n_kvs, 2);
    assert_int_equal(back.u.txn.responses[0].u.range.count, 5);
    assert_true(back.u.txn.responses[0].u.range.more);
    assert_memory_equal(back.u.txn.responses[0].u.range.kvs[0].value.data, "1",
                        1);
    assert_int_equal(back.u.txn.responses[0].u.range.kvs[1].lease, 7);
    assert_int_equal(back.u.txn.responses[1].type, MS_OP_PUT);
    assert_true(back.u.txn.responses[1].u.put.has_prev);
    assert_int_equal(back.u.txn.responses[1].u.put.prev_kv.mod_revision, 3);
    ms_buf_free(&b);
    ms_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_sha256_million),
        cmocka_unit_test(test_grpc_timeout),
        cmocka_unit_test(test_grpc_pct_encode),
        cmocka_unit_test(test_decode_txn),
        cmocka_unit_test(test_decode_bad),
        cmocka_unit_test(test_result_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
