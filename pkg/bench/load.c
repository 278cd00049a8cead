/* load.c - closed-loop HTTP load generator: clients, workloads, latency
 * percentiles and the batch counters read from /metrics. */
#include "bench/load.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "http/client.h"
#include "http/fetch.h"
#include "http/wire.h"
#include "util/base64.h"

#define DEFAULT_TIMEOUT_MS 10000
#define BACKOFF_MS 10
#define VER_UNKNOWN UINT32_MAX

static const char *const workload_names[] = {"put", "get", "putget", "mixed"};
static const char *const api_names[] = {"v3", "rest"};

void ms_load_config_default(struct ms_load_config *c)
{
    memset(c, 0, sizeof(*c));
    c->clients = 50;
    c->ops_per_client = 1000;
    c->duration_s = 0;
    c->workload = MS_LOAD_PUTGET;
    c->api = MS_LOAD_API_V3;
    c->value_size = 12;
    c->key_prefix = "load/";
}

int ms_load_parse_workload(const char *s, enum ms_load_workload *out)
{
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(s, workload_names[i]) == 0) {
            *out = (enum ms_load_workload)i;
            return 0;
        }
    }
    return MS_EINVAL;
}

int ms_load_parse_api(const char *s, enum ms_load_api *out)
{
    for (size_t i = 0; i < 2; i++) {
        if (strcmp(s, api_names[i]) == 0) {
            *out = (enum ms_load_api)i;
            return 0;
        }
    }
    return MS_EINVAL;
}

const char *ms_load_workload_name(enum ms_load_workload w)
{
    return (unsigned)w < 4 ? workload_names[w] : "?";
}

const char *ms_load_api_name(enum ms_load_api a)
{
    return (unsigned)a < 2 ? api_names[a] : "?";
}

unsigned ms_load_requests_per_op(enum ms_load_workload w)
{
    return w == MS_LOAD_PUTGET ? 2 : 1;
}

/* --- building blocks ------------------------------------------------- */

int ms_load_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    unsigned long long v;
    char *end;

    if (s == NULL || *s < '0' || *s > '9')
        return MS_EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return MS_EINVAL;
    *out = v;
    return 0;
}

int ms_load_parse_seconds(const char *s, double max, double *out)
{
    double v;
    char *end;

    if (s == NULL || !((*s >= '0' && *s <= '9') || *s == '.'))
        return MS_EINVAL;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !(v > 0) || v > max)
        return MS_EINVAL;
    *out = v;
    return 0;
}

int ms_load_split_list(const char *s, char *buf, size_t size,
                       const char **items, size_t cap, size_t *n)
{
    char *p;

    *n = 0;
    if (strlen(s) >= size)
        return MS_EINVAL;
    memcpy(buf, s, strlen(s) + 1);
    p = buf;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma != NULL)
            *comma = '\0';
        if (*p == '\0' || *n == cap)
            return MS_EINVAL;
        items[(*n)++] = p;
        if (comma == NULL)
            return 0;
        p = comma + 1;
    }
}

size_t ms_load_key(char *out, size_t size, const char *prefix, unsigned client,
                   uint64_t idx)
{
    int n = snprintf(out, size, "%sc%04u/k%08llu", prefix, client,
                     (unsigned long long)idx);
    if (n < 0 || (size_t)n >= size) {
        if (size > 0)
            out[0] = '\0';
        return 0;
    }
    return (size_t)n;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void ms_load_value(uint8_t *out, size_t size, unsigned client, uint64_t idx,
                   uint32_t ver)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint64_t s = ((uint64_t)client << 40) ^ (idx * 0x100000001b3ull) ^
                 ((uint64_t)ver << 20);
    uint64_t r = 0;

    for (size_t i = 0; i < size; i++) {
        if (i % 10 == 0)
            r = splitmix64(&s);
        out[i] = (uint8_t)alphabet[r & 63];
        r >>= 6;
    }
}

