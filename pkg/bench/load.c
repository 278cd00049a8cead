/* load.c - closed-loop HTTP load generator: clients over shared keep-alive
 * connections, ops and their checks, a log-linear latency histogram and the
 * batch counters read from /metrics. */
#include "bench/load.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <uv.h>

#include "etcd/etcdserver/etcdserverpb/rpc.pb-c.h"
#include "grpc/client.h"
#include "http/client.h"
#include "http/fetch.h"
#include "http/wire.h"
#include "util/base64.h"

#define DEFAULT_TIMEOUT_MS 10000
#define BACKOFF_MS 10
/* Per-key state: puts in flight in the low 16 bits; CONTENDED once two
 * puts of the key overlapped (or one failed), which ends its stale-read
 * check for the run. */
#define KEY_INFLIGHT_MASK 0xffffu
#define KEY_CONTENDED 0x80000000u

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void ms_load_config_default(struct ms_load_config *c)
{
    memset(c, 0, sizeof(*c));
    c->clients = 50;
    c->conns = 0;
    c->threads = 1;
    c->total = 50000;
    c->duration_s = 0;
    c->op = MS_LOAD_OP_PUTGET;
    c->read_pct = 50;
    c->api = MS_LOAD_API_V3;
    c->key_size = 16;
    c->value_size = 12;
    c->key_space = 10000;
    c->key_prefix = "load/";
}

/* --- names ---------------------------------------------------------------- */

int ms_load_parse_op(const char *s, enum ms_load_op *op, unsigned *read_pct)
{
    static const struct {
        const char *name;
        enum ms_load_op op;
        unsigned pct;
    } names[] = {
        {"put", MS_LOAD_OP_PUT, 0},       {"range", MS_LOAD_OP_RANGE, 100},
        {"get", MS_LOAD_OP_RANGE, 100},   {"txn", MS_LOAD_OP_TXN, 0},
        {"putget", MS_LOAD_OP_PUTGET, 50}, {"mixed", MS_LOAD_OP_MIXED, 80},
    };
    uint64_t r, w;
    char buf[32];
    char *slash;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i].name) == 0) {
            *op = names[i].op;
            *read_pct = names[i].pct;
            return 0;
        }
    }
    if (strncmp(s, "mixed:", 6) != 0 || strlen(s + 6) >= sizeof(buf))
        return MS_EINVAL;
    memcpy(buf, s + 6, strlen(s + 6) + 1);
    slash = strchr(buf, '/');
    if (slash == NULL)
        return MS_EINVAL;
    *slash = '\0';
    if (ms_load_parse_u64(buf, 0, 100, &r) != 0 ||
        ms_load_parse_u64(slash + 1, 0, 100, &w) != 0 || r + w != 100)
        return MS_EINVAL;
    *op = MS_LOAD_OP_MIXED;
    *read_pct = (unsigned)r;
    return 0;
}

const char *ms_load_op_name(enum ms_load_op op, unsigned read_pct, char *out,
                            size_t size)
{
    static const char *const names[] = {"put", "range", "txn", "mixed",
                                        "putget"};

    if (op == MS_LOAD_OP_MIXED && read_pct <= 100)
        snprintf(out, size, "mixed:%u/%u", read_pct, 100 - read_pct);
    else
        snprintf(out, size, "%s", (unsigned)op <= 4 ? names[op] : "?");
    return out;
}

int ms_load_parse_api(const char *s, enum ms_load_api *out)
{
    if (strcmp(s, "v3") == 0)
        *out = MS_LOAD_API_V3;
    else if (strcmp(s, "rest") == 0)
        *out = MS_LOAD_API_REST;
    else if (strcmp(s, "grpc") == 0)
        *out = MS_LOAD_API_GRPC;
    else
        return MS_EINVAL;
    return 0;
}

const char *ms_load_api_name(enum ms_load_api a)
{
    return a == MS_LOAD_API_V3     ? "v3"
           : a == MS_LOAD_API_REST ? "rest"
           : a == MS_LOAD_API_GRPC ? "grpc"
                                   : "?";
}

unsigned ms_load_requests_per_op(enum ms_load_op op)
{
    return op == MS_LOAD_OP_PUTGET ? 2 : 1;
}

/* --- histogram -------------------------------------------------------------
 */

#define SUB (1u << MS_LOAD_HIST_BITS)
#define LINEAR (2u << MS_LOAD_HIST_BITS)

unsigned ms_load_hist_bucket(uint64_t ns)
{
    unsigned bits, shift;

    if (ns < LINEAR)
        return (unsigned)ns;
    bits = 64u - (unsigned)__builtin_clzll(ns); /* > MS_LOAD_HIST_BITS + 1 */
    shift = bits - (MS_LOAD_HIST_BITS + 1);
    return LINEAR + (shift - 1) * SUB + (unsigned)((ns >> shift) - SUB);
}

uint64_t ms_load_hist_bucket_high(unsigned i)
{
    unsigned shift;
    uint64_t top;

    if (i < LINEAR)
        return i;
    shift = (i - LINEAR) / SUB + 1;
    top = (i - LINEAR) % SUB + SUB;
    if (shift + MS_LOAD_HIST_BITS + 1 >= 64 && top == 2 * SUB - 1)
        return UINT64_MAX;
    return ((top + 1) << shift) - 1;
}

void ms_load_hist_reset(struct ms_load_hist *h)
{
    memset(h, 0, sizeof(*h));
}

void ms_load_hist_record(struct ms_load_hist *h, uint64_t ns)
{
    h->counts[ms_load_hist_bucket(ns)]++;
    if (h->n == 0 || ns < h->min)
        h->min = ns;
    if (ns > h->max)
        h->max = ns;
    h->n++;
    h->sum += (double)ns;
}

