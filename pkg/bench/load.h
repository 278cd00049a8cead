/* load.h - closed-loop HTTP load generator against metastore servers, as a
 * library for metastore-bench load and metastore-tune. */
#ifndef MS_BENCH_LOAD_H
#define MS_BENCH_LOAD_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/buf.h"
#include "util/error.h"

/*
 * Model: `clients` simulated clients, each with one keep-alive connection
 * to one endpoint (client i uses endpoint i mod n_endpoints). A client
 * sends its next request only when the previous one has been answered
 * (closed loop). One "op" is one iteration of a client's loop:
 *
 *   put     one put of a new key                         (1 request)
 *   get     one linearizable get of a preloaded key      (1 request)
 *   putget  a put of a new key, then a get of that key   (2 requests)
 *   mixed   20% puts / 80% gets over the preloaded keys  (1 request)
 *
 * Every get checks the value it reads against the value last written to
 * that key (only its own client writes a key), so a stale or wrong read is
 * counted as an error of kind "bad_value". An op fails at its first failed
 * request; latency is measured per successful op, from its first request
 * to its last answer.
 */

enum ms_load_workload {
    MS_LOAD_PUT = 0,
    MS_LOAD_GET = 1,
    MS_LOAD_PUTGET = 2,
    MS_LOAD_MIXED = 3,
};

enum ms_load_api {
    MS_LOAD_API_V3 = 0,   /* POST /v3/kv/put, /v3/kv/range (base64 JSON) */
    MS_LOAD_API_REST = 1, /* PUT and GET /kv/<key> */
};

#define MS_LOAD_MAX_ENDPOINTS 16
#define MS_LOAD_MAX_CLIENTS 4096
#define MS_LOAD_MAX_VALUE 1048576
#define MS_LOAD_MAX_PREFIX 128
/* Keys per client written before a get or mixed run (fewer when the run
 * has fewer ops per client). */
#define MS_LOAD_PRELOAD_KEYS 100
/* Percentage of puts in the mixed workload. */
#define MS_LOAD_MIXED_PUT_PCT 20
#define MS_LOAD_MAX_ERROR_KINDS 16

struct ms_load_config {
    const char *endpoints[MS_LOAD_MAX_ENDPOINTS]; /* URLs, borrowed */
    size_t n_endpoints;
    unsigned clients;        /* 1..MS_LOAD_MAX_CLIENTS */
    uint64_t ops_per_client; /* > 0: run this many ops per client */
    double duration_s;       /* used when ops_per_client == 0 */
    enum ms_load_workload workload;
    enum ms_load_api api;
    size_t value_size;           /* 1..MS_LOAD_MAX_VALUE */
    const char *key_prefix;      /* borrowed; at most MS_LOAD_MAX_PREFIX */
    uint64_t request_timeout_ms; /* 0: 10000 */
    FILE *progress; /* one line per second while running; NULL: none */
    /* When set and it becomes non-zero, no new op starts and the run ends
     * once the ops in flight are answered. Borrowed. */
    const volatile sig_atomic_t *cancel;
};

/* Fills c with the defaults: 50 clients x 1000 ops, putget, v3, 12-byte
 * values, prefix "load/", no endpoints. */
void ms_load_config_default(struct ms_load_config *c);

/* Latency figures, in milliseconds. */
struct ms_load_latency {
    double avg, p50, p90, p99, max;
};

struct ms_load_error_kind {
    char kind[24]; /* "http_503", "connection", "timeout", "bad_value", ... */
    uint64_t count;
};

struct ms_load_result {
    uint64_t ops;      /* ops that succeeded */
    uint64_t requests; /* HTTP requests answered with the expected status */
    uint64_t errors;   /* ops that failed */
    struct ms_load_error_kind error_kinds[MS_LOAD_MAX_ERROR_KINDS];
    size_t n_error_kinds;
    char first_error[MS_ERRMSG_SIZE]; /* first failure's message, or "" */
    double duration_s;                /* first op started .. last op answered */
    double ops_per_sec;               /* ops / duration_s */
    struct ms_load_latency latency;
    /* From GET /metrics of every endpoint, summed, before and after the
     * measured phase (a preload is not counted). */
    bool have_metrics;     /* false when some endpoint gave none */
    uint64_t entries;      /* metastore_batch_entries_proposed_total */
    uint64_t proposed_ops; /* metastore_batch_ops_proposed_total */
    double ops_per_entry;  /* proposed_ops / entries; 0 with no entries */
};