double ms_load_percentile(const double *sorted, size_t n, double p)
{
    double rank;
    size_t r;

    if (n == 0)
        return 0;
    rank = ceil(p / 100.0 * (double)n);
    r = rank < 1 ? 1 : (size_t)rank;
    if (r > n)
        r = n;
    return sorted[r - 1];
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void ms_load_latency_summary(double *samples, size_t n,
                             struct ms_load_latency *out)
{
    double sum = 0;

    memset(out, 0, sizeof(*out));
    if (n == 0)
        return;
    qsort(samples, n, sizeof(*samples), cmp_double);
    for (size_t i = 0; i < n; i++)
        sum += samples[i];
    out->avg = sum / (double)n;
    out->p50 = ms_load_percentile(samples, n, 50);
    out->p90 = ms_load_percentile(samples, n, 90);
    out->p99 = ms_load_percentile(samples, n, 99);
    out->max = samples[n - 1];
}

int ms_load_metric_value(const char *text, size_t len, const char *name,
                         double *out)
{
    size_t nl = strlen(name);
    const char *p = text, *end = text + len;

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t ll = eol ? (size_t)(eol - p) : (size_t)(end - p);

        if (ll > nl + 1 && memcmp(p, name, nl) == 0 && p[nl] == ' ') {
            char num[64];
            size_t k = ll - nl - 1;
            char *e;

            if (k >= sizeof(num))
                k = sizeof(num) - 1;
            memcpy(num, p + nl + 1, k);
            num[k] = '\0';
            *out = strtod(num, &e);
            if (e != num)
                return 0;
        }
        p += ll + 1;
    }
    return MS_ENOTFOUND;
}

/* --- endpoints ---------------------------------------------------------- */

struct endpoint {
    const char *url;
    char addr[80]; /* "ip:port" for ms_http_client_init */
    char base[256];
};

static int endpoint_resolve(const char *url, struct endpoint *ep, char *errmsg,
                            size_t errsz)
{
    struct ms_http_url u;
    struct addrinfo hints, *res = NULL;
    struct sockaddr_storage ss;
    int gai, rc;

    if ((rc = ms_http_url_parse(url, &u, errmsg, errsz)) != 0)
        return rc;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    gai = getaddrinfo(u.host, u.port, &hints, &res);
    if (gai != 0)
        return ms_seterr(errmsg, errsz, MS_EINVAL, "%s: resolve %s: %s", url,
                         u.host, gai_strerror(gai));
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    ep->url = url;
    ms_http_format_addr(&ss, ep->addr, sizeof(ep->addr));
    snprintf(ep->base, sizeof(ep->base), "%s", u.base);
    return 0;
}

int ms_load_config_check(const struct ms_load_config *cfg, char *errmsg,
                         size_t errmsg_size)
{
    struct ms_http_url u;
    int rc;

    if (cfg->n_endpoints == 0 || cfg->n_endpoints > MS_LOAD_MAX_ENDPOINTS)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "endpoints: expected 1..%d URLs",
                         MS_LOAD_MAX_ENDPOINTS);
    for (size_t i = 0; i < cfg->n_endpoints; i++)
        if ((rc = ms_http_url_parse(cfg->endpoints[i], &u, errmsg,
                                    errmsg_size)) != 0)
            return rc;
    if (cfg->clients == 0 || cfg->clients > MS_LOAD_MAX_CLIENTS)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "clients: expected 1..%d", MS_LOAD_MAX_CLIENTS);
    if (cfg->ops_per_client == 0 &&
        !(cfg->duration_s > 0 && cfg->duration_s <= 86400))
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "duration: expected 0 < seconds <= 86400");
    if ((unsigned)cfg->workload > MS_LOAD_MIXED)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL, "workload: unknown");
    if ((unsigned)cfg->api > MS_LOAD_API_REST)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL, "api: unknown");
    if (cfg->value_size == 0 || cfg->value_size > MS_LOAD_MAX_VALUE)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "value size: expected 1..%d", MS_LOAD_MAX_VALUE);
    if (cfg->key_prefix == NULL || strlen(cfg->key_prefix) > MS_LOAD_MAX_PREFIX)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "key prefix: at most %d bytes", MS_LOAD_MAX_PREFIX);
    return 0;
}

/* --- one blocking request ------------------------------------------------ */

struct once {
    int done, rc, status;
    struct ms_buf *resp;
};

static void once_cb(struct ms_http_client_req *req, int status,
                    const struct ms_http_response *resp)
{
    struct once *o = req->data;

    o->done = 1;
    if (status != 0) {
        o->rc = status;
        return;
    }
    o->status = resp->status;
    if (ms_buf_append(o->resp, resp->body, resp->body_len) != 0)
        o->rc = MS_ENOMEM;
}