void ms_load_hist_merge(struct ms_load_hist *dst, const struct ms_load_hist *src)
{
    if (src->n == 0)
        return;
    for (unsigned i = 0; i < MS_LOAD_HIST_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    if (dst->n == 0 || src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->n += src->n;
    dst->sum += src->sum;
}

uint64_t ms_load_hist_percentile(const struct ms_load_hist *h, double p)
{
    double rank;
    uint64_t r, cum = 0;

    if (h->n == 0)
        return 0;
    rank = ceil(p / 100.0 * (double)h->n);
    r = rank < 1 ? 1 : rank > (double)h->n ? h->n : (uint64_t)rank;
    for (unsigned i = 0; i < MS_LOAD_HIST_BUCKETS; i++) {
        cum += h->counts[i];
        if (cum >= r) {
            uint64_t v = ms_load_hist_bucket_high(i);
            return v < h->min ? h->min : v > h->max ? h->max : v;
        }
    }
    return h->max;
}

void ms_load_hist_summary(const struct ms_load_hist *h,
                          struct ms_load_latency *out)
{
    memset(out, 0, sizeof(*out));
    if (h->n == 0)
        return;
    out->avg = h->sum / (double)h->n / 1e6;
    out->min = (double)h->min / 1e6;
    out->p50 = (double)ms_load_hist_percentile(h, 50) / 1e6;
    out->p90 = (double)ms_load_hist_percentile(h, 90) / 1e6;
    out->p99 = (double)ms_load_hist_percentile(h, 99) / 1e6;
    out->p999 = (double)ms_load_hist_percentile(h, 99.9) / 1e6;
    out->max = (double)h->max / 1e6;
}

/* --- building blocks ------------------------------------------------------ */

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

size_t ms_load_key(char *out, size_t size, const char *prefix,
                   size_t key_size, uint64_t idx)
{
    size_t pl = strlen(prefix), digits;

    if (size > 0)
        out[0] = '\0';
    if (key_size >= size || pl >= key_size)
        return 0;
    digits = key_size - pl;
    memcpy(out, prefix, pl);
    for (size_t i = key_size; i > pl; i--) {
        out[i - 1] = (char)('0' + idx % 10);
        idx /= 10;
    }
    if (idx != 0 || digits == 0) {
        out[0] = '\0';
        return 0;
    }
    out[key_size] = '\0';
    return key_size;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void fill(uint8_t *out, size_t size, uint64_t seed)
{
    uint64_t s = seed, r = 0;

    for (size_t i = 0; i < size; i++) {
        if (i % 10 == 0)
            r = splitmix64(&s);
        out[i] = (uint8_t)b64_alphabet[r & 63];
        r >>= 6;
    }
}

void ms_load_value(uint8_t *out, size_t size, uint64_t idx, uint64_t seq)
{
    if (size < MS_LOAD_SEQ_CHARS) {
        fill(out, size, idx * 0x100000001b3ull);
        return;
    }
    for (size_t i = 0; i < MS_LOAD_SEQ_CHARS; i++)
        out[i] = (uint8_t)
            b64_alphabet[(seq >> (6 * (MS_LOAD_SEQ_CHARS - 1 - i))) & 63];
    fill(out + MS_LOAD_SEQ_CHARS, size - MS_LOAD_SEQ_CHARS,
         (idx * 0x100000001b3ull) ^ (seq << 7) ^ 0x5eedull);
}

static int b64_digit(uint8_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

int ms_load_value_check(const uint8_t *v, size_t len, size_t size,
                        uint64_t idx, uint64_t *seq)
{
    uint8_t small[512], *want = small;
    uint64_t s = 0;
    int bad;

    *seq = 0;
    if (len != size)
        return MS_EMALFORMED;
    if (size >= MS_LOAD_SEQ_CHARS) {
        for (size_t i = 0; i < MS_LOAD_SEQ_CHARS; i++) {
            int d = b64_digit(v[i]);
            if (d < 0)
                return MS_EMALFORMED;
            s = (s << 6) | (uint64_t)d;
        }
    }
    if (size > sizeof(small) && (want = malloc(size)) == NULL)
        return MS_ENOMEM;
    ms_load_value(want, size, idx, s);
    bad = memcmp(want, v, size) != 0;
    if (want != small)
        free(want);
    if (bad)
        return MS_EMALFORMED;
    *seq = s;
    return 0;
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

/* --- endpoints -------------------------------------------------------------
 */

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

static unsigned digits_of(uint64_t v)
{
    unsigned d = 1;

    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

int ms_load_config_check(const struct ms_load_config *cfg, char *errmsg,
                         size_t errmsg_size)
{
    struct ms_http_url u;
    unsigned conns = cfg->conns ? cfg->conns : cfg->clients;
    unsigned threads = cfg->threads ? cfg->threads : 1;
    size_t pl;
    int rc;

    if (cfg->n_endpoints == 0 || cfg->n_endpoints > MS_LOAD_MAX_ENDPOINTS)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "endpoints: expected 1..%d URLs",
                         MS_LOAD_MAX_ENDPOINTS);
    for (size_t i = 0; i < cfg->n_endpoints; i++) {
        char why[MS_ERRMSG_SIZE];
        if ((rc = ms_http_url_parse(cfg->endpoints[i], &u, why,
                                    sizeof(why))) != 0)
            return ms_seterr(errmsg, errmsg_size, rc, "endpoints: %s", why);
    }
    if (cfg->clients == 0 || cfg->clients > MS_LOAD_MAX_CLIENTS)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "clients: expected 1..%d", MS_LOAD_MAX_CLIENTS);
    if (conns > cfg->clients)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "conns: expected 1..clients (%u)", cfg->clients);
    if (threads > MS_LOAD_MAX_THREADS || threads > conns)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "threads: expected 1..%d and at most conns (%u)",
                         MS_LOAD_MAX_THREADS, conns);
    if (cfg->total == 0 && !(cfg->duration_s > 0))
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "total or duration: one of them is needed");
    if (cfg->duration_s < 0 || cfg->duration_s > 86400)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "duration: expected 0 < seconds <= 86400");
    if ((unsigned)cfg->op > MS_LOAD_OP_PUTGET)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL, "op: unknown");
    if (cfg->op == MS_LOAD_OP_MIXED && cfg->read_pct > 100)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "op: mixed reads above 100%%");
    if ((unsigned)cfg->api > MS_LOAD_API_GRPC)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL, "api: unknown");
    if (cfg->api == MS_LOAD_API_REST && cfg->op == MS_LOAD_OP_TXN)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "op: txn needs the v3 api");
    if (cfg->value_size == 0 || cfg->value_size > MS_LOAD_MAX_VALUE)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "val-size: expected 1..%d", MS_LOAD_MAX_VALUE);
    if (cfg->key_space == 0 || cfg->key_space > MS_LOAD_MAX_KEY_SPACE)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "key-space: expected 1..%llu",
                         (unsigned long long)MS_LOAD_MAX_KEY_SPACE);
    if (cfg->key_prefix == NULL ||
        (pl = strlen(cfg->key_prefix)) > MS_LOAD_MAX_PREFIX)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "key-prefix: at most %d bytes", MS_LOAD_MAX_PREFIX);
    if (cfg->key_size > MS_LOAD_MAX_KEY ||
        cfg->key_size < pl + digits_of(cfg->key_space - 1))
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "key-size: %zu bytes cannot hold the prefix (%zu "
                         "bytes) and %u digits for %llu keys (at most %d)",
                         cfg->key_size, pl, digits_of(cfg->key_space - 1),
                         (unsigned long long)cfg->key_space, MS_LOAD_MAX_KEY);
    return 0;
}

/* --- one blocking request -------------------------------------------------- */

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
 *
 * A run has one or more workers, each a thread with its own libuv loop,
 * connections, clients, histogram and counters; they share the
 * configuration, the per-key state and a few atomic counters. */

