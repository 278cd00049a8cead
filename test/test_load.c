/* test_load.c - the load generator (percentiles, keys and values, metrics
 * parsing, runs against a fake HTTP server in a thread) and the tuner's
 * sweep generation and recommendation rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <uv.h>

#include "bench/load.h"
#include "bench/tune.h"
#include "http/server.h"
#include "util/base64.h"
#include "util/error.h"

/* --- percentiles ---------------------------------------------------------- */

/* Nearest rank: p of 1..100 is p itself; small sets round the rank up. */
static void test_percentile_nearest_rank(void **state)
{
    double v[100], three[3] = {10, 20, 30}, one[1] = {7};

    (void)state;
    for (int i = 0; i < 100; i++)
        v[i] = i + 1;
    assert_true(ms_load_percentile(v, 100, 50) == 50);
    assert_true(ms_load_percentile(v, 100, 90) == 90);
    assert_true(ms_load_percentile(v, 100, 99) == 99);
    assert_true(ms_load_percentile(v, 100, 100) == 100);
    assert_true(ms_load_percentile(v, 100, 0.5) == 1);
    assert_true(ms_load_percentile(three, 3, 50) == 20);
    assert_true(ms_load_percentile(three, 3, 34) == 20);
    assert_true(ms_load_percentile(three, 3, 33) == 10);
    assert_true(ms_load_percentile(three, 3, 99) == 30);
    assert_true(ms_load_percentile(one, 1, 1) == 7);
    assert_true(ms_load_percentile(one, 1, 99) == 7);
    assert_true(ms_load_percentile(NULL, 0, 50) == 0);
}

/* The summary sorts its input and reports avg, percentiles and max. */
static void test_latency_summary(void **state)
{
    double s[10] = {9, 1, 8, 2, 7, 3, 6, 4, 5, 100};
    struct ms_load_latency l;

    (void)state;
    ms_load_latency_summary(s, 10, &l);
    for (int i = 1; i < 10; i++)
        assert_true(s[i - 1] <= s[i]);
    assert_true(l.avg == 14.5);
    assert_true(l.p50 == 5);
    assert_true(l.p90 == 9);
    assert_true(l.p99 == 100);
    assert_true(l.max == 100);
    ms_load_latency_summary(s, 0, &l);
    assert_true(l.avg == 0 && l.p99 == 0 && l.max == 0);
}

/* --- keys, values, parsing ---------------------------------------------- */

/* Keys follow "<prefix>c<client:04>/k<index:08>"; a short buffer gives 0. */
static void test_key_format(void **state)
{
    char k[64];

    (void)state;
    assert_int_equal(ms_load_key(k, sizeof(k), "load/", 3, 49), 20);
    assert_string_equal(k, "load/c0003/k00000049");
    assert_int_equal(ms_load_key(k, sizeof(k), "", 12345, 123456789), 17);
    assert_string_equal(k, "c12345/k123456789");
    assert_int_equal(ms_load_key(k, 10, "load/", 3, 49), 0);
    assert_string_equal(k, "");
}

/* Values are printable, deterministic, and differ by client, key and
 * version. */
static void test_value_deterministic(void **state)
{
    uint8_t a[300], b[300], c[300];

    (void)state;
    ms_load_value(a, sizeof(a), 1, 2, 0);
    ms_load_value(b, sizeof(b), 1, 2, 0);
    assert_memory_equal(a, b, sizeof(a));
    for (size_t i = 0; i < sizeof(a); i++)
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
                               "vwxyz0123456789+/",
                               a[i]));
    ms_load_value(c, sizeof(c), 1, 2, 1);
    assert_memory_not_equal(a, c, 12);
    ms_load_value(c, sizeof(c), 2, 2, 0);
    assert_memory_not_equal(a, c, 12);
    ms_load_value(c, sizeof(c), 1, 3, 0);
    assert_memory_not_equal(a, c, 12);
    /* a shorter value is a prefix of a longer one of the same key */
    ms_load_value(c, 12, 1, 2, 0);
    assert_memory_equal(a, c, 12);
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