int ms_load_http(const char *url, const char *method, const char *path,
                 const char *body, uint64_t timeout_ms, int *status,
                 struct ms_buf *resp, char *errmsg, size_t errmsg_size)
{
    struct endpoint ep;
    struct ms_http_client_config hc = {0};
    struct ms_http_client client;
    struct ms_http_client_req req;
    struct ms_http_header hdr = {"Content-Type", "application/json"};
    struct once o = {0};
    char target[600];
    uv_loop_t loop;
    int rc;

    if ((rc = endpoint_resolve(url, &ep, errmsg, errmsg_size)) != 0)
        return rc;
    if ((size_t)snprintf(target, sizeof(target), "%s%s", ep.base, path) >=
        sizeof(target))
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL, "%s: path too long",
                         url);
    if (uv_loop_init(&loop) != 0)
        return ms_seterr(errmsg, errmsg_size, MS_ENOMEM, "uv_loop_init");
    hc.connect_timeout_ms = timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS;
    hc.request_timeout_ms = hc.connect_timeout_ms;
    rc = ms_http_client_init(&client, &loop, ep.addr, &hc);
    if (rc != 0) {
        uv_loop_close(&loop);
        return ms_seterr(errmsg, errmsg_size, rc, "%s: bad address", url);
    }
    o.resp = resp;
    req.data = &o;
    rc = ms_http_client_request(&client, &req, method, target,
                                body ? &hdr : NULL, body ? 1 : 0, body,
                                body ? strlen(body) : 0, once_cb);
    if (rc == 0) {
        while (!o.done)
            uv_run(&loop, UV_RUN_ONCE);
        rc = o.rc;
    }
    if (rc != 0)
        ms_seterr(errmsg, errmsg_size, rc, "%s %s%s: %s", method, url, path,
                  client.errmsg[0] ? client.errmsg : ms_strerror(rc));
    ms_http_client_close(&client, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (rc == 0)
        *status = o.status;
    return rc;
}

/* --- the run ---------------------------------------------------------------
 */

enum phase { PHASE_PRELOAD, PHASE_MEASURE };

struct lclient {
    struct run *run;
    unsigned id;
    const struct endpoint *ep;
    struct ms_http_client http;
    struct ms_http_client_req req;
    uv_timer_t backoff;
    uint64_t started;  /* ops started in this phase */
    uint64_t next_idx; /* next new key (put, putget) */
    uint64_t op_start; /* ns */
    uint64_t cur_idx;
    uint32_t cur_ver;
    int step; /* putget: 0 put, 1 get */
    bool cur_put;
    bool active;
    uint32_t *ver; /* version written of each preloaded key */
    uint64_t rng;
};

struct run {
    const struct ms_load_config *cfg;
    struct ms_load_result *res;
    uv_loop_t loop;
    uv_timer_t tick;
    struct endpoint eps[MS_LOAD_MAX_ENDPOINTS];
    struct lclient *cl;
    unsigned n_active;
    enum phase phase;
    uint64_t quota; /* ops per client; 0: until deadline */
    uint64_t deadline_ns;
    uint64_t start_ns, end_ns;
    uint64_t preload_keys;
    uint64_t preload_ok;
    uint64_t tick_ops, tick_n;
    double *lat;
    size_t nlat, caplat;
    bool oom;
    char target[MS_LOAD_MAX_PREFIX * 3 + 600];
    struct ms_buf body;
    struct ms_buf expect; /* expected value (b64 for v3) */
    uint8_t *value;       /* scratch, value_size bytes */
};

static void start_op(struct lclient *c);

static void finish_client(struct lclient *c)
{
    struct run *r = c->run;

    if (!c->active)
        return;
    c->active = false;
    if (--r->n_active == 0) {
        r->end_ns = uv_hrtime();
        uv_stop(&r->loop);
    }
}