enum phase { PHASE_PRELOAD, PHASE_MEASURE };

/* What a client's current request is. */
enum step { STEP_PUT, STEP_TXN, STEP_GET };

struct conn {
    struct ms_http_client http; /* api v3 and rest */
    struct ms_grpc_client grpc; /* api grpc */
    const struct endpoint *ep;
};

struct worker;

struct lclient {
    struct worker *w;
    struct conn *conn;
    struct ms_http_client_req req;
    struct ms_grpc_client_call call;
    uv_timer_t backoff;
    uint64_t op_start; /* ns */
    uint64_t key;      /* key index of the current op */
    uint64_t seq;      /* sequence number of the current put */
    uint64_t floor;    /* newest acknowledged put of key when the get was
                          sent; 0: none or not checked */
    enum step step;
    bool putget; /* the current op is a putget: a get follows the put */
    bool active;
    uint64_t rng;
};

struct worker {
    struct run *run;
    unsigned id;
    pthread_t thread;
    uv_loop_t loop;
    bool loop_inited;
    uv_timer_t tick;
    struct conn *conns;
    size_t n_conns;
    struct lclient **cl;
    size_t n_cl;
    unsigned n_active;
    bool in_run; /* inside worker_phase's uv_run */
    uint64_t end_ns;
    /* results of the measured phase */
    uint64_t ops, requests, reads, writes, errors, preload_ok;
    struct ms_load_error_kind kinds[MS_LOAD_MAX_ERROR_KINDS];
    size_t n_kinds;
    char first_error[MS_ERRMSG_SIZE];
    bool oom;
    /* scratch */
    char target[MS_LOAD_MAX_KEY * 3 + 400];
    char key[MS_LOAD_MAX_KEY + 1];
    struct ms_buf body;
    struct ms_buf kb64; /* base64 of the current key */
    uint8_t *value;     /* value_size bytes */
    uint8_t *decoded;   /* value_size + 3 bytes */
    struct ms_load_hist hist;
};

struct run {
    const struct ms_load_config *cfg;
    unsigned conns, threads;
    struct endpoint eps[MS_LOAD_MAX_ENDPOINTS];
    struct lclient *cl;
    struct worker *wk;
    enum phase phase;
    uint64_t deadline_ns; /* 0: none */
    uint64_t start_ns;
    uint64_t seq_base;
    uint64_t quota; /* ops of the phase; 0: none */
    _Atomic uint64_t started; /* ops started in the phase */
    _Atomic uint64_t next_put; /* puts issued, over all phases */
    _Atomic uint64_t done_ops, done_errors;
    _Atomic uint32_t *key_state; /* key_space entries */
    _Atomic uint64_t *acked;     /* newest acknowledged seq per key */
    uint64_t tick_ops;
};

static void start_op(struct lclient *c);

static void finish_client(struct lclient *c)
{
    struct worker *w = c->w;

    if (!c->active)
        return;
    c->active = false;
    if (--w->n_active == 0) {
        w->end_ns = uv_hrtime();
        /* Only a running loop is stopped: a uv_stop before uv_run (every
         * client done at its first start_op, e.g. the other worker took
         * all of the preload) would stay pending and end the next phase's
         * uv_run at once, with its first ops still in flight. */
        if (w->in_run)
            uv_stop(&w->loop);
    }
}