/* Parses "put|get|putget|mixed" and "v3|rest". Return 0 or MS_EINVAL. */
int ms_load_parse_workload(const char *s, enum ms_load_workload *out);
int ms_load_parse_api(const char *s, enum ms_load_api *out);
const char *ms_load_workload_name(enum ms_load_workload w);
const char *ms_load_api_name(enum ms_load_api a);

/* HTTP requests one op of workload w sends (2 for putget, 1 otherwise). */
unsigned ms_load_requests_per_op(enum ms_load_workload w);

/* Checks cfg (endpoint URLs parse, ranges). Returns 0 or MS_EINVAL with
 * errmsg naming the field. */
int ms_load_config_check(const struct ms_load_config *cfg, char *errmsg,
                         size_t errmsg_size);

/* Runs the load described by cfg (borrowed) on a private libuv loop and
 * fills *res. Before the run it reads /metrics from every endpoint; when
 * the first endpoint does not answer it returns MS_EIO with errmsg saying
 * so and sends no load. Returns 0 once the run ended, however many ops
 * failed (see res->errors), or MS_EINVAL / MS_EIO / MS_ENOMEM with
 * errmsg. The caller should ignore SIGPIPE: a server that closes a
 * connection while a request is being written would otherwise end the
 * process. */
int ms_load_run(const struct ms_load_config *cfg, struct ms_load_result *res,
                char *errmsg, size_t errmsg_size);

/* Writes res as one JSON object (no newline) with the settings of cfg:
 * workload, api, clients, endpoints, value_size, ops, requests,
 * duration_s, ops_per_sec, latency_ms {avg,p50,p90,p99,max}, errors,
 * errors_by_kind {kind: count}, entries, proposed_ops, ops_per_entry
 * (null when unknown). Returns 0 or MS_ENOMEM. */
int ms_load_result_json(const struct ms_load_config *cfg,
                        const struct ms_load_result *res, struct ms_buf *out);

/* --- building blocks, public for the tests and tools ------------------ */

/* Parses a decimal integer in [min, max] (no sign, no trailing text).
 * Returns 0 or MS_EINVAL. */
int ms_load_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Parses a decimal number of seconds, 0 < x <= max. 0 or MS_EINVAL. */
int ms_load_parse_seconds(const char *s, double max, double *out);

/* Splits the comma-separated list s into up to cap items, each a pointer
 * into buf (a copy of s, size bytes); empty items are refused. Returns 0
 * with *n set, or MS_EINVAL (empty item, too many, s too long). */
int ms_load_split_list(const char *s, char *buf, size_t size,
                       const char **items, size_t cap, size_t *n);

/* Writes key number idx of client into out (NUL-terminated):
 * "<prefix>c<client:04>/k<idx:08>". Returns the length, or 0 when out
 * (size bytes) is too small. */
size_t ms_load_key(char *out, size_t size, const char *prefix, unsigned client,
                   uint64_t idx);

/* Fills out[0..size) with the value version ver of key idx of client:
 * printable bytes from [A-Za-z0-9+/], a function of the arguments only, so
 * a reader can recompute what a writer wrote. */
void ms_load_value(uint8_t *out, size_t size, unsigned client, uint64_t idx,
                   uint32_t ver);

/* Nearest-rank percentile p (0 < p <= 100) of sorted[0..n): the value at
 * rank ceil(p / 100 * n) (1-based). 0 when n == 0. */
double ms_load_percentile(const double *sorted, size_t n, double p);

/* Sorts samples[0..n) (milliseconds) in place and summarises them into
 * *out (all zero when n == 0). */
void ms_load_latency_summary(double *samples, size_t n,
                             struct ms_load_latency *out);

/* Finds the unlabelled sample "name value" in Prometheus text[0..len) and
 * stores its value. Returns 0, or MS_ENOTFOUND. */
int ms_load_metric_value(const char *text, size_t len, const char *name,
                         double *out);

/* One blocking HTTP request to url's server (base path of url prepended to
 * path) on a private loop: method, body (may be NULL), JSON content type
 * when body is set. On 0, *status is the HTTP status and resp (appended to;
 * caller frees) holds the body. Errors: MS_EINVAL (bad URL), MS_EIO
 * (connect, reset), MS_ETIMEOUT, MS_ENOMEM, with errmsg naming the URL. */
int ms_load_http(const char *url, const char *method, const char *path,
                 const char *body, uint64_t timeout_ms, int *status,
                 struct ms_buf *resp, char *errmsg, size_t errmsg_size);

#endif /* MS_BENCH_LOAD_H */