/* Workload and API names round-trip; putget sends two requests per op. */
static void test_workload_names(void **state)
{
    enum ms_load_workload w;
    enum ms_load_api a;
    static const char *names[] = {"put", "get", "putget", "mixed"};

    (void)state;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ms_load_parse_workload(names[i], &w), 0);
        assert_string_equal(ms_load_workload_name(w), names[i]);
    }
    assert_int_equal(ms_load_parse_workload("PUT", &w), MS_EINVAL);
    assert_int_equal(ms_load_parse_api("rest", &a), 0);
    assert_int_equal(a, MS_LOAD_API_REST);
    assert_int_equal(ms_load_parse_api("v2", &a), MS_EINVAL);
    assert_int_equal(ms_load_requests_per_op(MS_LOAD_PUTGET), 2);
    assert_int_equal(ms_load_requests_per_op(MS_LOAD_MIXED), 1);
}

/* The config check names the bad field. */
static void test_config_check(void **state)
{
    struct ms_load_config c;
    char err[MS_ERRMSG_SIZE];

    (void)state;
    ms_load_config_default(&c);
    assert_int_equal(c.clients, 50);
    assert_int_equal(c.ops_per_client, 1000);
    assert_int_equal(c.value_size, 12);
    assert_int_equal(ms_load_config_check(&c, err, sizeof(err)), MS_EINVAL);
    assert_non_null(strstr(err, "endpoints"));
    c.endpoints[0] = "https://127.0.0.1:1";
    c.n_endpoints = 1;
    assert_int_equal(ms_load_config_check(&c, err, sizeof(err)), MS_EINVAL);
    assert_non_null(strstr(err, "https"));
    c.endpoints[0] = "http://127.0.0.1:1";
    assert_int_equal(ms_load_config_check(&c, err, sizeof(err)), 0);
    c.clients = 0;
    assert_int_equal(ms_load_config_check(&c, err, sizeof(err)), MS_EINVAL);
    assert_non_null(strstr(err, "clients"));
    c.clients = 1;
    c.ops_per_client = 0;
    c.duration_s = 0;
    assert_int_equal(ms_load_config_check(&c, err, sizeof(err)), MS_EINVAL);
    assert_non_null(strstr(err, "duration"));
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
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool ready;
    /* state, loop thread only while running */
    char *keys[FAKE_KEYS];
    struct ms_buf vals[FAKE_KEYS];
    size_t n_keys;
    uint64_t puts, gets, entries, metrics;
    unsigned fail_every; /* answer every Nth put with 503 (0: never) */
    bool corrupt;        /* gets answer a wrong value */
    bool no_metrics;
};

static struct ms_buf *fake_slot(struct fake *f, const char *key, bool create)
{
    for (size_t i = 0; i < f->n_keys; i++)
        if (strcmp(f->keys[i], key) == 0)
            return &f->vals[i];
    if (!create || f->n_keys == FAKE_KEYS)
        return NULL;
    f->keys[f->n_keys] = strdup(key);
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
                     const char *key, const void *val, size_t len)
{
    struct ms_buf *slot;

    f->puts++;
    if (f->fail_every && f->puts % f->fail_every == 0) {
        ms_http_respond(req, 503, "application/json", "{\"error\":\"x\"}", 13);
        return;
    }
    slot = fake_slot(f, key, true);
    if (slot == NULL) { /* full: no cmocka asserts off the main thread */
        ms_http_respond(req, 507, "text/plain", "full\n", 5);
        return;
    }
    f->entries += f->puts % 2; /* two ops per entry */
    ms_buf_reset(slot);
    ms_buf_append(slot, val, len);
    ms_http_respond(req, 200, "application/json", "{}", 2);
}