static void add_error(struct run *r, const char *kind, const char *msg)
{
    struct ms_load_result *res = r->res;
    size_t i;

    if (res->first_error[0] == '\0')
        snprintf(res->first_error, sizeof(res->first_error), "%s%s%s", kind,
                 msg && msg[0] ? ": " : "", msg ? msg : "");
    if (r->phase != PHASE_MEASURE)
        return;
    res->errors++;
    for (i = 0; i < res->n_error_kinds; i++)
        if (strcmp(res->error_kinds[i].kind, kind) == 0)
            break;
    if (i == res->n_error_kinds) {
        if (i == MS_LOAD_MAX_ERROR_KINDS) {
            i--;
            snprintf(res->error_kinds[i].kind, sizeof(res->error_kinds[i].kind),
                     "other");
        } else {
            snprintf(res->error_kinds[i].kind, sizeof(res->error_kinds[i].kind),
                     "%s", kind);
            res->n_error_kinds++;
        }
    }
    res->error_kinds[i].count++;
}

static const char *code_kind(int code)
{
    switch (code) {
    case MS_EIO:
        return "connection";
    case MS_ETIMEOUT:
        return "timeout";
    case MS_EMALFORMED:
        return "malformed";
    case MS_ETOOLARGE:
        return "too_large";
    case MS_ECANCELED:
        return "canceled";
    case MS_ENOMEM:
        return "out_of_memory";
    default:
        return "client_error";
    }
}

static void on_backoff(uv_timer_t *t)
{
    start_op(t->data);
}

/* The op of c failed: count it, forget what a failed put may have left,
 * and start the next op after a short pause. */
static void op_failed(struct lclient *c, const char *kind, const char *msg)
{
    add_error(c->run, kind, msg);
    if (c->cur_put && c->ver != NULL && c->cur_idx < c->run->preload_keys)
        c->ver[c->cur_idx] = VER_UNKNOWN;
    uv_timer_start(&c->backoff, on_backoff, BACKOFF_MS, 0);
}

static int escape_key(char *out, size_t size, const char *key)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;

    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || strchr("-._~/", *p);
        if (n + 4 >= size)
            return MS_ETOOLARGE;
        if (plain) {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    out[n] = '\0';
    return 0;
}

static void on_response(struct ms_http_client_req *req, int status,
                        const struct ms_http_response *resp);

/* Sends the current request of c (a put when c->cur_put and step 0). */
static void send_request(struct lclient *c)
{
    struct run *r = c->run;
    const struct ms_load_config *cfg = r->cfg;
    static const struct ms_http_header json_hdr = {"Content-Type",
                                                   "application/json"};
    char key[MS_LOAD_MAX_PREFIX + 40], esc[sizeof(key) * 3];
    bool put = c->cur_put && c->step == 0;
    const char *method;
    int rc = 0;

    ms_load_key(key, sizeof(key), cfg->key_prefix, c->id, c->cur_idx);
    ms_buf_reset(&r->body);
    if (put)
        ms_load_value(r->value, cfg->value_size, c->id, c->cur_idx, c->cur_ver);
    if (cfg->api == MS_LOAD_API_REST) {
        rc = escape_key(esc, sizeof(esc), key);
        snprintf(r->target, sizeof(r->target), "%s/kv/%s", c->ep->base, esc);
        method = put ? "PUT" : "GET";
        if (put)
            rc |= ms_buf_append(&r->body, r->value, cfg->value_size);
    } else {
        snprintf(r->target, sizeof(r->target), "%s/v3/kv/%s", c->ep->base,
                 put ? "put" : "range");
        method = "POST";
        rc |= ms_buf_puts(&r->body, "{\"key\":\"");
        rc |= ms_base64_encode(&r->body, (const uint8_t *)key, strlen(key));
        if (put) {
            rc |= ms_buf_puts(&r->body, "\",\"value\":\"");
            rc |= ms_base64_encode(&r->body, r->value, cfg->value_size);
        }
        rc |= ms_buf_puts(&r->body, "\"}");
    }
    if (rc == 0)
        rc = ms_http_client_request(&c->http, &c->req, method, r->target,
                                    cfg->api == MS_LOAD_API_V3 ? &json_hdr
                                                               : NULL,
                                    cfg->api == MS_LOAD_API_V3 ? 1 : 0,
                                    r->body.data, r->body.len, on_response);
    if (rc != 0)
        op_failed(c, code_kind(rc),
                  c->http.errmsg[0] ? c->http.errmsg : ms_strerror(rc));
}

/* Checks the body of a get answered 200 against what c last wrote.
 * Returns NULL when it matches, else the error kind. */
