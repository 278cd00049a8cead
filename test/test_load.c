/* test_load.c - the load generator (histogram, keys and values, op names,
 * metrics parsing, runs against a fake HTTP server in a thread) and the
 * tuner's settings, recommendation rule, plot and local cluster. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <uv.h>

#include "bench/load.h"
#include "bench/tune.h"
#include "http/server.h"
#include "util/base64.h"
#include "util/error.h"

/* --- histogram ------------------------------------------------------------ */

/* Small values have exact buckets; every larger value lands in a bucket
 * whose top is within 1/128 above it, and buckets grow with the value. */
static void test_hist_buckets(void **state)
{
    unsigned prev = 0;

    (void)state;
    for (uint64_t v = 0; v < 256; v++) {
        assert_int_equal(ms_load_hist_bucket(v), v);
        assert_int_equal(ms_load_hist_bucket_high((unsigned)v), v);
    }
    for (uint64_t v = 256; v < (1ull << 40); v = v * 1.37 + 1) {
        unsigned b = ms_load_hist_bucket(v);
        uint64_t hi = ms_load_hist_bucket_high(b);
        assert_true(b >= prev);
        assert_true(b < MS_LOAD_HIST_BUCKETS);
        assert_true(hi >= v);
        assert_true((double)(hi - v) <= (double)v / 128.0);
        /* the value just above the top starts the next bucket */
        assert_int_equal(ms_load_hist_bucket(hi + 1), b + 1);
        prev = b;
    }
    assert_true(ms_load_hist_bucket(UINT64_MAX) < MS_LOAD_HIST_BUCKETS);
    assert_true(ms_load_hist_bucket_high(ms_load_hist_bucket(UINT64_MAX)) ==
                UINT64_MAX);
}

/* Percentiles are nearest-rank within the bucket error; min, max and the
 * average are exact; merging adds the samples; empty gives zeros. */
static void test_hist_percentiles(void **state)
{
    struct ms_load_hist *h = calloc(1, sizeof(*h)), *g = calloc(1, sizeof(*g));
    struct ms_load_latency l;

    (void)state;
    assert_non_null(h);
    assert_non_null(g);
    for (uint64_t i = 1; i <= 1000; i++)
        ms_load_hist_record(h, i * 1000000); /* 1..1000 ms */
    assert_int_equal(h->n, 1000);
    ms_load_hist_summary(h, &l);
    assert_true(l.min == 1.0 && l.max == 1000.0);
    assert_true(fabs(l.avg - 500.5) < 1e-9);
    assert_true(l.p50 >= 500 && l.p50 <= 500 * (1 + 1.0 / 128));
    assert_true(l.p90 >= 900 && l.p90 <= 900 * (1 + 1.0 / 128));
    assert_true(l.p99 >= 990 && l.p99 <= 990 * (1 + 1.0 / 128));
    assert_true(l.p999 >= 999 && l.p999 <= 1000);
    assert_int_equal(ms_load_hist_percentile(h, 100), 1000000000);
    /* one slow sample out of 1000 shows at p99.9 but not at p99 */
    ms_load_hist_record(g, 5000000000ull);
    ms_load_hist_merge(g, h);
    assert_int_equal(g->n, 1001);
    ms_load_hist_summary(g, &l);
    assert_true(l.max == 5000.0);
    assert_true(l.p99 < 1000);
    ms_load_hist_reset(h);
    ms_load_hist_summary(h, &l);
    assert_true(l.avg == 0 && l.p50 == 0 && l.max == 0);
    assert_int_equal(ms_load_hist_percentile(h, 50), 0);
    free(h);
    free(g);
}

/* --- keys, values, parsing ---------------------------------------------- */

/* Keys are the prefix and the zero-padded index, key_size bytes in all;
 * an index or prefix that does not fit gives 0. */
static void test_key_format(void **state)
{
    char k[64];

    (void)state;
    assert_int_equal(ms_load_key(k, sizeof(k), "load/", 16, 49), 16);
    assert_string_equal(k, "load/00000000049");
    assert_int_equal(ms_load_key(k, sizeof(k), "", 3, 999), 3);
    assert_string_equal(k, "999");
    assert_int_equal(ms_load_key(k, sizeof(k), "", 3, 1000), 0);
    assert_string_equal(k, "");
    assert_int_equal(ms_load_key(k, sizeof(k), "abc", 3, 0), 0);
    assert_int_equal(ms_load_key(k, 10, "load/", 16, 49), 0);
}

/* A value carries its sequence number and bytes of its key: the check
 * reads the number back and refuses another key's value, a changed byte
 * or a wrong length; short values depend on the key only. */
static void test_value_check(void **state)
{
    uint8_t a[300], b[300], *big = malloc(5000);
    uint64_t seq;

    (void)state;
    ms_load_value(a, 12, 7, 1732550000123456ull);
    for (size_t i = 0; i < 12; i++)
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
                               "vwxyz0123456789+/",
                               a[i]));
    assert_int_equal(ms_load_value_check(a, 12, 12, 7, &seq), 0);
    assert_int_equal(seq, 1732550000123456ull);
    assert_int_equal(ms_load_value_check(a, 12, 12, 8, &seq), MS_EMALFORMED);
    assert_int_equal(ms_load_value_check(a, 11, 12, 7, &seq), MS_EMALFORMED);
    a[11] ^= 1;
    assert_int_equal(ms_load_value_check(a, 12, 12, 7, &seq), MS_EMALFORMED);
    /* the sequence part of a value of another seq of the same key */
    ms_load_value(a, 300, 7, 5);
    ms_load_value(b, 300, 7, 6);
    assert_memory_not_equal(a, b, 10);
    assert_memory_not_equal(a + 10, b + 10, 290);
    memcpy(b, a, 10); /* seq 5's number on seq 6's bytes */
    assert_int_equal(ms_load_value_check(b, 300, 300, 7, &seq), MS_EMALFORMED);
    assert_int_equal(ms_load_value_check(a, 300, 300, 7, &seq), 0);
    assert_int_equal(seq, 5);
    /* short values: a function of the key */
    ms_load_value(a, 4, 3, 99);
    ms_load_value(b, 4, 3, 100);
    assert_memory_equal(a, b, 4);
    assert_int_equal(ms_load_value_check(a, 4, 4, 3, &seq), 0);
    assert_int_equal(seq, 0);
    /* long values are checked to the last byte */
    assert_non_null(big);
    ms_load_value(big, 5000, 1, 2);
    assert_int_equal(ms_load_value_check(big, 5000, 5000, 1, &seq), 0);
    big[4999] = big[4999] == 'A' ? 'B' : 'A';
    assert_int_equal(ms_load_value_check(big, 5000, 5000, 1, &seq),
                     MS_EMALFORMED);
    free(big);
}