static void fake_get(struct fake *f, struct ms_http_request *req,
                     const char *key, bool v3)
{
    struct ms_buf *slot = fake_slot(f, key, false);
    struct ms_buf b = MS_BUF_INIT;
    uint8_t wrong[] = "wrongwrongwrong";
    const uint8_t *v = slot ? slot->data : NULL;
    size_t len = slot ? slot->len : 0;

    f->gets++;
    if (f->corrupt && slot)
        v = wrong, len = len < sizeof(wrong) - 1 ? len : sizeof(wrong) - 1;
    if (!v3) {
        if (slot == NULL)
            ms_http_respond(req, 404, "text/plain", "not found\n", 10);
        else
            ms_http_respond(req, 200, "application/octet-stream", v, len);
        return;
    }
    ms_buf_puts(&b, "{\"header\":{},\"kvs\":[");
    if (slot) {
        ms_buf_puts(&b, "{\"key\":\"\",\"value\":\"");
        ms_base64_encode(&b, v, len);
        ms_buf_puts(&b, "\"}");
    }
    ms_buf_puts(&b, "]}");
    ms_http_respond(req, 200, "application/json", b.data, b.len);
    ms_buf_free(&b);
}

static void fake_on_request(struct ms_http_request *req, void *data)
{
    struct fake *f = data;
    char key[256];
    char val[4096];
    size_t n;

    if (strncmp(req->path, "/metrics", req->path_len) == 0 &&
        req->path_len == 8) {
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
    } else if (req->path_len == 10 &&
               memcmp(req->path, "/v3/kv/put", 10) == 0) {
        if (!json_b64(req, "key", key, sizeof(key)) ||
            !json_b64(req, "value", val, sizeof(val)))
            ms_http_respond(req, 400, "text/plain", "bad\n", 4);
        else
            fake_put(f, req, key, val, strlen(val));
    } else if (req->path_len == 12 &&
               memcmp(req->path, "/v3/kv/range", 12) == 0) {
        if (!json_b64(req, "key", key, sizeof(key)))
            ms_http_respond(req, 400, "text/plain", "bad\n", 4);
        else
            fake_get(f, req, key, true);
    } else if (req->path_len > 4 && memcmp(req->path, "/kv/", 4) == 0) {
        if (req->path_len - 4 >= sizeof(key) ||
            ms_http_pct_decode(req->path + 4, req->path_len - 4, 0,
                               (uint8_t *)key, &n) != 0) {
            ms_http_respond(req, 400, "text/plain", "bad\n", 4);
            return;
        }
        key[n] = '\0';
        if (strcmp(req->method, "PUT") == 0)
            fake_put(f, req, key, req->body, req->body_len);
        else
            fake_get(f, req, key, false);
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
    c->ops_per_client = 25;
    c->request_timeout_ms = 5000;
}

/* putget: 2 requests per op, every key written then read back; the batch
 * counters' deltas give ops per entry; the JSON carries the counts. */
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
    assert_int_equal(r.errors, 0);
    assert_int_equal(f.puts, 100);
    assert_int_equal(f.gets, 100);
    assert_int_equal(f.n_keys, 100);
    assert_non_null(fake_slot(&f, "load/c0000/k00000000", false));
    assert_non_null(fake_slot(&f, "load/c0003/k00000024", false));
    assert_true(r.have_metrics);
    assert_int_equal(r.proposed_ops, 100);
    assert_int_equal(r.entries, 50);
    assert_true(r.ops_per_entry == 2.0);
    assert_true(r.latency.p50 > 0 && r.latency.p50 <= r.latency.p99 &&
                r.latency.p99 <= r.latency.max);
    assert_true(r.ops_per_sec > 0 && r.duration_s > 0);
    assert_int_equal(ms_load_result_json(&c, &r, &js), 0);
    ms_buf_putc(&js, '\0');
    assert_non_null(strstr((char *)js.data, "\"ops\":100,"));
    assert_non_null(strstr((char *)js.data, "\"requests\":200,"));
    assert_non_null(strstr((char *)js.data, "\"ops_per_entry\":2}"));
    assert_non_null(strstr((char *)js.data, "\"workload\":\"putget\""));
    ms_buf_free(&js);
    fake_free(&f);
}