static const char *check_get(struct lclient *c,
                             const struct ms_http_response *resp)
{
    struct run *r = c->run;
    const struct ms_load_config *cfg = r->cfg;
    static const char tag[] = "\"value\":\"";
    const uint8_t *p;
    uint32_t ver = c->cur_ver;

    if (ver == VER_UNKNOWN)
        return NULL;
    ms_load_value(r->value, cfg->value_size, c->id, c->cur_idx, ver);
    if (cfg->api == MS_LOAD_API_REST)
        return resp->body_len == cfg->value_size &&
                       memcmp(resp->body, r->value, cfg->value_size) == 0
                   ? NULL
                   : "bad_value";
    ms_buf_reset(&r->expect);
    if (ms_base64_encode(&r->expect, r->value, cfg->value_size) != 0)
        return "out_of_memory";
    p = memmem(resp->body, resp->body_len, tag, sizeof(tag) - 1);
    if (p == NULL)
        return "missing";
    p += sizeof(tag) - 1;
    if ((size_t)(resp->body + resp->body_len - p) <= r->expect.len ||
        memcmp(p, r->expect.data, r->expect.len) != 0 ||
        p[r->expect.len] != '"')
        return "bad_value";
    return NULL;
}

static void record_latency(struct run *r, double ms)
{
    if (r->nlat == r->caplat) {
        size_t cap = r->caplat ? r->caplat * 2 : 4096;
        double *n = realloc(r->lat, cap * sizeof(*n));
        if (n == NULL) {
            r->oom = true;
            return;
        }
        r->lat = n;
        r->caplat = cap;
    }
    r->lat[r->nlat++] = ms;
}

static void on_response(struct ms_http_client_req *req, int status,
                        const struct ms_http_response *resp)
{
    struct lclient *c = req->data;
    struct run *r = c->run;
    bool put = c->cur_put && c->step == 0;
    const char *bad;
    char kind[24], msg[120];

    if (status != 0) {
        op_failed(c, code_kind(status), c->http.errmsg);
        return;
    }
    if (resp->status != 200) {
        size_t n = resp->body_len < 80 ? resp->body_len : 80;
        snprintf(kind, sizeof(kind), "http_%d", resp->status);
        snprintf(msg, sizeof(msg), "%s %.*s", put ? "put" : "get", (int)n,
                 (const char *)resp->body);
        while (strlen(msg) > 0 && msg[strlen(msg) - 1] == '\n')
            msg[strlen(msg) - 1] = '\0';
        op_failed(c, kind, msg);
        return;
    }
    if (!put && (bad = check_get(c, resp)) != NULL) {
        snprintf(msg, sizeof(msg), "get of key %llu of client %u",
                 (unsigned long long)c->cur_idx, c->id);
        op_failed(c, bad, msg);
        return;
    }
    if (r->phase == PHASE_MEASURE)
        r->res->requests++;
    if (put && c->ver != NULL && c->cur_idx < r->preload_keys)
        c->ver[c->cur_idx] = c->cur_ver;
    if (r->cfg->workload == MS_LOAD_PUTGET && r->phase == PHASE_MEASURE &&
        c->step == 0) {
        c->step = 1;
        send_request(c);
        return;
    }
    if (r->phase == PHASE_MEASURE) {
        r->res->ops++;
        record_latency(r, (double)(uv_hrtime() - c->op_start) / 1e6);
    } else {
        r->preload_ok++;
    }
    start_op(c);
}

static void start_op(struct lclient *c)
{
    struct run *r = c->run;
    const struct ms_load_config *cfg = r->cfg;
    uint64_t now;

    if (!c->active)
        return;
    now = uv_hrtime();
    if ((cfg->cancel != NULL && *cfg->cancel) ||
        (r->quota > 0 && c->started >= r->quota) ||
        (r->quota == 0 && now >= r->deadline_ns)) {
        finish_client(c);
        return;
    }
    c->started++;
    c->op_start = now;
    c->step = 0;
    if (r->phase == PHASE_PRELOAD) {
        c->cur_put = true;
        c->cur_idx = c->started - 1;
        c->cur_ver = 0;
    } else if (cfg->workload == MS_LOAD_PUT ||
               cfg->workload == MS_LOAD_PUTGET) {
        c->cur_put = true;
        c->cur_idx = c->next_idx++;
        c->cur_ver = 0;
    } else {
        uint64_t x = splitmix64(&c->rng);
        c->cur_put =
            cfg->workload == MS_LOAD_MIXED && x % 100 < MS_LOAD_MIXED_PUT_PCT;
        c->cur_idx = (x >> 8) % r->preload_keys;
        c->cur_ver = c->ver[c->cur_idx];
        if (c->cur_put)
            c->cur_ver = c->cur_ver == VER_UNKNOWN ? 1 : c->cur_ver + 1;
        if (c->cur_ver == VER_UNKNOWN) /* wrapped: start over */
            c->cur_ver = 0;
    }
    send_request(c);
}