static void add_error(struct worker *w, const char *kind, const char *msg)
{
    size_t i;

    if (w->first_error[0] == '\0')
        snprintf(w->first_error, sizeof(w->first_error), "%s%s%s", kind,
                 msg && msg[0] ? ": " : "", msg ? msg : "");
    if (w->run->phase != PHASE_MEASURE)
        return;
    w->errors++;
    atomic_fetch_add_explicit(&w->run->done_errors, 1, memory_order_relaxed);
    for (i = 0; i < w->n_kinds; i++)
        if (strcmp(w->kinds[i].kind, kind) == 0)
            break;
    if (i == w->n_kinds) {
        if (i == MS_LOAD_MAX_ERROR_KINDS) {
            i--;
            snprintf(w->kinds[i].kind, sizeof(w->kinds[i].kind), "other");
        } else {
            snprintf(w->kinds[i].kind, sizeof(w->kinds[i].kind), "%s", kind);
            w->n_kinds++;
        }
    }
    w->kinds[i].count++;
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

/* A put of c's key ended (answered or failed). */
static void put_done(struct lclient *c, bool ok)
{
    struct run *r = c->w->run;
    uint32_t old;

    if (!ok) /* its outcome is unknown: no stale-read check any more */
        atomic_fetch_or(&r->key_state[c->key], KEY_CONTENDED);
    old = atomic_fetch_sub(&r->key_state[c->key], 1);
    if (ok && !(old & KEY_CONTENDED))
        atomic_store_explicit(&r->acked[c->key], c->seq, memory_order_release);
}

/* The op of c failed: count it and start the next op after a pause. */
static void op_failed(struct lclient *c, const char *kind, const char *msg)
{
    if (c->step != STEP_GET)
        put_done(c, false);
    add_error(c->w, kind, msg);
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

/* Writes c's current key into its worker's scratch and returns it. */
static const char *key_of(struct lclient *c)
{
    const struct ms_load_config *cfg = c->w->run->cfg;

    ms_load_key(c->w->key, sizeof(c->w->key), cfg->key_prefix, cfg->key_size,
                c->key);
    return c->w->key;
}

static void send_grpc(struct lclient *c);

/* Builds and sends the current request of c. */
static void send_request(struct lclient *c)
{
    struct worker *w = c->w;
    struct run *r = w->run;
    const struct ms_load_config *cfg = r->cfg;
    static const struct ms_http_header json_hdr = {"Content-Type",
                                                   "application/json"};
    const char *base = c->conn->ep->base;
    bool write = c->step != STEP_GET;
    const char *method;
    int rc = 0;

    if (cfg->api == MS_LOAD_API_GRPC) {
        send_grpc(c);
        return;
    }
    key_of(c);
    ms_buf_reset(&w->body);
    if (write)
        ms_load_value(w->value, cfg->value_size, c->key, c->seq);
    if (cfg->api == MS_LOAD_API_REST) {
        char esc[MS_LOAD_MAX_KEY * 3 + 1];
        rc = escape_key(esc, sizeof(esc), w->key);
        snprintf(w->target, sizeof(w->target), "%s/kv/%s%s", base, esc,
                 !write && cfg->serializable ? "?consistency=serializable"
                                             : "");
        method = write ? "PUT" : "GET";
        if (write)
            rc |= ms_buf_append(&w->body, w->value, cfg->value_size);
    } else {
        static const char *const paths[] = {"put", "txn", "range"};
        snprintf(w->target, sizeof(w->target), "%s/v3/kv/%s", base,
                 paths[c->step]);
        method = "POST";
        ms_buf_reset(&w->kb64);
        rc |= ms_base64_encode(&w->kb64, (const uint8_t *)w->key,
                               cfg->key_size);
        if (c->step == STEP_TXN) {
            rc |= ms_buf_puts(&w->body, "{\"compare\":[{\"key\":\"");
            rc |= ms_buf_append(&w->body, w->kb64.data, w->kb64.len);
            rc |= ms_buf_puts(&w->body,
                              "\",\"target\":\"MOD\",\"result\":\"LESS\","
                              "\"mod_revision\":\"9223372036854775807\"}],"
                              "\"success\":[{\"request_put\":{");
        } else {
            rc |= ms_buf_putc(&w->body, '{');
        }
        rc |= ms_buf_puts(&w->body, "\"key\":\"");
        rc |= ms_buf_append(&w->body, w->kb64.data, w->kb64.len);
        if (write) {
            rc |= ms_buf_puts(&w->body, "\",\"value\":\"");
            rc |= ms_base64_encode(&w->body, w->value, cfg->value_size);
            rc |= ms_buf_puts(&w->body, "\"}");
        } else {
            rc |= ms_buf_puts(&w->body, cfg->serializable
                                            ? "\",\"serializable\":true}"
                                            : "\"}");
        }
        if (c->step == STEP_TXN)
            rc |= ms_buf_puts(&w->body, "}]}");
    }
    if (rc == 0)
        rc = ms_http_client_request(&c->conn->http, &c->req, method,
                                    w->target,
                                    cfg->api == MS_LOAD_API_V3 ? &json_hdr
                                                               : NULL,
                                    cfg->api == MS_LOAD_API_V3 ? 1 : 0,
                                    w->body.data, w->body.len, on_response);
    if (rc != 0)
        op_failed(c, code_kind(rc),
                  c->conn->http.errmsg[0] ? c->conn->http.errmsg
                                          : ms_strerror(rc));
}

/* Finds `"name":"` in body and returns the start of the string value with
 * its length (up to the closing quote), or NULL. */
static const uint8_t *json_str(const struct ms_http_response *resp,
                               const char *tag, size_t *len)
{
    const uint8_t *p = memmem(resp->body, resp->body_len, tag, strlen(tag));
    const uint8_t *end = resp->body + resp->body_len, *q;

    if (p == NULL)
        return NULL;
    p += strlen(tag);
    q = memchr(p, '"', (size_t)(end - p));
    if (q == NULL)
        return NULL;
    *len = (size_t)(q - p);
    return p;
}

/* Checks value v[0..len) read from c's key. NULL when right, else the
 * error kind. */
static const char *check_value(struct lclient *c, const uint8_t *v,
                               size_t len)
{
    const struct ms_load_config *cfg = c->w->run->cfg;
    uint64_t seq;

    if (ms_load_value_check(v, len, cfg->value_size, c->key, &seq) != 0)
        return "bad_value";
    if (cfg->value_size >= MS_LOAD_SEQ_CHARS && seq < c->floor)
        return "stale_read";
    return NULL;
}

/* Checks the answer to a get of c's key. Returns NULL when it is right,
 * else the error kind. */
static const char *check_get(struct lclient *c,
                             const struct ms_http_response *resp)
{
    struct worker *w = c->w;
    const struct ms_load_config *cfg = w->run->cfg;
    const uint8_t *v;
    size_t len;

    if (cfg->api == MS_LOAD_API_REST) {
        if (resp->status == 404)
            return c->floor > 0 ? "stale_read" : NULL;
        if (resp->status != 200)
            return NULL; /* the caller reports the status */
        v = resp->body;
        len = resp->body_len;
    } else {
        const uint8_t *k;
        size_t klen, b64len;
        if (memmem(resp->body, resp->body_len, "\"kvs\":[", 7) == NULL)
            return memmem(resp->body, resp->body_len, "\"header\":{", 10) ==
                           NULL
                       ? "bad_response"
                   : c->floor > 0 ? "stale_read"
                                  : NULL;
        k = json_str(resp, "\"key\":\"", &klen);
        ms_buf_reset(&w->kb64);
        ms_base64_encode(&w->kb64, (const uint8_t *)key_of(c), cfg->key_size);
        if (k == NULL || klen != w->kb64.len ||
            memcmp(k, w->kb64.data, klen) != 0)
            return "bad_key";
        v = json_str(resp, "\"value\":\"", &b64len);
        if (v == NULL || b64len > (cfg->value_size + 2) / 3 * 4 ||
            ms_base64_decode(w->decoded, &len, (const char *)v, b64len) != 0)
            return "bad_value";
        v = w->decoded;
    }
    return check_value(c, v, len);
}

/* Checks the answer to a put or txn. NULL when right, else the kind. */
static const char *check_write(struct lclient *c,
                               const struct ms_http_response *resp)
{
    const struct ms_load_config *cfg = c->w->run->cfg;

    if (cfg->api == MS_LOAD_API_REST)
        return resp->body_len > 12 &&
                       memcmp(resp->body, "{\"revision\":", 12) == 0
                   ? NULL
                   : "bad_response";
    if (memmem(resp->body, resp->body_len, "\"revision\":\"", 12) == NULL)
        return "bad_response";
    if (c->step == STEP_TXN &&
        memmem(resp->body, resp->body_len, "\"succeeded\":true", 16) == NULL)
        return "txn_failed";
    return NULL;
}

/* Sends a get of c's key, remembering the newest acknowledged put. */
static void send_get(struct lclient *c)
{
    struct run *r = c->w->run;

    c->step = STEP_GET;
    c->floor = 0;
    if (!r->cfg->serializable &&
        !(atomic_load_explicit(&r->key_state[c->key], memory_order_relaxed) &
          KEY_CONTENDED))
        c->floor =
            atomic_load_explicit(&r->acked[c->key], memory_order_acquire);
    send_request(c);
}

static void op_succeeded(struct lclient *c)
{
    struct worker *w = c->w;

    if (w->run->phase == PHASE_MEASURE) {
        w->ops++;
        atomic_fetch_add_explicit(&w->run->done_ops, 1, memory_order_relaxed);
        ms_load_hist_record(&w->hist, uv_hrtime() - c->op_start);
    } else {
        w->preload_ok++;
    }
    start_op(c);
}

/* The current request of c was answered and checked as good: count it,
 * then go on with the op's next request or the next op. */
static void request_ok(struct lclient *c, bool write)
{
    struct worker *w = c->w;

    if (w->run->phase == PHASE_MEASURE) {
        w->requests++;
        if (write)
            w->writes++;
        else
            w->reads++;
    }
    if (write) {
        put_done(c, true);
        if (c->putget) {
            send_get(c);
            return;
        }
    }
    op_succeeded(c);
}

static void on_response(struct ms_http_client_req *req, int status,
                        const struct ms_http_response *resp)
{
    struct lclient *c = req->data;
    struct worker *w = c->w;
    bool write = c->step != STEP_GET;
    const char *bad;
    char kind[24], msg[160];

    if (status != 0) {
        op_failed(c, code_kind(status), c->conn->http.errmsg);
        return;
    }
    if (resp->status != 200 &&
        !(resp->status == 404 && !write && w->run->cfg->api == MS_LOAD_API_REST)) {
        size_t n = resp->body_len < 100 ? resp->body_len : 100;
        snprintf(kind, sizeof(kind), "http_%d", resp->status);
        snprintf(msg, sizeof(msg), "%s: %.*s",
                 c->step == STEP_PUT  ? "put"
                 : c->step == STEP_TXN ? "txn"
                                       : "get",
                 (int)n, (const char *)resp->body);
        while (strlen(msg) > 0 && msg[strlen(msg) - 1] == '\n')
            msg[strlen(msg) - 1] = '\0';
        op_failed(c, kind, msg);
        return;
    }
    bad = write ? check_write(c, resp) : check_get(c, resp);
    if (bad != NULL) {
        snprintf(msg, sizeof(msg), "%s of key %.80s: %.*s", write ? "put" : "get",
                 key_of(c), (int)(resp->body_len < 100 ? resp->body_len : 100),
                 (const char *)resp->body);
        op_failed(c, bad, msg);
        return;
    }
    request_ok(c, write);
}

/* --- gRPC ---------------------------------------------------------------- */

static const char *const grpc_paths[] = {
    "/etcdserverpb.KV/Put", "/etcdserverpb.KV/Txn", "/etcdserverpb.KV/Range"};

static void on_grpc_reply(struct ms_grpc_client_call *call, int rc,
                          const struct ms_grpc_client_reply *reply);

/* Builds the current request of c as a KV.Put, KV.Txn or KV.Range message
 * and starts the call. */
static void send_grpc(struct lclient *c)
{
    struct worker *w = c->w;
    const struct ms_load_config *cfg = w->run->cfg;
    Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
    Etcdserverpb__RangeRequest range = ETCDSERVERPB__RANGE_REQUEST__INIT;
    Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
    Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT, *cmps[1];
    Etcdserverpb__RequestOp op = ETCDSERVERPB__REQUEST_OP__INIT, *ops[1];
    ProtobufCBinaryData key;
    const ProtobufCMessage *m;
    size_t len;
    int rc;

    key.data = (uint8_t *)key_of(c);
    key.len = cfg->key_size;
    if (c->step == STEP_GET) {
        range.key = key;
        range.serializable = cfg->serializable;
        m = &range.base;
    } else {
        ms_load_value(w->value, cfg->value_size, c->key, c->seq);
        put.key = key;
        put.value.data = w->value;
        put.value.len = cfg->value_size;
        m = &put.base;
        if (c->step == STEP_TXN) {
            cmp.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__LESS;
            cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD;
            cmp.key = key;
            cmp.target_union_case =
                ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
            cmp.mod_revision = INT64_MAX;
            cmps[0] = &cmp;
            op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
            op.request_put = &put;
            ops[0] = &op;
            txn.n_compare = 1;
            txn.compare = cmps;
            txn.n_success = 1;
            txn.success = ops;
            m = &txn.base;
        }
    }
    len = protobuf_c_message_get_packed_size(m);
    ms_buf_reset(&w->body);
    rc = ms_buf_reserve(&w->body, len + 1);
    if (rc == 0) {
        w->body.len = protobuf_c_message_pack(m, w->body.data);
        c->call.data = c;
        rc = ms_grpc_client_call(&c->conn->grpc, &c->call, grpc_paths[c->step],
                                 w->body.data, w->body.len, on_grpc_reply);
    }
    if (rc != 0)
        op_failed(c, code_kind(rc),
                  c->conn->grpc.errmsg[0] ? c->conn->grpc.errmsg
                                          : ms_strerror(rc));
}

/* Checks a KV.Range answer for c's key. NULL when right, else the kind. */
static const char *check_grpc_get(struct lclient *c, const uint8_t *msg,
                                  size_t len)
{
    const struct ms_load_config *cfg = c->w->run->cfg;
    Etcdserverpb__RangeResponse *r =
        etcdserverpb__range_response__unpack(NULL, len, msg);
    const char *bad = NULL;

    if (r == NULL || r->header == NULL)
        bad = "bad_response";
    else if (r->n_kvs == 0)
        bad = c->floor > 0 ? "stale_read" : NULL;
    else if (r->kvs[0]->key.len != cfg->key_size ||
             memcmp(r->kvs[0]->key.data, key_of(c), cfg->key_size) != 0)
        bad = "bad_key";
    else
        bad = check_value(c, r->kvs[0]->value.data, r->kvs[0]->value.len);
    if (r != NULL)
        etcdserverpb__range_response__free_unpacked(r, NULL);
    return bad;
}

/* Checks a KV.Put or KV.Txn answer. NULL when right, else the kind. */
static const char *check_grpc_write(struct lclient *c, const uint8_t *msg,
                                    size_t len)
{
    const char *bad = NULL;

    if (c->step == STEP_TXN) {
        Etcdserverpb__TxnResponse *r =
            etcdserverpb__txn_response__unpack(NULL, len, msg);
        if (r == NULL || r->header == NULL || r->header->revision <= 0)
            bad = "bad_response";
        else if (!r->succeeded)
            bad = "txn_failed";
        if (r != NULL)
            etcdserverpb__txn_response__free_unpacked(r, NULL);
    } else {
        Etcdserverpb__PutResponse *r =
            etcdserverpb__put_response__unpack(NULL, len, msg);
        if (r == NULL || r->header == NULL || r->header->revision <= 0)
            bad = "bad_response";
        if (r != NULL)
            etcdserverpb__put_response__free_unpacked(r, NULL);
    }
    return bad;
}

static void on_grpc_reply(struct ms_grpc_client_call *call, int rc,
                          const struct ms_grpc_client_reply *reply)
{
    struct lclient *c = call->data;
    bool write = c->step != STEP_GET;
    static const char *const what[] = {"put", "txn", "get"};
    const char *bad;
    char kind[24], msg[160];

    if (rc != 0) {
        op_failed(c, code_kind(rc), c->conn->grpc.errmsg);
        return;
    }
    if (reply->status != 0) {
        snprintf(kind, sizeof(kind), "grpc_%d", reply->status);
        snprintf(msg, sizeof(msg), "%s: %.100s", what[c->step], reply->message);
        op_failed(c, kind, msg);
        return;
    }
    bad = reply->msg == NULL ? "bad_response"
          : write            ? check_grpc_write(c, reply->msg, reply->msg_len)
                             : check_grpc_get(c, reply->msg, reply->msg_len);
    if (bad != NULL) {
        snprintf(msg, sizeof(msg), "%s of key %.80s: %zu-byte answer",
                 what[c->step], key_of(c), reply->msg_len);
        op_failed(c, bad, msg);
        return;
    }
    request_ok(c, write);
}

/* Takes the next put number and its key; marks the key busy. */
static void take_put(struct lclient *c)
{
    struct run *r = c->w->run;
    uint64_t n = atomic_fetch_add_explicit(&r->next_put, 1,
                                           memory_order_relaxed);
    uint32_t old;

    c->key = n % r->cfg->key_space;
    c->seq = r->seq_base + n;
    old = atomic_fetch_add(&r->key_state[c->key], 1);
    if ((old & KEY_INFLIGHT_MASK) != 0)
        atomic_fetch_or(&r->key_state[c->key], KEY_CONTENDED);
}

static void start_op(struct lclient *c)
{
    struct worker *w = c->w;
    struct run *r = w->run;
    const struct ms_load_config *cfg = r->cfg;
    uint64_t now;
    bool read;

    if (!c->active)
        return;
    now = uv_hrtime();
    if ((cfg->cancel != NULL && *cfg->cancel) ||
        (r->deadline_ns != 0 && now >= r->deadline_ns)) {
        finish_client(c);
        return;
    }
    if (r->phase == PHASE_PRELOAD) {
        if (atomic_load_explicit(&r->next_put, memory_order_relaxed) >=
            cfg->key_space) {
            finish_client(c);
            return;
        }
    } else if (r->quota > 0 &&
               atomic_fetch_add_explicit(&r->started, 1,
                                         memory_order_relaxed) >= r->quota) {
        finish_client(c);
        return;
    }
    c->op_start = now;
    c->putget = false;
    if (r->phase == PHASE_PRELOAD) {
        read = false;
    } else {
        switch (cfg->op) {
        case MS_LOAD_OP_RANGE:
            read = true;
            break;
        case MS_LOAD_OP_MIXED:
            read = splitmix64(&c->rng) % 100 < cfg->read_pct;
            break;
        default:
            read = false;
        }
    }
    if (read) {
        c->key = splitmix64(&c->rng) % cfg->key_space;
        send_get(c);
        return;
    }
    take_put(c);
    c->putget = r->phase == PHASE_MEASURE && cfg->op == MS_LOAD_OP_PUTGET;
    c->step = r->phase == PHASE_MEASURE && cfg->op == MS_LOAD_OP_TXN
                  ? STEP_TXN
                  : STEP_PUT;
    send_request(c);
}

static void on_tick(uv_timer_t *t)
{
    struct worker *w = t->data;
    struct run *r = w->run;
    double el = (double)(uv_hrtime() - r->start_ns) / 1e9;
    uint64_t ops = atomic_load(&r->done_ops);

    if (r->cfg->progress != NULL) {
        if (r->phase == PHASE_MEASURE)
            fprintf(r->cfg->progress,
                    "load: %5.1fs %10llu ops %9.0f ops/s (last second) "
                    "%llu errors\n",
                    el, (unsigned long long)ops,
                    (double)(ops - r->tick_ops),
                    (unsigned long long)atomic_load(&r->done_errors));
        else
            fprintf(r->cfg->progress, "load: %5.1fs preload %llu of %llu keys\n",
                    el,
                    (unsigned long long)atomic_load(&r->next_put),
                    (unsigned long long)r->cfg->key_space);
        fflush(r->cfg->progress);
    }
    r->tick_ops = ops;
}

/* Runs one phase on the clients of w until each is done. */
static void worker_phase(struct worker *w)
{
    w->n_active = (unsigned)w->n_cl;
    w->end_ns = uv_hrtime();
    for (size_t i = 0; i < w->n_cl; i++)
        w->cl[i]->active = true;
    uv_update_time(&w->loop);
    if (w->id == 0)
        uv_timer_start(&w->tick, on_tick, 1000, 1000);
    for (size_t i = 0; i < w->n_cl; i++)
        start_op(w->cl[i]);
    if (w->n_active > 0) {
        w->in_run = true;
        uv_run(&w->loop, UV_RUN_DEFAULT);
        w->in_run = false;
    }
    if (w->id == 0)
        uv_timer_stop(&w->tick);
}

static void *worker_main(void *arg)
{
    worker_phase(arg);
    return NULL;
}

/* Runs a phase on every worker, in threads when there are several. */
static void run_phase(struct run *r, enum phase ph, uint64_t quota,
                      double duration_s)
{
    unsigned spawned = 0;

    r->phase = ph;
    r->quota = quota;
    atomic_store(&r->started, 0);
    r->start_ns = uv_hrtime();
    r->deadline_ns =
        duration_s > 0 ? r->start_ns + (uint64_t)(duration_s * 1e9) : 0;
    r->tick_ops = 0;
    for (unsigned i = 1; i < r->threads; i++) {
        if (pthread_create(&r->wk[i].thread, NULL, worker_main, &r->wk[i]) !=
            0)
            break;
        spawned++;
    }
    /* a worker whose thread could not start runs here, after worker 0 */
    worker_phase(&r->wk[0]);
    for (unsigned i = 1 + spawned; i < r->threads; i++)
        worker_phase(&r->wk[i]);
    for (unsigned i = 1; i <= spawned; i++)
        pthread_join(r->wk[i].thread, NULL);
}

/* Sums the batch counters over every endpoint. Returns 0, or MS_EIO with
 * errmsg when the first endpoint does not answer; *complete is false when
 * another endpoint did not. */
static int read_counters(const struct ms_load_config *cfg, uint64_t *entries,
                         uint64_t *ops, uint64_t *barriers, uint64_t *appends,
                         bool *complete, char *errmsg, size_t errsz)
{
    *entries = *ops = *barriers = *appends = 0;
    *complete = true;
    for (size_t i = 0; i < cfg->n_endpoints; i++) {
        struct ms_buf b = MS_BUF_INIT;
        char err[MS_ERRMSG_SIZE];
        double e = 0, o = 0, br = 0, ap = 0;
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
            if (ms_load_metric_value((const char *)b.data, b.len,
                                     "metastore_read_barriers_total",
                                     &br) == 0)
                *barriers += (uint64_t)br;
            if (ms_load_metric_value((const char *)b.data, b.len,
                                     "metastore_raft_disk_writes_total",
                                     &ap) == 0)
                *appends += (uint64_t)ap;
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
    if (r->wk != NULL)
        for (unsigned i = 0; i < r->threads; i++) {
            ms_buf_free(&r->wk[i].body);
            ms_buf_free(&r->wk[i].kb64);
            free(r->wk[i].value);
            free(r->wk[i].decoded);
            free(r->wk[i].conns);
            free(r->wk[i].cl);
        }
    free(r->wk);
    free(r->cl);
    free((void *)r->key_state);
    free((void *)r->acked);
}

/* Closes every handle of w and runs its loop until they are gone. */
static void worker_close(struct worker *w)
{
    if (!w->loop_inited)
        return;
    for (size_t i = 0; i < w->n_conns; i++) {
        if (w->conns[i].ep == NULL)
            continue;
        if (w->run->cfg->api == MS_LOAD_API_GRPC)
            ms_grpc_client_close(&w->conns[i].grpc, NULL);
        else
            ms_http_client_close(&w->conns[i].http, NULL);
    }
    for (size_t i = 0; i < w->n_cl; i++)
        if (w->cl[i]->w != NULL)
            uv_close((uv_handle_t *)&w->cl[i]->backoff, NULL);
    uv_close((uv_handle_t *)&w->tick, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    w->loop_inited = false;
}

/* Sets up the workers: connection j on worker j mod threads, client i on
 * connection i mod conns. */
static int setup_workers(struct run *r, char *errmsg, size_t errsz)
{
    const struct ms_load_config *cfg = r->cfg;
    struct ms_http_client_config hc = {0};
    struct ms_grpc_client_config gc = {0};
    int rc;

    hc.request_timeout_ms =
        cfg->request_timeout_ms ? cfg->request_timeout_ms : DEFAULT_TIMEOUT_MS;
    hc.connect_timeout_ms = hc.request_timeout_ms;
    gc.request_timeout_ms = hc.request_timeout_ms;
    gc.connect_timeout_ms = hc.request_timeout_ms;
    for (unsigned t = 0; t < r->threads; t++) {
        struct worker *w = &r->wk[t];
        size_t nc = (r->conns - t + r->threads - 1) / r->threads;
        size_t ncl = 0;

        w->run = r;
        w->id = t;
        w->conns = calloc(nc, sizeof(*w->conns));
        for (unsigned i = 0; i < cfg->clients; i++)
            if ((i % r->conns) % r->threads == t)
                ncl++;
        w->cl = calloc(ncl, sizeof(*w->cl));
        w->value = malloc(cfg->value_size);
        w->decoded = malloc(cfg->value_size + 3);
        if (w->conns == NULL || w->cl == NULL || w->value == NULL ||
            w->decoded == NULL)
            return ms_seterr(errmsg, errsz, MS_ENOMEM, "out of memory");
        if (uv_loop_init(&w->loop) != 0)
            return ms_seterr(errmsg, errsz, MS_ENOMEM, "uv_loop_init");
        w->loop_inited = true;
        uv_timer_init(&w->loop, &w->tick);
        w->tick.data = w;
        for (size_t j = 0; j < nc; j++) {
            unsigned global = t + (unsigned)j * r->threads;
            const struct endpoint *ep = &r->eps[global % cfg->n_endpoints];
            rc = cfg->api == MS_LOAD_API_GRPC
                     ? ms_grpc_client_init(&w->conns[j].grpc, &w->loop,
                                           ep->addr, &gc)
                     : ms_http_client_init(&w->conns[j].http, &w->loop,
                                           ep->addr, &hc);
            if (rc != 0)
                return ms_seterr(errmsg, errsz, rc, "%s: bad address",
                                 ep->url);
            w->conns[j].ep = ep;
            w->n_conns++;
        }
    }
    for (unsigned i = 0; i < cfg->clients; i++) {
        struct lclient *c = &r->cl[i];
        unsigned cj = i % r->conns;
        struct worker *w = &r->wk[cj % r->threads];

        c->conn = &w->conns[cj / r->threads];
        c->rng = 0x5eed0000ull + i;
        c->req.data = c;
        uv_timer_init(&w->loop, &c->backoff);
        c->backoff.data = c;
        c->w = w;
        w->cl[w->n_cl++] = c;
    }
    return 0;
}

/* Adds the results of the workers into res. */
static void collect(struct run *r, struct ms_load_result *res)
{
    struct ms_load_hist *h = calloc(1, sizeof(*h));
    uint64_t end = r->start_ns;

    for (unsigned t = 0; t < r->threads; t++) {
        struct worker *w = &r->wk[t];
        res->ops += w->ops;
        res->requests += w->requests;
        res->reads += w->reads;
        res->writes += w->writes;
        res->errors += w->errors;
        if (res->first_error[0] == '\0' && w->first_error[0] != '\0')
            memcpy(res->first_error, w->first_error, sizeof(w->first_error));
        for (size_t k = 0; k < w->n_kinds; k++) {
            size_t i;
            for (i = 0; i < res->n_error_kinds; i++)
                if (strcmp(res->error_kinds[i].kind, w->kinds[k].kind) == 0)
                    break;
            if (i == res->n_error_kinds) {
                if (i == MS_LOAD_MAX_ERROR_KINDS)
                    i--;
                else
                    res->n_error_kinds++;
                memcpy(res->error_kinds[i].kind, w->kinds[k].kind,
                       sizeof(w->kinds[k].kind));
            }
            res->error_kinds[i].count += w->kinds[k].count;
        }
        if (w->end_ns > end)
            end = w->end_ns;
        if (h != NULL)
            ms_load_hist_merge(h, &w->hist);
    }
    res->duration_s = (double)(end - r->start_ns) / 1e9;
    if (h != NULL)
        ms_load_hist_summary(h, &res->latency);
    free(h);
}

int ms_load_run(const struct ms_load_config *cfg, struct ms_load_result *res,
                char *errmsg, size_t errmsg_size)
{
    struct run r;
    struct timeval tv;
    uint64_t e0 = 0, o0 = 0, b0 = 0, a0 = 0, e1 = 0, o1 = 0, b1 = 0, a1 = 0;
    bool ok0 = false, ok1 = false;
    int rc;

    memset(res, 0, sizeof(*res));
    memset(&r, 0, sizeof(r));
    r.cfg = cfg;
    if ((rc = ms_load_config_check(cfg, errmsg, errmsg_size)) != 0)
        return rc;
    r.conns = cfg->conns ? cfg->conns : cfg->clients;
    r.threads = cfg->threads ? cfg->threads : 1;
    for (size_t i = 0; i < cfg->n_endpoints; i++)
        if ((rc = endpoint_resolve(cfg->endpoints[i], &r.eps[i], errmsg,
                                   errmsg_size)) != 0)
            return rc;
    /* Reachability first: no load is sent to a dead first endpoint. */
    if ((rc = read_counters(cfg, &e0, &o0, &b0, &a0, &ok0, errmsg, errmsg_size)) !=
        0)
        return rc;
    r.cl = calloc(cfg->clients, sizeof(*r.cl));
    r.wk = calloc(r.threads, sizeof(*r.wk));
    r.key_state = calloc(cfg->key_space, sizeof(*r.key_state));
    r.acked = calloc(cfg->key_space, sizeof(*r.acked));
    if (r.cl == NULL || r.wk == NULL || r.key_state == NULL ||
        r.acked == NULL) {
        rc = ms_seterr(errmsg, errmsg_size, MS_ENOMEM, "out of memory");
        goto err;
    }
    /* sequence numbers grow across runs too: they start at the time in
     * microseconds, so a later run's puts are newer than an earlier one's */
    gettimeofday(&tv, NULL);
    r.seq_base = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
    if ((rc = setup_workers(&r, errmsg, errmsg_size)) != 0)
        goto err;
    if (cfg->op == MS_LOAD_OP_RANGE || cfg->op == MS_LOAD_OP_MIXED) {
        uint64_t ok = 0;
        run_phase(&r, PHASE_PRELOAD, 0, 0);
        for (unsigned t = 0; t < r.threads; t++)
            ok += r.wk[t].preload_ok;
        res->preloaded = ok;
        if (ok == 0 && !(cfg->cancel != NULL && *cfg->cancel)) {
            rc = ms_seterr(errmsg, errmsg_size, MS_EIO,
                           "preload: no put succeeded: %s",
                           r.wk[0].first_error);
            goto err;
        }
        for (unsigned t = 0; t < r.threads; t++)
            r.wk[t].first_error[0] = '\0';
        if ((rc = read_counters(cfg, &e0, &o0, &b0, &a0, &ok0, errmsg,
                                errmsg_size)) != 0)
            goto err;
    }
    for (unsigned t = 0; t < r.threads; t++)
        ms_load_hist_reset(&r.wk[t].hist);
    run_phase(&r, PHASE_MEASURE, cfg->total, cfg->duration_s);
    collect(&r, res);
    res->ops_per_sec =
        res->duration_s > 0 ? (double)res->ops / res->duration_s : 0;
    if (read_counters(cfg, &e1, &o1, &b1, &a1, &ok1, errmsg, errmsg_size) == 0 &&
        ok0 && ok1 && e1 >= e0 && o1 >= o0) {
        res->have_metrics = true;
        res->entries = e1 - e0;
        res->proposed_ops = o1 - o0;
        res->barriers = b1 >= b0 ? b1 - b0 : 0;
        res->disk_writes = a1 >= a0 ? a1 - a0 : 0;
        res->disk_writes_per_sec =
            res->duration_s > 0 ? (double)res->disk_writes / res->duration_s
                                : 0;
        res->ops_per_entry =
            res->entries ? (double)res->proposed_ops / (double)res->entries : 0;
        res->entries_per_sec =
            res->duration_s > 0 ? (double)res->entries / res->duration_s : 0;
    }
    errmsg[0] = '\0';
    rc = 0;
err:
    if (r.wk != NULL)
        for (unsigned t = 0; t < r.threads; t++)
            worker_close(&r.wk[t]);
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
    cJSON *o = cJSON_CreateObject(), *eps, *kinds;
    char name[32], *s;
    int rc = MS_ENOMEM;

    if (o == NULL)
        return MS_ENOMEM;
    cJSON_AddStringToObject(o, "op",
                            ms_load_op_name(cfg->op, cfg->read_pct, name,
                                            sizeof(name)));
    cJSON_AddStringToObject(o, "api", ms_load_api_name(cfg->api));
    cJSON_AddStringToObject(o, "consistency",
                            cfg->serializable ? "s" : "l");
    eps = cJSON_AddArrayToObject(o, "endpoints");
    for (size_t i = 0; eps && i < cfg->n_endpoints; i++)
        cJSON_AddItemToArray(eps, cJSON_CreateString(cfg->endpoints[i]));
    cJSON_AddNumberToObject(o, "clients", cfg->clients);
    cJSON_AddNumberToObject(o, "conns", cfg->conns ? cfg->conns : cfg->clients);
    cJSON_AddNumberToObject(o, "threads", cfg->threads ? cfg->threads : 1);
    cJSON_AddNumberToObject(o, "total", (double)cfg->total);
    cJSON_AddNumberToObject(o, "key_size", (double)cfg->key_size);
    cJSON_AddNumberToObject(o, "value_size", (double)cfg->value_size);
    cJSON_AddNumberToObject(o, "key_space", (double)cfg->key_space);
    cJSON_AddNumberToObject(o, "requests_per_op",
                            ms_load_requests_per_op(cfg->op));
    cJSON_AddNumberToObject(o, "preloaded", (double)res->preloaded);
    cJSON_AddNumberToObject(o, "ops", (double)res->ops);
    cJSON_AddNumberToObject(o, "requests", (double)res->requests);
    cJSON_AddNumberToObject(o, "reads", (double)res->reads);
    cJSON_AddNumberToObject(o, "writes", (double)res->writes);
    cJSON_AddNumberToObject(o, "errors", (double)res->errors);
    kinds = cJSON_AddObjectToObject(o, "errors_by_kind");
    for (size_t i = 0; kinds && i < res->n_error_kinds; i++)
        cJSON_AddNumberToObject(kinds, res->error_kinds[i].kind,
                                (double)res->error_kinds[i].count);
    if (res->first_error[0])
        cJSON_AddStringToObject(o, "first_error", res->first_error);
    cJSON_AddNumberToObject(o, "duration_s", round3(res->duration_s));
    cJSON_AddNumberToObject(o, "ops_per_sec", round3(res->ops_per_sec));
    cJSON_AddNumberToObject(o, "avg_ms", round3(res->latency.avg));
    cJSON_AddNumberToObject(o, "min_ms", round3(res->latency.min));
    cJSON_AddNumberToObject(o, "p50_ms", round3(res->latency.p50));
    cJSON_AddNumberToObject(o, "p90_ms", round3(res->latency.p90));
    cJSON_AddNumberToObject(o, "p99_ms", round3(res->latency.p99));
    cJSON_AddNumberToObject(o, "p999_ms", round3(res->latency.p999));
    cJSON_AddNumberToObject(o, "max_ms", round3(res->latency.max));
    if (res->have_metrics) {
        cJSON_AddNumberToObject(o, "entries", (double)res->entries);
        cJSON_AddNumberToObject(o, "proposed_ops", (double)res->proposed_ops);
        cJSON_AddNumberToObject(o, "barriers", (double)res->barriers);
        cJSON_AddNumberToObject(o, "entries_per_sec",
                                round3(res->entries_per_sec));
        cJSON_AddNumberToObject(o, "disk_writes", (double)res->disk_writes);
        cJSON_AddNumberToObject(o, "disk_writes_per_sec",
                                round3(res->disk_writes_per_sec));
    } else {
        cJSON_AddNullToObject(o, "entries");
        cJSON_AddNullToObject(o, "proposed_ops");
        cJSON_AddNullToObject(o, "barriers");
        cJSON_AddNullToObject(o, "entries_per_sec");
        cJSON_AddNullToObject(o, "disk_writes");
        cJSON_AddNullToObject(o, "disk_writes_per_sec");
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