/* Only the exact unlabelled sample name counts, not HELP, labels or a
 * longer name with the same start. */
static void test_metric_value(void **state)
{
    static const char text[] =
        "# HELP metastore_batch_ops_proposed_total Ops.\n"
        "# TYPE metastore_batch_ops_proposed_total counter\n"
        "metastore_batch_ops_proposed_total_extra 5\n"
        "metastore_batch_ops_proposed_total{x=\"1\"} 6\n"
        "metastore_batch_ops_proposed_total 1234\n"
        "metastore_batch_entries_proposed_total 1.5e+03";
    double v = 0;

    (void)state;
    assert_int_equal(ms_load_metric_value(text, strlen(text),
                                          "metastore_batch_ops_proposed_total",
                                          &v),
                     0);
    assert_true(v == 1234);
    assert_int_equal(
        ms_load_metric_value(text, strlen(text),
                             "metastore_batch_entries_proposed_total", &v),
        0);
    assert_true(v == 1500);
    assert_int_equal(ms_load_metric_value(text, strlen(text),
                                          "metastore_batch_inflight", &v),
                     MS_ENOTFOUND);
}

/* Numbers, seconds and lists are parsed strictly. */
static void test_parse_helpers(void **state)
{
    uint64_t u;
    double d;
    char buf[64];
    const char *items[4];
    size_t n;

    (void)state;
    assert_int_equal(ms_load_parse_u64("50", 1, 100, &u), 0);
    assert_int_equal(u, 50);
    assert_int_equal(ms_load_parse_u64("0", 1, 100, &u), MS_EINVAL);
    assert_int_equal(ms_load_parse_u64("101", 1, 100, &u), MS_EINVAL);
    assert_int_equal(ms_load_parse_u64("5x", 1, 100, &u), MS_EINVAL);
    assert_int_equal(ms_load_parse_u64("-5", 0, 100, &u), MS_EINVAL);
    assert_int_equal(ms_load_parse_u64("", 0, 100, &u), MS_EINVAL);
    assert_int_equal(ms_load_parse_seconds("0.5", 10, &d), 0);
    assert_true(d == 0.5);
    assert_int_equal(ms_load_parse_seconds("0", 10, &d), MS_EINVAL);
    assert_int_equal(ms_load_parse_seconds("11", 10, &d), MS_EINVAL);
    assert_int_equal(ms_load_parse_seconds("nan", 10, &d), MS_EINVAL);
    assert_int_equal(ms_load_parse_seconds("1s", 10, &d), MS_EINVAL);
    assert_int_equal(
        ms_load_split_list("a,bb,c", buf, sizeof(buf), items, 4, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(items[1], "bb");
    assert_int_equal(ms_load_split_list("a,,c", buf, sizeof(buf), items, 4, &n),
                     MS_EINVAL);
    assert_int_equal(
        ms_load_split_list("a,b,c,d,e", buf, sizeof(buf), items, 4, &n),
        MS_EINVAL);
    assert_int_equal(ms_load_split_list("", buf, sizeof(buf), items, 4, &n),
                     MS_EINVAL);
}

/* Op names parse (with the old workload names as aliases) and print back
 * canonically; mixed needs R + W = 100; putget sends two requests. */
static void test_op_names(void **state)
{
    static const struct {
        const char *in, *out;
        enum ms_load_op op;
        unsigned pct;
    } ok[] = {
        {"put", "put", MS_LOAD_OP_PUT, 0},
        {"range", "range", MS_LOAD_OP_RANGE, 100},
        {"get", "range", MS_LOAD_OP_RANGE, 100},
        {"txn", "txn", MS_LOAD_OP_TXN, 0},
        {"putget", "putget", MS_LOAD_OP_PUTGET, 50},
        {"mixed", "mixed:80/20", MS_LOAD_OP_MIXED, 80},
        {"mixed:70/30", "mixed:70/30", MS_LOAD_OP_MIXED, 70},
        {"mixed:0/100", "mixed:0/100", MS_LOAD_OP_MIXED, 0},
    };
    static const char *const bad[] = {"PUT",        "mixed:80/30", "mixed:",
                                      "mixed:a/b",  "mixed:80",    "mixed:-1/101",
                                      "mixed:80/20x", ""};
    enum ms_load_op op;
    unsigned pct;
    enum ms_load_api a;
    char name[32];

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(ms_load_parse_op(ok[i].in, &op, &pct), 0);
        assert_int_equal(op, ok[i].op);
        assert_int_equal(pct, ok[i].pct);
        assert_string_equal(ms_load_op_name(op, pct, name, sizeof(name)),
                            ok[i].out);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ms_load_parse_op(bad[i], &op, &pct), MS_EINVAL);
    assert_int_equal(ms_load_parse_api("rest", &a), 0);
    assert_int_equal(a, MS_LOAD_API_REST);
    assert_int_equal(ms_load_parse_api("grpc", &a), 0);
    assert_int_equal(a, MS_LOAD_API_GRPC);
    assert_string_equal(ms_load_api_name(a), "grpc");
    assert_int_equal(ms_load_parse_api("v2", &a), MS_EINVAL);
    assert_int_equal(ms_load_requests_per_op(MS_LOAD_OP_PUTGET), 2);
    assert_int_equal(ms_load_requests_per_op(MS_LOAD_OP_MIXED), 1);
}

/* The defaults are the LargeScale scenario; the check names the bad
 * field. */
static void test_config_check(void **state)
{
    struct ms_load_config c;
    char err[MS_ERRMSG_SIZE];

    (void)state;
    ms_load_config_default(&c);
    assert_int_equal(c.clients, 50);
    assert_int_equal(c.total, 50000);
    assert_int_equal(c.op, MS_LOAD_OP_PUTGET);
    assert_int_equal(c.value_size, 12);
    assert_false(c.serializable);
    assert_int_equal(ms_load_config_check(&c, err, sizeof(err)), MS_EINVAL);
    assert_non_null(strstr(err, "endpoints"));
    c.endpoints[0] = "https://127.0.0.1:1";
    c.n_endpoints = 1;
    assert_int_equal(ms_load_config_check(&c, err, sizeof(err)), MS_EINVAL);
    assert_non_null(strstr(err, "https"));
    c.endpoints[0] = "http://127.0.0.1:1";
    assert_int_equal(ms_load_config_check(&c, err, sizeof(err)), 0);
    c.conns = 51;
    assert_int_equal(ms_load_config_check(&c, err, sizeof(err)), MS_EINVAL);
    assert_non_null(strstr(err, "conns"));
    c.conns = 2;
    c.threads = 3;
    assert_int_equal(ms_load_config_check(&c, err, sizeof(err)), MS_EINVAL);
    assert_non_null(strstr(err, "threads"));
    c.threads = 2;
    c.key_size = 8; /* "load/" and 4 digits for 10000 keys do not fit */
    assert_int_equal(ms_load_config_check(&c, err, sizeof(err)), MS_EINVAL);
    assert_non_null(strstr(err, "key-size"));
    c.key_space = 1000;
    assert_int_equal(ms_load_config_check(&c, err, sizeof(err)), 0);
    c.key_space = MS_LOAD_MAX_KEY_SPACE + 1;
    assert_int_equal(ms_load_config_check(&c, err, sizeof(err)), MS_EINVAL);
    assert_non_null(strstr(err, "key-space"));
    c.key_space = 1000;
    c.total = 0;
    c.duration_s = 0;
    assert_int_equal(ms_load_config_check(&c, err, sizeof(err)), MS_EINVAL);
    assert_non_null(strstr(err, "duration"));
    c.duration_s = 1;
    c.op = MS_LOAD_OP_TXN;
    c.api = MS_LOAD_API_REST;
    assert_int_equal(ms_load_config_check(&c, err, sizeof(err)), MS_EINVAL);
    assert_non_null(strstr(err, "txn"));
    c.api = MS_LOAD_API_GRPC; /* txn maps to KV.Txn */
    assert_int_equal(ms_load_config_check(&c, err, sizeof(err)), 0);
    c.api = (enum ms_load_api)3;
    assert_int_equal(ms_load_config_check(&c, err, sizeof(err)), MS_EINVAL);
    assert_non_null(strstr(err, "api"));
    c.api = MS_LOAD_API_REST;
    c.clients = 0;
    assert_int_equal(ms_load_config_check(&c, err, sizeof(err)), MS_EINVAL);
    assert_non_null(strstr(err, "clients"));
}

/* --- a fake server ----------------------------------------------------------
 */

#define FAKE_KEYS 4096

struct fake {
    pthread_t thread;
    uv_loop_t loop;
    uv_async_t stop;
    struct ms_http_server http;
    int port;
    /* state, loop thread only while running */
    char *keys[FAKE_KEYS];
    struct ms_buf vals[FAKE_KEYS], prev[FAKE_KEYS];
    size_t n_keys;
    uint64_t puts, txns, gets, ser_gets, entries, metrics;
    unsigned max_conns;
    unsigned fail_every; /* answer every Nth put with 503 (0: never) */
    bool corrupt;        /* gets answer a wrong value */
    bool stale;          /* gets answer the value before the last put */
    bool txn_fail;       /* txns answer "succeeded": false */
    bool no_metrics;
};

static struct ms_buf *fake_slot(struct fake *f, const char *key, bool create,
                                struct ms_buf **prev)
{
    for (size_t i = 0; i < f->n_keys; i++)
        if (strcmp(f->keys[i], key) == 0) {
            if (prev)
                *prev = &f->prev[i];
            return &f->vals[i];
        }
    if (!create || f->n_keys == FAKE_KEYS)
        return NULL;
    f->keys[f->n_keys] = strdup(key);
    if (prev)
        *prev = &f->prev[f->n_keys];
    return &f->vals[f->n_keys++];
}

/* Extracts base64 field name of a flat JSON body into out (decoded). */
static bool json_b64(const struct ms_http_request *req, const char *name,
                     char *out, size_t size)
{
    char tag[32];
    const char *p, *e;
    size_t n;

    snprintf(tag, sizeof(tag), "\"%s\":\"", name);
    p = strstr((const char *)req->body, tag);
    if (p == NULL)
        return false;
    p += strlen(tag);
    e = strchr(p, '"');
    if (e == NULL || (size_t)(e - p) / 4 * 3 >= size)
        return false;
    if (ms_base64_decode((uint8_t *)out, &n, p, (size_t)(e - p)) != 0)
        return false;
    out[n] = '\0';
    return true;
}

static void fake_put(struct fake *f, struct ms_http_request *req,
                     const char *key, const void *val, size_t len, int kind)
{
    struct ms_buf *slot, *prev = NULL;
    static const char ok_v3[] = "{\"header\":{\"revision\":\"7\"}}";
    static const char ok_txn[] =
        "{\"header\":{\"revision\":\"7\"},\"succeeded\":true}";
    static const char no_txn[] = "{\"header\":{\"revision\":\"7\"}}";
    static const char ok_rest[] = "{\"revision\":7}\n";

    f->puts++;
    if (f->fail_every && f->puts % f->fail_every == 0) {
        ms_http_respond(req, 503, "application/json", "{\"error\":\"x\"}", 13);
        return;
    }
    slot = fake_slot(f, key, true, &prev);
    if (slot == NULL) { /* full: no cmocka asserts off the main thread */
        ms_http_respond(req, 507, "text/plain", "full\n", 5);
        return;
    }
    f->entries += f->puts % 2; /* two ops per entry */
    ms_buf_reset(prev);
    ms_buf_append(prev, slot->data, slot->len);
    ms_buf_reset(slot);
    ms_buf_append(slot, val, len);
    if (kind == 1)
        ms_http_respond(req, 200, "application/json", ok_v3,
                        sizeof(ok_v3) - 1);
    else if (kind == 2 && f->txn_fail)
        ms_http_respond(req, 200, "application/json", no_txn,
                        sizeof(no_txn) - 1);
    else if (kind == 2)
        ms_http_respond(req, 200, "application/json", ok_txn,
                        sizeof(ok_txn) - 1);
    else
        ms_http_respond(req, 200, "application/json", ok_rest,
                        sizeof(ok_rest) - 1);
}

static void fake_get(struct fake *f, struct ms_http_request *req,
                     const char *key, bool v3)
{
    struct ms_buf *prev = NULL, *slot = fake_slot(f, key, false, &prev);
    struct ms_buf b = MS_BUF_INIT;
    uint8_t wrong[] = "wrongwrongwrong";
    const uint8_t *v = slot ? slot->data : NULL;
    size_t len = slot ? slot->len : 0;

    f->gets++;
    if (f->corrupt && slot)
        v = wrong, len = len < sizeof(wrong) - 1 ? len : sizeof(wrong) - 1;
    if (f->stale && slot) {
        v = prev->len ? prev->data : NULL;
        len = prev->len;
    }
    if (!v3) {
        if (v == NULL)
            ms_http_respond(req, 404, "text/plain", "not found\n", 10);
        else
            ms_http_respond(req, 200, "application/octet-stream", v, len);
        return;
    }
    ms_buf_puts(&b, "{\"header\":{\"revision\":\"7\"}");
    if (v) {
        ms_buf_puts(&b, ",\"kvs\":[{\"key\":\"");
        ms_base64_encode(&b, (const uint8_t *)key, strlen(key));
        ms_buf_puts(&b, "\",\"value\":\"");
        ms_base64_encode(&b, v, len);
        ms_buf_puts(&b, "\"}],\"count\":\"1\"");
    }
    ms_buf_puts(&b, "}");
    ms_http_respond(req, 200, "application/json", b.data, b.len);
    ms_buf_free(&b);
}

static bool path_is(const struct ms_http_request *req, const char *p)
{
    return req->path_len == strlen(p) && memcmp(req->path, p, req->path_len) == 0;
}

static void fake_on_request(struct ms_http_request *req, void *data)
{
    struct fake *f = data;
    char key[256];
    char val[4096];
    size_t n;

    if (f->http.nconns > f->max_conns)
        f->max_conns = f->http.nconns;
    if (path_is(req, "/metrics")) {
        char body[256];
        int len;
        f->metrics++;
        if (f->no_metrics) {
            ms_http_respond(req, 200, "text/plain", "# nothing\n", 10);
            return;
        }
        len = snprintf(
            body, sizeof(body),
            "metastore_batch_entries_proposed_total %llu\n"
            "metastore_batch_ops_proposed_total %llu\n",
            (unsigned long long)f->entries,
            (unsigned long long)(f->puts - (f->fail_every
                                                ? f->puts / f->fail_every
                                                : 0)));
        ms_http_respond(req, 200, "text/plain", body, (size_t)len);
    } else if (path_is(req, "/v3/kv/put") || path_is(req, "/v3/kv/txn")) {
        bool txn = path_is(req, "/v3/kv/txn");
        if (!json_b64(req, "key", key, sizeof(key)) ||
            !json_b64(req, "value", val, sizeof(val)) ||
            (txn && strstr((const char *)req->body,
                           "\"success\":[{\"request_put\":{") == NULL))
            ms_http_respond(req, 400, "text/plain", "bad\n", 4);
        else {
            f->txns += txn;
            fake_put(f, req, key, val, strlen(val), txn ? 2 : 1);
        }
    } else if (path_is(req, "/v3/kv/range")) {
        if (!json_b64(req, "key", key, sizeof(key))) {
            ms_http_respond(req, 400, "text/plain", "bad\n", 4);
            return;
        }
        if (strstr((const char *)req->body, "\"serializable\":true"))
            f->ser_gets++;
        fake_get(f, req, key, true);
    } else if (req->path_len > 4 && memcmp(req->path, "/kv/", 4) == 0) {
        if (req->path_len - 4 >= sizeof(key) ||
            ms_http_pct_decode(req->path + 4, req->path_len - 4, 0,
                               (uint8_t *)key, &n) != 0) {
            ms_http_respond(req, 400, "text/plain", "bad\n", 4);
            return;
        }
        key[n] = '\0';
        if (strcmp(req->method, "PUT") == 0) {
            fake_put(f, req, key, req->body, req->body_len, 0);
        } else {
            struct ms_buf q = MS_BUF_INIT;
            if (ms_http_request_query(req, "consistency", &q) == 0)
                f->ser_gets++;
            ms_buf_free(&q);
            fake_get(f, req, key, false);
        }
    } else {
        ms_http_respond(req, 404, "text/plain", "no\n", 3);
    }
}

static void fake_on_stop(uv_async_t *a)
{
    struct fake *f = a->data;

    ms_http_server_close(&f->http, NULL);
    uv_close((uv_handle_t *)&f->stop, NULL);
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;

    uv_run(&f->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void fake_start(struct fake *f)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(
        ms_http_server_init(&f->http, &f->loop, NULL, fake_on_request), 0);
    f->http.data = f;
    assert_int_equal(ms_http_server_listen(&f->http, "127.0.0.1:0"), 0);
    f->port = ms_http_server_port(&f->http);
    uv_async_init(&f->loop, &f->stop, fake_on_stop);
    f->stop.data = f;
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
    uv_async_send(&f->stop);
    pthread_join(f->thread, NULL);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* Frees the fake's keys and values (after fake_stop). */
static void fake_free(struct fake *f)
{
    for (size_t i = 0; i < f->n_keys; i++) {
        free(f->keys[i]);
        ms_buf_free(&f->vals[i]);
        ms_buf_free(&f->prev[i]);
    }
}

static void fake_config(struct fake *f, struct ms_load_config *c, char *url,
                        size_t size)
{
    snprintf(url, size, "http://127.0.0.1:%d", f->port);
    ms_load_config_default(c);
    c->endpoints[0] = url;
    c->n_endpoints = 1;
    c->clients = 4;
    c->total = 100;
    c->request_timeout_ms = 5000;
}

static bool has(const struct ms_buf *js, const char *s)
{
    return memmem(js->data, js->len, s, strlen(s)) != NULL;
}

/* putget: 2 requests per op, keys of the key space written in order then
 * read back; the batch counters' deltas give ops per entry; the JSON
 * carries the counts and the flat latency fields. */
static void test_run_putget(void **state)
{
    struct fake f;
    struct ms_load_config c;
    struct ms_load_result r;
    struct ms_buf js = MS_BUF_INIT;
    char url[64], err[MS_ERRMSG_SIZE];

    (void)state;
    fake_start(&f);
    fake_config(&f, &c, url, sizeof(url));
    assert_int_equal(ms_load_run(&c, &r, err, sizeof(err)), 0);
    fake_stop(&f);
    assert_int_equal(r.ops, 100);
    assert_int_equal(r.requests, 200);
    assert_int_equal(r.reads, 100);
    assert_int_equal(r.writes, 100);
    assert_int_equal(r.errors, 0);
    assert_int_equal(f.puts, 100);
    assert_int_equal(f.gets, 100);
    assert_int_equal(f.ser_gets, 0);
    assert_int_equal(f.n_keys, 100);
    assert_non_null(fake_slot(&f, "load/00000000000", false, NULL));
    assert_non_null(fake_slot(&f, "load/00000000099", false, NULL));
    assert_int_equal(fake_slot(&f, "load/00000000099", false, NULL)->len, 12);
    assert_true(r.have_metrics);
    assert_int_equal(r.proposed_ops, 100);
    assert_int_equal(r.entries, 50);
    assert_true(r.ops_per_entry == 2.0);
    assert_true(r.entries_per_sec > 0);
    assert_true(r.latency.p50 > 0 && r.latency.p50 <= r.latency.p90 &&
                r.latency.p90 <= r.latency.p99 &&
                r.latency.p99 <= r.latency.p999 &&
                r.latency.p999 <= r.latency.max);
    assert_true(r.ops_per_sec > 0 && r.duration_s > 0);
    assert_int_equal(ms_load_result_json(&c, &r, &js), 0);
    assert_true(has(&js, "\"ops\":100,"));
    assert_true(has(&js, "\"requests\":200,"));
    assert_true(has(&js, "\"errors\":0,"));
    assert_true(has(&js, "\"ops_per_entry\":2}"));
    assert_true(has(&js, "\"op\":\"putget\""));
    assert_true(has(&js, "\"consistency\":\"l\""));
    assert_true(has(&js, "\"p999_ms\":"));
    assert_true(has(&js, "\"max_ms\":"));
    assert_true(has(&js, "\"duration_s\":"));
    ms_buf_free(&js);
    fake_free(&f);
}

/* The REST API writes raw values under the escaped key; a special
 * character in the prefix survives the round trip; serializable gets ask
 * for it in the query. */
static void test_run_rest(void **state)
{
    struct fake f;
    struct ms_load_config c;
    struct ms_load_result r;
    char url[64], err[MS_ERRMSG_SIZE];

    (void)state;
    fake_start(&f);
    fake_config(&f, &c, url, sizeof(url));
    c.api = MS_LOAD_API_REST;
    c.key_prefix = "a b%/";
    c.key_size = 10;
    c.value_size = 100;
    c.serializable = true;
    assert_int_equal(ms_load_run(&c, &r, err, sizeof(err)), 0);
    fake_stop(&f);
    assert_int_equal(r.ops, 100);
    assert_int_equal(r.errors, 0);
    assert_int_equal(f.ser_gets, 100);
    assert_non_null(fake_slot(&f, "a b%/00000", false, NULL));
    assert_int_equal(fake_slot(&f, "a b%/00099", false, NULL)->len, 100);
    fake_free(&f);
}

/* range and mixed write the whole key space first (not counted), then
 * read random keys; mixed:50/50 writes about half the time. */
static void test_run_range_mixed(void **state)
{
    struct fake f;
    struct ms_load_config c;
    struct ms_load_result r;
    char url[64], err[MS_ERRMSG_SIZE];

    (void)state;
    fake_start(&f);
    fake_config(&f, &c, url, sizeof(url));
    c.op = MS_LOAD_OP_RANGE;
    c.key_space = 50;
    assert_int_equal(ms_load_run(&c, &r, err, sizeof(err)), 0);
    assert_int_equal(r.ops, 100);
    assert_int_equal(r.reads, 100);
    assert_int_equal(r.errors, 0);
    assert_int_equal(r.preloaded, 50);
    assert_int_equal(r.proposed_ops, 0); /* the preload is not counted */
    assert_int_equal(f.gets, 100);
    assert_int_equal(f.puts, 50);
    assert_int_equal(f.n_keys, 50);
    c.op = MS_LOAD_OP_MIXED;
    c.read_pct = 50;
    c.total = 800;
    assert_int_equal(ms_load_run(&c, &r, err, sizeof(err)), 0);
    fake_stop(&f);
    assert_int_equal(r.ops, 800);
    assert_int_equal(r.errors, 0);
    assert_int_equal(r.reads + r.writes, 800);
    assert_true(r.writes > 300 && r.writes < 500);
    assert_int_equal(r.proposed_ops, r.writes);
    fake_free(&f);
}

/* txn sends a compare and a request_put and needs "succeeded": true. */
static void test_run_txn(void **state)
{
    struct fake f;
    struct ms_load_config c;
    struct ms_load_result r;
    char url[64], err[MS_ERRMSG_SIZE];

    (void)state;
    fake_start(&f);
    fake_config(&f, &c, url, sizeof(url));
    c.op = MS_LOAD_OP_TXN;
    assert_int_equal(ms_load_run(&c, &r, err, sizeof(err)), 0);
    assert_int_equal(r.ops, 100);
    assert_int_equal(r.errors, 0);
    assert_int_equal(f.txns, 100);
    f.txn_fail = true;
    c.total = 10;
    assert_int_equal(ms_load_run(&c, &r, err, sizeof(err)), 0);
    fake_stop(&f);
    assert_int_equal(r.ops, 0);
    assert_int_equal(r.errors, 10);
    assert_string_equal(r.error_kinds[0].kind, "txn_failed");
    fake_free(&f);
}

/* Failed requests are counted by kind and never as ops: a 503, a wrong
 * value, and a read older than the put acknowledged before it. */
static void test_run_errors_by_kind(void **state)
{
    struct fake f;
    struct ms_load_config c;
    struct ms_load_result r;
    char url[64], err[MS_ERRMSG_SIZE];

    (void)state;
    fake_start(&f);
    fake_config(&f, &c, url, sizeof(url));
    c.op = MS_LOAD_OP_PUT;
    f.fail_every = 10;
    assert_int_equal(ms_load_run(&c, &r, err, sizeof(err)), 0);
    assert_int_equal(r.ops, 90);
    assert_int_equal(r.errors, 10);
    assert_int_equal(r.n_error_kinds, 1);
    assert_string_equal(r.error_kinds[0].kind, "http_503");
    assert_int_equal(r.error_kinds[0].count, 10);
    assert_non_null(strstr(r.first_error, "http_503"));
    /* a wrong value read back */
    f.fail_every = 0;
    f.corrupt = true;
    c.op = MS_LOAD_OP_PUTGET;
    c.clients = 1;
    c.total = 3;
    assert_int_equal(ms_load_run(&c, &r, err, sizeof(err)), 0);
    assert_int_equal(r.ops, 0);
    assert_int_equal(r.errors, 3);
    assert_string_equal(r.error_kinds[0].kind, "bad_value");
    /* the previous value (or none) after a put was acknowledged */
    f.corrupt = false;
    f.stale = true;
    c.total = 4;
    assert_int_equal(ms_load_run(&c, &r, err, sizeof(err)), 0);
    assert_int_equal(r.ops, 0);
    assert_int_equal(r.errors, 4);
    assert_string_equal(r.error_kinds[0].kind, "stale_read");
    /* serializable reads are not held to it */
    c.serializable = true;
    assert_int_equal(ms_load_run(&c, &r, err, sizeof(err)), 0);
    fake_stop(&f);
    assert_int_equal(r.errors, 0);
    assert_int_equal(r.ops, 4);
    fake_free(&f);
}

/* Clients share the connections they are given, across threads. */
static void test_run_conns_threads(void **state)
{
    struct fake f;
    struct ms_load_config c;
    struct ms_load_result r;
    char url[64], err[MS_ERRMSG_SIZE];

    (void)state;
    fake_start(&f);
    fake_config(&f, &c, url, sizeof(url));
    c.clients = 8;
    c.conns = 2;
    c.threads = 2;
    c.total = 400;
    assert_int_equal(ms_load_run(&c, &r, err, sizeof(err)), 0);
    fake_stop(&f);
    assert_int_equal(r.ops, 400);
    assert_int_equal(r.errors, 0);
    assert_int_equal(f.puts, 400);
    /* 2 load connections, and at most one more for /metrics closing */
    assert_true(f.max_conns >= 2 && f.max_conns <= 3);
    fake_free(&f);
}

/* A worker whose clients all find the preload done at their first op
 * (here: one key, four workers of one client) ends its phase before its
 * loop runs; its next phase still runs every op it starts to the end. */
static void test_run_preload_done_early(void **state)
{
    struct fake f;
    struct ms_load_config c;
    struct ms_load_result r;
    char url[64], err[MS_ERRMSG_SIZE];

    (void)state;
    fake_start(&f);
    fake_config(&f, &c, url, sizeof(url));
    c.clients = 4;
    c.conns = 4;
    c.threads = 4;
    c.key_space = 1;
    c.op = MS_LOAD_OP_RANGE;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ms_load_run(&c, &r, err, sizeof(err)), 0);
        assert_true(r.preloaded >= 1);
        assert_int_equal(r.ops, 100);
        assert_int_equal(r.reads, 100);
        assert_int_equal(r.errors, 0);
    }
    fake_stop(&f);
    assert_int_equal(f.gets, 300);
    fake_free(&f);
}

/* A duration run stops on time; without batch counters ops/entry is
 * unknown and the JSON says null. */
static void test_run_duration_no_metrics(void **state)
{
    struct fake f;
    struct ms_load_config c;
    struct ms_load_result r;
    struct ms_buf js = MS_BUF_INIT;
    char url[64], err[MS_ERRMSG_SIZE];

    (void)state;
    fake_start(&f);
    f.no_metrics = true;
    fake_config(&f, &c, url, sizeof(url));
    c.op = MS_LOAD_OP_RANGE;
    c.key_space = 20;
    c.total = 0;
    c.duration_s = 0.2;
    assert_int_equal(ms_load_run(&c, &r, err, sizeof(err)), 0);
    fake_stop(&f);
    assert_true(r.ops > 0);
    assert_true(r.duration_s >= 0.2 && r.duration_s < 2);
    assert_false(r.have_metrics);
    assert_int_equal(ms_load_result_json(&c, &r, &js), 0);
    assert_true(has(&js, "\"ops_per_entry\":null"));
    assert_true(has(&js, "\"entries_per_sec\":null"));
    ms_buf_free(&js);
    fake_free(&f);
}

/* An endpoint nobody listens on fails the run up front with MS_EIO. */
static void test_run_unreachable(void **state)
{
    struct fake f;
    struct ms_load_config c;
    struct ms_load_result r;
    char url[64], err[MS_ERRMSG_SIZE];

    (void)state;
    fake_start(&f);
    fake_config(&f, &c, url, sizeof(url));
    fake_stop(&f); /* the port is free again */
    assert_int_equal(ms_load_run(&c, &r, err, sizeof(err)), MS_EIO);
    assert_non_null(strstr(err, "unreachable"));
    assert_int_equal(r.ops, 0);
    fake_free(&f);
}

/* --- tune ----------------------------------------------------------------- */

/* The default grid is off + 2x2 fixed + 2x3 adaptive in a fixed order;
 * modes and value lists narrow it. */
static void test_tune_grid(void **state)
{
    struct ms_tune_grid g;
    struct ms_tune_setting s[MS_TUNE_MAX_SETTINGS];
    char err[MS_ERRMSG_SIZE];
    size_t n;
    uint64_t v[MS_TUNE_MAX_VALUES];

    (void)state;
    ms_tune_grid_default(&g);
    assert_int_equal(
        ms_tune_grid_settings(&g, s, MS_TUNE_MAX_SETTINGS, &n, err, sizeof(err)),
        0);
    assert_int_equal(n, 11);
    assert_string_equal(s[0].label, "off");
    assert_string_equal(s[1].label, "fixed 100 ops 100us");
    assert_string_equal(s[2].label, "fixed 100 ops 5000us");
    assert_true(s[4].has_max_ops && s[4].max_ops == 256 &&
                s[4].max_delay_us == 5000);
    assert_string_equal(s[5].label, "adaptive 100 ops 1 inflight");
    assert_true(s[10].has_max_inflight && s[10].max_inflight == 16 &&
                s[10].max_ops == 256 && !s[10].has_max_delay);
    assert_int_equal(ms_tune_parse_modes("adaptive,off", &g, err, sizeof(err)),
                     0);
    assert_int_equal(
        ms_tune_grid_settings(&g, s, MS_TUNE_MAX_SETTINGS, &n, err, sizeof(err)),
        0);
    assert_int_equal(n, 7); /* order stays off, fixed, adaptive */
    assert_string_equal(s[0].label, "off");
    assert_int_equal(ms_tune_parse_modes("off,off", &g, err, sizeof(err)),
                     MS_EINVAL);
    assert_non_null(strstr(err, "twice"));
    assert_int_equal(ms_tune_parse_modes("fast", &g, err, sizeof(err)),
                     MS_EINVAL);
    assert_int_equal(ms_tune_parse_values("1,2,3", 1, 10, v, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(v[2], 3);
    assert_int_equal(ms_tune_parse_values("1,20", 1, 10, v, &n), MS_EINVAL);
    assert_int_equal(ms_tune_parse_values("1,2,3,4,5,6,7,8,9", 1, 10, v, &n),
                     MS_EINVAL);
    ms_tune_grid_default(&g);
    assert_int_equal(ms_tune_grid_settings(&g, s, 5, &n, err, sizeof(err)),
                     MS_EINVAL);
    g.off = g.fixed = g.adaptive = false;
    assert_int_equal(
        ms_tune_grid_settings(&g, s, MS_TUNE_MAX_SETTINGS, &n, err, sizeof(err)),
        MS_EINVAL);
}

/* Explicit settings parse into the fields they name. */
static void test_tune_parse_setting(void **state)
{
    struct ms_tune_setting s;
    char err[MS_ERRMSG_SIZE];

    (void)state;
    assert_int_equal(ms_tune_parse_setting("off", &s, err, sizeof(err)), 0);
    assert_string_equal(s.mode, "off");
    assert_false(s.has_max_ops);
    assert_int_equal(
        ms_tune_parse_setting("fixed:10/100", &s, err, sizeof(err)), 0);
    assert_string_equal(s.label, "fixed 10 ops 100us");
    assert_true(s.has_max_ops && s.max_ops == 10 && s.max_delay_us == 100);
    assert_int_equal(
        ms_tune_parse_setting("adaptive:256/4", &s, err, sizeof(err)), 0);
    assert_true(s.has_max_inflight && s.max_inflight == 4 && s.max_ops == 256);
    assert_int_equal(ms_tune_parse_setting("adaptive", &s, err, sizeof(err)),
                     0);
    assert_false(s.has_max_ops || s.has_max_inflight);
    assert_int_equal(ms_tune_parse_setting("fixed:10", &s, err, sizeof(err)),
                     MS_EINVAL);
    assert_int_equal(
        ms_tune_parse_setting("adaptive:1/0", &s, err, sizeof(err)),
        MS_EINVAL);
    assert_int_equal(ms_tune_parse_setting("turbo", &s, err, sizeof(err)),
                     MS_EINVAL);
    assert_non_null(strstr(err, "turbo"));
}

/* GET /admin/batch parses; a setting overrides only its own fields; the
 * PUT body carries every field. */
static void test_tune_batch_json(void **state)
{
    static const char get[] = "{\"mode\":\"adaptive\",\"max_ops\":256,"
                              "\"max_bytes\":1048576,\"max_delay_us\":1000,"
                              "\"max_inflight\":4}\n";
    struct ms_tune_batch b, o;
    struct ms_tune_setting s;
    struct ms_buf out = MS_BUF_INIT;
    char err[MS_ERRMSG_SIZE];

    (void)state;
    assert_int_equal(
        ms_tune_batch_parse(get, strlen(get), &b, err, sizeof(err)), 0);
    assert_string_equal(b.mode, "adaptive");
    assert_int_equal(b.max_bytes, 1048576);
    ms_tune_parse_setting("fixed:10/100", &s, err, sizeof(err));
    ms_tune_apply(&b, &s, &o);
    assert_string_equal(o.mode, "fixed");
    assert_int_equal(o.max_ops, 10);
    assert_int_equal(o.max_delay_us, 100);
    assert_int_equal(o.max_inflight, 4);
    ms_tune_parse_setting("adaptive:64/16", &s, err, sizeof(err));
    ms_tune_apply(&b, &s, &o);
    assert_int_equal(o.max_ops, 64);
    assert_int_equal(o.max_inflight, 16);
    assert_int_equal(o.max_delay_us, 1000);
    assert_int_equal(ms_tune_batch_json(&b, &out), 0);
    ms_buf_putc(&out, '\0');
    assert_string_equal((char *)out.data,
                        "{\"mode\":\"adaptive\",\"max_ops\":256,"
                        "\"max_bytes\":1048576,\"max_delay_us\":1000,"
                        "\"max_inflight\":4}");
    ms_buf_free(&out);
    assert_int_equal(
        ms_tune_batch_parse("{\"mode\":\"off\"}", 14, &b, err, sizeof(err)),
        MS_EMALFORMED);
    assert_non_null(strstr(err, "max_ops"));
    assert_int_equal(ms_tune_batch_parse("[1]", 3, &b, err, sizeof(err)),
                     MS_EMALFORMED);
}

#define P(ops, p99)                                                            \
    {                                                                          \
        true, (ops), (p99) / 2, (p99), 1, 0, 0, 0                              \
    }

/* The fastest setting wins only if its p99 stays within --max-p99 at every
 * client count; best_at names the fastest in bound per client count. */
static void test_recommend_bound(void **state)
{
    /* settings: 0 off, 1 fixed, 2 adaptive; client counts 1, 50 */
    struct ms_tune_point pts[] = {
        P(1000, 2.0),  P(1000, 50.0), /* off: slow tail at 50 */
        P(3000, 10.0), P(9000, 20.0), /* fixed: fast, tail 10 at 1 */
        P(1000, 2.5),  P(8000, 19.0), /* adaptive */
    };
    struct ms_tune_verdict v;

    (void)state;
    assert_int_equal(ms_tune_recommend(pts, 3, 2, 25.0, &v), 0);
    assert_int_equal(v.best, 1);
    assert_true(v.within_bound);
    assert_int_equal(v.misses[0], 1);
    assert_int_equal(v.best_at[0], 1);
    assert_int_equal(v.best_at[1], 1);
    /* score: geometric mean of 1000/3000 and 8000/9000 */
    assert_true(v.score[2] > 0.544 && v.score[2] < 0.545);
    /* a tighter bound rules fixed out at 1 client */
    assert_int_equal(ms_tune_recommend(pts, 3, 2, 5.0, &v), 0);
    assert_false(v.within_bound);
    assert_int_equal(v.best_at[0], 0); /* ties go to the earlier */
    assert_true(v.best_at[1] == SIZE_MAX);
    assert_int_equal(ms_tune_recommend(pts, 3, 2, 22.0, &v), 0);
    assert_true(v.within_bound);
    assert_int_equal(v.best, 1);
    assert_int_equal(ms_tune_recommend(pts, 3, 2, 19.5, &v), 0);
    assert_int_equal(v.best, 2); /* fixed misses at 50 (p99 20) */
    assert_int_equal(ms_tune_recommend(pts, 0, 2, 19.5, &v), MS_EINVAL);
}

/* No setting in bound everywhere: fewest misses, then score; errors and
 * failed points are out of bound. */
static void test_recommend_fallback(void **state)
{
    struct ms_tune_point pts[] = {
        P(1000, 1.0),  P(1000, 100.0), P(1000, 100.0), /* 2 misses */
        P(2000, 50.0), P(2000, 10.0),  P(2000, 100.0), /* 2 misses */
        P(500, 100.0), P(500, 100.0),  P(500, 10.0),   /* 2 misses */
    };
    struct ms_tune_verdict v;

    (void)state;
    assert_int_equal(ms_tune_recommend(pts, 3, 3, 20.0, &v), 0);
    assert_false(v.within_bound);
    assert_int_equal(v.best, 1);
    pts[4].errors = 1; /* the second misses everywhere */
    pts[8].ok = false; /* the third too */
    assert_int_equal(ms_tune_recommend(pts, 3, 3, 20.0, &v), 0);
    assert_int_equal(v.misses[0], 2);
    assert_int_equal(v.misses[1], 3);
    assert_int_equal(v.misses[2], 3);
    assert_int_equal(v.best, 0);
}

/* Medians of odd and even counts. */
static void test_median(void **state)
{
    double a[] = {5, 1, 3}, b[] = {4, 1, 3, 2};

    (void)state;
    assert_true(ms_tune_median(a, 3) == 3);
    assert_true(ms_tune_median(b, 4) == 2.5);
    assert_true(ms_tune_median(NULL, 0) == 0);
}

static size_t count(const struct ms_buf *b, const char *s)
{
    size_t n = 0;
    const uint8_t *p = b->data, *end = b->data + b->len;

    while ((p = memmem(p, (size_t)(end - p), s, strlen(s))) != NULL) {
        n++;
        p++;
    }
    return n;
}

/* The plot is one SVG document with a circle per measured point, a line
 * per setting, escaped labels in the legend and the p99 bound. */
static void test_plot_svg(void **state)
{
    struct ms_tune_point pts[] = {
        P(1000, 0.5), P(5000, 3.0), P(9000, 40.0),
        P(900, 0.6),  P(6000, 2.0), P(0, 0),
    };
    const char *labels[] = {"off", "a<b & \"c\""};
    unsigned clients[] = {1, 50, 256};
    struct ms_buf svg = MS_BUF_INIT;

    (void)state;
    pts[5].ok = false;
    assert_int_equal(ms_tune_plot_svg("t & t", labels, clients, pts, 2, 3, 10,
                                      &svg),
                     0);
    assert_true(svg.len > 0);
    assert_true(memcmp(svg.data, "<?xml", 5) == 0);
    assert_int_equal(count(&svg, "<svg "), 1);
    assert_int_equal(count(&svg, "</svg>"), 1);
    assert_int_equal(count(&svg, "<circle "), 5);
    assert_int_equal(count(&svg, "<polyline "), 2);
    assert_int_equal(count(&svg, "a&lt;b &amp; &quot;c&quot;"), 1 + 2);
    assert_int_equal(count(&svg, "t &amp; t"), 1);
    assert_int_equal(count(&svg, "max p99 10 ms"), 1);
    assert_int_equal(count(&svg, "nan"), 0);
    assert_int_equal(count(&svg, "inf"), 0);
    ms_buf_free(&svg);
    /* nothing measured still gives a valid, empty plot */
    memset(pts, 0, sizeof(pts));
    assert_int_equal(
        ms_tune_plot_svg("empty", labels, clients, pts, 2, 3, 0, &svg), 0);
    assert_int_equal(count(&svg, "<circle "), 0);
    assert_int_equal(count(&svg, "</svg>"), 1);
    assert_int_equal(count(&svg, "nan"), 0);
    ms_buf_free(&svg);
}

/* A server that cannot start fails the cluster start with the member's
 * exit, and leaves no directory behind. */
static void test_cluster_start_fails(void **state)
{
    struct ms_tune_cluster cl;
    char err[MS_ERRMSG_SIZE], dir[256];
    struct stat st;

    (void)state;
    assert_int_equal(ms_tune_cluster_start(&cl, "/nonexistent/server", 1,
                                           "memory", NULL, NULL, 0, 5000, err,
                                           sizeof(err)),
                     MS_EIO);
    assert_non_null(strstr(err, "exited"));
    assert_non_null(strstr(err, "/nonexistent/server"));
    assert_string_equal(cl.dir, "");
    assert_int_equal(cl.pids[0], 0);
    assert_int_equal(ms_tune_cluster_stop(&cl), 0); /* twice is fine */
    assert_int_equal(ms_tune_cluster_start(&cl, "/bin/true", 4, NULL, NULL,
                                           NULL, 0, 5000, err, sizeof(err)),
                     MS_EINVAL);
    snprintf(dir, sizeof(dir), "%s", cl.dir);
    assert_true(dir[0] == '\0' || stat(dir, &st) != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_buckets),
        cmocka_unit_test(test_hist_percentiles),
        cmocka_unit_test(test_key_format),
        cmocka_unit_test(test_value_check),
        cmocka_unit_test(test_metric_value),
        cmocka_unit_test(test_parse_helpers),
        cmocka_unit_test(test_op_names),
        cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_run_putget),
        cmocka_unit_test(test_run_rest),
        cmocka_unit_test(test_run_range_mixed),
        cmocka_unit_test(test_run_txn),
        cmocka_unit_test(test_run_errors_by_kind),
        cmocka_unit_test(test_run_conns_threads),
        cmocka_unit_test(test_run_preload_done_early),
        cmocka_unit_test(test_run_duration_no_metrics),
        cmocka_unit_test(test_run_unreachable),
        cmocka_unit_test(test_tune_grid),
        cmocka_unit_test(test_tune_parse_setting),
        cmocka_unit_test(test_tune_batch_json),
        cmocka_unit_test(test_recommend_bound),
        cmocka_unit_test(test_recommend_fallback),
        cmocka_unit_test(test_median),
        cmocka_unit_test(test_plot_svg),
        cmocka_unit_test(test_cluster_start_fails),
    };
    signal(SIGPIPE, SIG_IGN); /* as the tools do: see ms_load_run */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