static void on_tick(uv_timer_t *t)
{
    struct run *r = t->data;
    double el = (double)(uv_hrtime() - r->start_ns) / 1e9;

    r->tick_n++;
    if (r->cfg->progress != NULL && r->phase == PHASE_MEASURE) {
        fprintf(r->cfg->progress,
                "load: %5.1fs %10llu ops %9.0f ops/s (last second) "
                "%llu errors\n",
                el, (unsigned long long)r->res->ops,
                (double)(r->res->ops - r->tick_ops),
                (unsigned long long)r->res->errors);
        fflush(r->cfg->progress);
    }
    r->tick_ops = r->res->ops;
}

/* Runs one phase on every client until each is done. */
static void run_phase(struct run *r, enum phase ph, uint64_t quota,
                      double duration_s)
{
    r->phase = ph;
    r->quota = quota;
    r->start_ns = uv_hrtime();
    r->end_ns = r->start_ns;
    r->deadline_ns = r->start_ns + (uint64_t)(duration_s * 1e9);
    r->tick_ops = 0;
    r->n_active = r->cfg->clients;
    for (unsigned i = 0; i < r->cfg->clients; i++) {
        r->cl[i].active = true;
        r->cl[i].started = 0;
    }
    uv_update_time(&r->loop);
    uv_timer_start(&r->tick, on_tick, 1000, 1000);
    for (unsigned i = 0; i < r->cfg->clients; i++)
        start_op(&r->cl[i]);
    if (r->n_active > 0)
        uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&r->tick);
}

/* Sums the two batch counters over every endpoint. Returns 0, or MS_EIO
 * with errmsg when the first endpoint does not answer; *complete is false
 * when another endpoint did not. */
static int read_counters(struct run *r, uint64_t *entries, uint64_t *ops,
                         bool *complete, char *errmsg, size_t errsz)
{
    const struct ms_load_config *cfg = r->cfg;

    *entries = *ops = 0;
    *complete = true;
    for (size_t i = 0; i < cfg->n_endpoints; i++) {
        struct ms_buf b = MS_BUF_INIT;
        char err[MS_ERRMSG_SIZE];
        double e = 0, o = 0;
        int status = 0;
        int rc = ms_load_http(cfg->endpoints[i], "GET", "/metrics", NULL, 5000,
                              &status, &b, err, sizeof(err));

        if (rc == 0 && status == 200 &&
            ms_load_metric_value((const char *)b.data, b.len,
                                 "metastore_batch_entries_proposed_total",
                                 &e) == 0 &&
            ms_load_metric_value((const char *)b.data, b.len,
                                 "metastore_batch_ops_proposed_total",
                                 &o) == 0) {
            *entries += (uint64_t)e;
            *ops += (uint64_t)o;
        } else {
            *complete = false;
            if (i == 0 && rc != 0) {
                ms_buf_free(&b);
                return ms_seterr(errmsg, errsz, MS_EIO,
                                 "endpoint unreachable: %s", err);
            }
        }
        ms_buf_free(&b);
    }
    return 0;
}

static void free_run(struct run *r)
{
    free(r->lat);
    ms_buf_free(&r->body);
    ms_buf_free(&r->expect);
    free(r->value);
    if (r->cl != NULL)
        for (unsigned i = 0; i < r->cfg->clients; i++)
            free(r->cl[i].ver);
    free(r->cl);
}