/* The REST API writes raw values under the escaped key; a special
 * character in the prefix survives the round trip. */
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
    c.value_size = 100;
    assert_int_equal(ms_load_run(&c, &r, err, sizeof(err)), 0);
    fake_stop(&f);
    assert_int_equal(r.ops, 100);
    assert_int_equal(r.errors, 0);
    assert_non_null(fake_slot(&f, "a b%/c0000/k00000000", false));
    assert_int_equal(fake_slot(&f, "a b%/c0000/k00000000", false)->len, 100);
    fake_free(&f);
}

/* get and mixed preload each client's keys first (not counted) and then
 * read them back; mixed puts new versions and still reads them right. */
static void test_run_get_mixed(void **state)
{
    struct fake f;
    struct ms_load_config c;
    struct ms_load_result r;
    char url[64], err[MS_ERRMSG_SIZE];

    (void)state;
    fake_start(&f);
    fake_config(&f, &c, url, sizeof(url));
    c.workload = MS_LOAD_GET;
    assert_int_equal(ms_load_run(&c, &r, err, sizeof(err)), 0);
    assert_int_equal(r.ops, 100);
    assert_int_equal(r.requests, 100);
    assert_int_equal(r.errors, 0);
    assert_int_equal(r.proposed_ops, 0); /* the preload is not counted */
    assert_int_equal(f.gets, 100);
    assert_int_equal(f.puts, 100); /* 25 keys preloaded per client */
    c.workload = MS_LOAD_MIXED;
    c.ops_per_client = 200;
    assert_int_equal(ms_load_run(&c, &r, err, sizeof(err)), 0);
    fake_stop(&f);
    assert_int_equal(r.ops, 800);
    assert_int_equal(r.errors, 0);
    assert_true(r.proposed_ops > 80 && r.proposed_ops < 300); /* ~20% */
    fake_free(&f);
}