int ms_load_run(const struct ms_load_config *cfg, struct ms_load_result *res,
                char *errmsg, size_t errmsg_size)
{
    struct run r;
    struct ms_http_client_config hc = {0};
    uint64_t e0 = 0, o0 = 0, e1 = 0, o1 = 0;
    bool ok0 = false, ok1 = false, loop_inited = false;
    unsigned inited = 0;
    int rc;

    memset(res, 0, sizeof(*res));
    memset(&r, 0, sizeof(r));
    r.cfg = cfg;
    r.res = res;
    if ((rc = ms_load_config_check(cfg, errmsg, errmsg_size)) != 0)
        return rc;
    for (size_t i = 0; i < cfg->n_endpoints; i++)
        if ((rc = endpoint_resolve(cfg->endpoints[i], &r.eps[i], errmsg,
                                   errmsg_size)) != 0)
            return rc;
    r.cl = calloc(cfg->clients, sizeof(*r.cl));
    r.value = malloc(cfg->value_size);
    if (r.cl == NULL || r.value == NULL) {
        rc = ms_seterr(errmsg, errmsg_size, MS_ENOMEM, "out of memory");
        goto err;
    }
    if (cfg->workload == MS_LOAD_GET || cfg->workload == MS_LOAD_MIXED) {
        r.preload_keys = cfg->ops_per_client > 0 &&
                                 cfg->ops_per_client < MS_LOAD_PRELOAD_KEYS
                             ? cfg->ops_per_client
                             : MS_LOAD_PRELOAD_KEYS;
        for (unsigned i = 0; i < cfg->clients; i++) {
            r.cl[i].ver = malloc(r.preload_keys * sizeof(uint32_t));
            if (r.cl[i].ver == NULL) {
                rc = ms_seterr(errmsg, errmsg_size, MS_ENOMEM, "out of memory");
                goto err;
            }
            for (uint64_t k = 0; k < r.preload_keys; k++)
                r.cl[i].ver[k] = VER_UNKNOWN;
        }
    }
    /* Reachability first: no load is sent to a dead first endpoint. */
    if ((rc = read_counters(&r, &e0, &o0, &ok0, errmsg, errmsg_size)) != 0)
        goto err;
    if (uv_loop_init(&r.loop) != 0) {
        rc = ms_seterr(errmsg, errmsg_size, MS_ENOMEM, "uv_loop_init");
        goto err;
    }
    loop_inited = true;
    uv_timer_init(&r.loop, &r.tick);
    r.tick.data = &r;
    hc.request_timeout_ms =
        cfg->request_timeout_ms ? cfg->request_timeout_ms : DEFAULT_TIMEOUT_MS;
    hc.connect_timeout_ms = hc.request_timeout_ms;
    for (; inited < cfg->clients; inited++) {
        struct lclient *c = &r.cl[inited];
        c->run = &r;
        c->id = inited;
        c->ep = &r.eps[inited % cfg->n_endpoints];
        c->rng = 0x5eed0000ull + inited;
        c->req.data = c;
        rc = ms_http_client_init(&c->http, &r.loop, c->ep->addr, &hc);
        if (rc != 0) {
            ms_seterr(errmsg, errmsg_size, rc, "%s: bad address", c->ep->url);
            goto err;
        }
        uv_timer_init(&r.loop, &c->backoff);
        c->backoff.data = c;
    }
    if (r.preload_keys > 0) {
        run_phase(&r, PHASE_PRELOAD, r.preload_keys, 0);
        if (r.preload_ok == 0) {
            rc = ms_seterr(errmsg, errmsg_size, MS_EIO,
                           "preload: no put succeeded: %s", res->first_error);
            goto err;
        }
        res->first_error[0] = '\0';
        if ((rc = read_counters(&r, &e0, &o0, &ok0, errmsg, errmsg_size)) != 0)
            goto err;
    }
    run_phase(&r, PHASE_MEASURE, cfg->ops_per_client, cfg->duration_s);
    res->duration_s = (double)(r.end_ns - r.start_ns) / 1e9;
    if (r.oom) {
        rc = ms_seterr(errmsg, errmsg_size, MS_ENOMEM,
                       "out of memory for latency samples");
        goto err;
    }
    ms_load_latency_summary(r.lat, r.nlat, &res->latency);
    res->ops_per_sec =
        res->duration_s > 0 ? (double)res->ops / res->duration_s : 0;
    if (read_counters(&r, &e1, &o1, &ok1, errmsg, errmsg_size) == 0 && ok0 &&
        ok1 && e1 >= e0 && o1 >= o0) {
        res->have_metrics = true;
        res->entries = e1 - e0;
        res->proposed_ops = o1 - o0;
        res->ops_per_entry =
            res->entries ? (double)res->proposed_ops / (double)res->entries : 0;
    }
    errmsg[0] = '\0';
    rc = 0;
err:
    if (loop_inited) {
        for (unsigned i = 0; i < inited; i++) {
            ms_http_client_close(&r.cl[i].http, NULL);
            uv_close((uv_handle_t *)&r.cl[i].backoff, NULL);
        }
        uv_close((uv_handle_t *)&r.tick, NULL);
        uv_run(&r.loop, UV_RUN_DEFAULT);
        uv_loop_close(&r.loop);
    }
    free_run(&r);
    return rc;
}