/* Failed requests are counted by kind, and the run still ends with 0. */
static void test_run_errors_by_kind(void **state)
{
    struct fake f;
    struct ms_load_config c;
    struct ms_load_result r;
    char url[64], err[MS_ERRMSG_SIZE];

    (void)state;
    fake_start(&f);
    fake_config(&f, &c, url, sizeof(url));
    c.workload = MS_LOAD_PUT;
    f.fail_every = 10;
    assert_int_equal(ms_load_run(&c, &r, err, sizeof(err)), 0);
    assert_int_equal(r.ops, 90);
    assert_int_equal(r.errors, 10);
    assert_int_equal(r.n_error_kinds, 1);
    assert_string_equal(r.error_kinds[0].kind, "http_503");
    assert_int_equal(r.error_kinds[0].count, 10);
    assert_non_null(strstr(r.first_error, "http_503"));
    /* a wrong value read back is an error too */
    f.fail_every = 0;
    f.corrupt = true;
    c.workload = MS_LOAD_PUTGET;
    c.clients = 1;
    c.ops_per_client = 3;
    assert_int_equal(ms_load_run(&c, &r, err, sizeof(err)), 0);
    fake_stop(&f);
    assert_int_equal(r.ops, 0);
    assert_int_equal(r.errors, 3);
    assert_string_equal(r.error_kinds[0].kind, "bad_value");
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
    c.workload = MS_LOAD_GET; /* 400 keys, however fast the machine */
    c.ops_per_client = 0;
    c.duration_s = 0.2;
    assert_int_equal(ms_load_run(&c, &r, err, sizeof(err)), 0);
    fake_stop(&f);
    assert_true(r.ops > 0);
    assert_true(r.duration_s >= 0.2 && r.duration_s < 2);
    assert_false(r.have_metrics);
    assert_int_equal(ms_load_result_json(&c, &r, &js), 0);
    ms_buf_putc(&js, '\0');
    assert_non_null(strstr((char *)js.data, "\"ops_per_entry\":null"));
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

/* --- tune
 * ---------------------------------------------------------------------- */

/* The three modes expand to 1 + 3 + 5 settings in the order given. */
static void test_tune_settings(void **state)
{
    struct ms_tune_setting s[MS_TUNE_MAX_SETTINGS];
    char err[MS_ERRMSG_SIZE];
    size_t n;

    (void)state;
    assert_int_equal(ms_tune_settings("off,fixed,adaptive", s,
                                      MS_TUNE_MAX_SETTINGS, &n, err,
                                      sizeof(err)),
                     0);
    assert_int_equal(n, 9);
    assert_string_equal(s[0].label, "off");
    assert_string_equal(s[1].label, "fixed 10/100us");
    assert_true(s[2].has_max_ops && s[2].max_ops == 100 &&
                s[2].max_delay_us == 5000);
    assert_string_equal(s[3].label, "fixed 256/1000us");
    assert_string_equal(s[4].label, "adaptive inflight 1");
    assert_true(s[8].has_max_inflight && s[8].max_inflight == 16);
    assert_false(s[8].has_max_ops);
    assert_int_equal(ms_tune_settings("adaptive,off", s, MS_TUNE_MAX_SETTINGS,
                                      &n, err, sizeof(err)),
                     0);
    assert_int_equal(n, 6);
    assert_string_equal(s[5].label, "off");
    assert_int_equal(ms_tune_settings("off,off", s, MS_TUNE_MAX_SETTINGS, &n,
                                      err, sizeof(err)),
                     MS_EINVAL);
    assert_non_null(strstr(err, "twice"));
    assert_int_equal(
        ms_tune_settings("fast", s, MS_TUNE_MAX_SETTINGS, &n, err, sizeof(err)),
        MS_EINVAL);
    assert_int_equal(
        ms_tune_settings("", s, MS_TUNE_MAX_SETTINGS, &n, err, sizeof(err)),
        MS_EINVAL);
    assert_int_equal(ms_tune_settings("fixed", s, 2, &n, err, sizeof(err)),
                     MS_EINVAL);
}

/* GET /admin/batch parses; a setting overrides only its own fields; the
 * PUT body carries every field. */
static void test_tune_batch_json(void **state)
{
    static const char get[] = "{\"mode\":\"adaptive\",\"max_ops\":256,"
                              "\"max_bytes\":1048576,\"max_delay_us\":1000,"
                              "\"max_inflight\":4}\n";
    struct ms_tune_batch b, o;
    struct ms_tune_setting s[MS_TUNE_MAX_SETTINGS];
    struct ms_buf out = MS_BUF_INIT;
    char err[MS_ERRMSG_SIZE];
    size_t n;

    (void)state;
    assert_int_equal(
        ms_tune_batch_parse(get, strlen(get), &b, err, sizeof(err)), 0);
    assert_string_equal(b.mode, "adaptive");
    assert_int_equal(b.max_bytes, 1048576);
    ms_tune_settings("fixed,adaptive", s, MS_TUNE_MAX_SETTINGS, &n, err,
                     sizeof(err));
    ms_tune_apply(&b, &s[0], &o);
    assert_string_equal(o.mode, "fixed");
    assert_int_equal(o.max_ops, 10);
    assert_int_equal(o.max_delay_us, 100);
    assert_int_equal(o.max_inflight, 4);
    ms_tune_apply(&b, &s[7], &o); /* adaptive inflight 16 */
    assert_int_equal(o.max_ops, 256);
    assert_int_equal(o.max_inflight, 16);
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
        true, (ops), (p99) / 2, (p99), 1, 0                                    \
    }

/* The fastest setting wins only if its p99 stays within the bound at every
 * client count. */
static void test_recommend_bound(void **state)
{
    /* settings: 0 off, 1 fixed, 2 adaptive; client counts 1, 50 */
    struct ms_tune_point pts[] = {
        P(1000, 2.0),  P(1000, 50.0), /* off */
        P(3000, 10.0), P(9000, 20.0), /* fixed: fast but slow p99 at 1 */
        P(1000, 2.5),  P(8000, 21.0), /* adaptive */
    };
    struct ms_tune_verdict v;

    (void)state;
    assert_int_equal(ms_tune_recommend(pts, 3, 2, 1.2, 1.0, &v), 0);
    assert_int_equal(v.best, 2);
    assert_true(v.within_bound);
    assert_false(v.eligible[1]);
    assert_int_equal(v.misses[1], 1);
    assert_int_equal(v.misses[0], 1); /* p99 50 at 50 clients */
    assert_true(v.eligible[2]);
    /* score: geometric mean of 1000/3000 and 8000/9000 */
    assert_true(v.score[2] > 0.544 && v.score[2] < 0.545);
    /* with a loose bound the fastest wins */
    assert_int_equal(ms_tune_recommend(pts, 3, 2, 10, 0, &v), 0);
    assert_int_equal(v.best, 1);
}

/* No setting in bound everywhere: fewest misses, then score; errors and
 * failed points are out of bound; ties go to the earlier setting. */
static void test_recommend_fallback(void **state)
{
    struct ms_tune_point pts[] = {
        P(1000, 1.0),  P(1000, 100.0), P(1000, 100.0), /* 2 misses */
        P(2000, 50.0), P(2000, 10.0),  P(2000, 100.0), /* 2 misses */
        P(500, 100.0), P(500, 100.0),  P(500, 10.0),   /* 2 misses */
    };
    struct ms_tune_point same[] = {P(1000, 5.0), P(1000, 5.0)};
    struct ms_tune_verdict v;

    (void)state;
    assert_int_equal(ms_tune_recommend(pts, 3, 3, 1.2, 1.0, &v), 0);
    assert_false(v.within_bound);
    assert_int_equal(v.best, 1);
    pts[4].errors = 1; /* the second misses everywhere but the last */
    pts[8].ok = false; /* the third misses all three; a failed point no
                          longer sets the best p99 at its client count */
    assert_int_equal(ms_tune_recommend(pts, 3, 3, 1.2, 1.0, &v), 0);
    assert_int_equal(v.misses[0], 1);
    assert_int_equal(v.misses[1], 2);
    assert_int_equal(v.misses[2], 3);
    assert_int_equal(v.best, 0);
    assert_int_equal(ms_tune_recommend(same, 2, 1, 1.2, 1.0, &v), 0);
    assert_int_equal(v.best, 0);
    assert_true(v.within_bound);
    /* the slack keeps sub-millisecond noise in bound */
    same[1].p99_ms = 5.9;
    same[1].ops_per_sec = 1100;
    assert_int_equal(ms_tune_recommend(same, 2, 1, 1.0, 1.0, &v), 0);
    assert_int_equal(v.best, 1);
    assert_int_equal(ms_tune_recommend(same, 2, 1, 1.0, 0.5, &v), 0);
    assert_int_equal(v.best, 0);
    assert_int_equal(ms_tune_recommend(same, 0, 1, 1.2, 1.0, &v), MS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percentile_nearest_rank),
        cmocka_unit_test(test_latency_summary),
        cmocka_unit_test(test_key_format),
        cmocka_unit_test(test_value_deterministic),
        cmocka_unit_test(test_metric_value),
        cmocka_unit_test(test_parse_helpers),
        cmocka_unit_test(test_workload_names),
        cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_run_putget),
        cmocka_unit_test(test_run_rest),
        cmocka_unit_test(test_run_get_mixed),
        cmocka_unit_test(test_run_errors_by_kind),
        cmocka_unit_test(test_run_duration_no_metrics),
        cmocka_unit_test(test_run_unreachable),
        cmocka_unit_test(test_tune_settings),
        cmocka_unit_test(test_tune_batch_json),
        cmocka_unit_test(test_recommend_bound),
        cmocka_unit_test(test_recommend_fallback),
    };
    signal(SIGPIPE, SIG_IGN); /* as the tools do: see ms_load_run */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