/* --- JSON ------------------------------------------------------------------
 */

static double round3(double x)
{
    return round(x * 1000) / 1000;
}

int ms_load_result_json(const struct ms_load_config *cfg,
                        const struct ms_load_result *res, struct ms_buf *out)
{
    cJSON *o = cJSON_CreateObject(), *eps, *lat, *kinds;
    char *s;
    int rc = MS_ENOMEM;

    if (o == NULL)
        return MS_ENOMEM;
    cJSON_AddStringToObject(o, "workload",
                            ms_load_workload_name(cfg->workload));
    cJSON_AddStringToObject(o, "api", ms_load_api_name(cfg->api));
    eps = cJSON_AddArrayToObject(o, "endpoints");
    for (size_t i = 0; eps && i < cfg->n_endpoints; i++)
        cJSON_AddItemToArray(eps, cJSON_CreateString(cfg->endpoints[i]));
    cJSON_AddNumberToObject(o, "clients", cfg->clients);
    cJSON_AddNumberToObject(o, "ops_per_client", (double)cfg->ops_per_client);
    cJSON_AddNumberToObject(o, "value_size", (double)cfg->value_size);
    cJSON_AddNumberToObject(o, "requests_per_op",
                            ms_load_requests_per_op(cfg->workload));
    cJSON_AddNumberToObject(o, "ops", (double)res->ops);
    cJSON_AddNumberToObject(o, "requests", (double)res->requests);
    cJSON_AddNumberToObject(o, "duration_s", round3(res->duration_s));
    cJSON_AddNumberToObject(o, "ops_per_sec", round3(res->ops_per_sec));
    lat = cJSON_AddObjectToObject(o, "latency_ms");
    if (lat != NULL) {
        cJSON_AddNumberToObject(lat, "avg", round3(res->latency.avg));
        cJSON_AddNumberToObject(lat, "p50", round3(res->latency.p50));
        cJSON_AddNumberToObject(lat, "p90", round3(res->latency.p90));
        cJSON_AddNumberToObject(lat, "p99", round3(res->latency.p99));
        cJSON_AddNumberToObject(lat, "max", round3(res->latency.max));
    }
    cJSON_AddNumberToObject(o, "errors", (double)res->errors);
    kinds = cJSON_AddObjectToObject(o, "errors_by_kind");
    for (size_t i = 0; kinds && i < res->n_error_kinds; i++)
        cJSON_AddNumberToObject(kinds, res->error_kinds[i].kind,
                                (double)res->error_kinds[i].count);
    if (res->first_error[0])
        cJSON_AddStringToObject(o, "first_error", res->first_error);
    if (res->have_metrics) {
        cJSON_AddNumberToObject(o, "entries", (double)res->entries);
        cJSON_AddNumberToObject(o, "proposed_ops", (double)res->proposed_ops);
    } else {
        cJSON_AddNullToObject(o, "entries");
        cJSON_AddNullToObject(o, "proposed_ops");
    }
    if (res->have_metrics && res->entries > 0)
        cJSON_AddNumberToObject(o, "ops_per_entry", round3(res->ops_per_entry));
    else
        cJSON_AddNullToObject(o, "ops_per_entry");
    s = cJSON_PrintUnformatted(o);
    if (s != NULL) {
        rc = ms_buf_puts(out, s);
        free(s);
    }
    cJSON_Delete(o);
    return rc;
}
