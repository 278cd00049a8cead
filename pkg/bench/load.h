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
 * Model: `clients` simulated clients share `conns` keep-alive TCP
 * connections (client i uses connection i mod conns; connection j goes to
 * endpoint j mod n_endpoints). Clients on one connection pipeline their
 * requests on it (over gRPC: one HTTP/2 stream per request, concurrent). A
 * client sends its next request only when the previous one has been answered
 * (closed loop). One "op" is one iteration of a client's loop:
 *
 *   put       a put of the next key of the key space         (1 request)
 *   range     a get (range of one key) of a random key       (1 request)
 *   txn       a txn: if mod_revision(key) < 2^63-1 (always) then put
 *   mixed     read_pct % ranges of random keys, the rest puts (1 request)
 *   putget    a put of the next key, then a get of that key  (2 requests)
 *
 * Keys are key_size bytes: key_prefix then the key's index in
 * [0, key_space) in decimal, zero-padded. Puts cycle over the key space in
 * order; reads pick a key uniformly. Runs whose op reads random keys
 * (range, mixed) first write every key once (the preload, not measured).
 *
 * Checks: a response counts as a success only with the expected status and
 * body: a put's header revision, a txn's "succeeded":true, a range's value
 * (or no value for a key never written). A value of at least
 * MS_LOAD_SEQ_CHARS bytes carries a write sequence number and bytes derived
 * from (key, sequence), so a read checks the value belongs to its key, and
 * a linearizable read also that it is not older than the newest put of that
 * key acknowledged before the read was sent (keys written by two puts at
 * once are exempt from that check). Failures are counted by kind: "http_NNN",
 * "grpc_N" (a non-zero grpc-status), "connection", "timeout", "bad_value",
 * "stale_read", "bad_response", ...
 * An op fails at its first failed request; latency is measured per
 * successful op, from its first request to its last answer.
 */

enum ms_load_op {
    MS_LOAD_OP_PUT = 0,
    MS_LOAD_OP_RANGE = 1,
    MS_LOAD_OP_TXN = 2,
    MS_LOAD_OP_MIXED = 3,
    MS_LOAD_OP_PUTGET = 4,
};

enum ms_load_api {
    MS_LOAD_API_V3 = 0,   /* POST /v3/kv/put|range|txn (base64 JSON) */
    MS_LOAD_API_REST = 1, /* PUT and GET /kv/<key> */
    MS_LOAD_API_GRPC = 2, /* etcd's gRPC KV.Put|Range|Txn over h2c, many
                             streams per connection */
};

#define MS_LOAD_MAX_ENDPOINTS 16
#define MS_LOAD_MAX_CLIENTS 4096
#define MS_LOAD_MAX_THREADS 16
#define MS_LOAD_MAX_VALUE 1048576
#define MS_LOAD_MAX_KEY 1024
#define MS_LOAD_MAX_PREFIX 128
#define MS_LOAD_MAX_KEY_SPACE 100000000ull
#define MS_LOAD_MAX_ERROR_KINDS 16
/* Leading value bytes that carry the write sequence number. */
#define MS_LOAD_SEQ_CHARS 10

struct ms_load_config {
    const char *endpoints[MS_LOAD_MAX_ENDPOINTS]; /* URLs, borrowed */
    size_t n_endpoints;
    unsigned clients;   /* 1..MS_LOAD_MAX_CLIENTS */
    unsigned conns;     /* 1..clients; 0: one connection per client */
    unsigned threads;   /* event-loop threads, 1..MS_LOAD_MAX_THREADS and
                           at most conns; 0: 1 */
    uint64_t total;     /* ops to run in all; 0: no limit */
    double duration_s;  /* seconds to run; 0: no limit. At least one of
                           total and duration_s is set; the run ends at
                           whichever comes first. */
    enum ms_load_op op;
    unsigned read_pct;  /* mixed: percentage of reads, 0..100 */
    bool serializable;  /* reads with serializable consistency */
    enum ms_load_api api;
    size_t key_size;    /* bytes per key, prefix included */
    size_t value_size;  /* 1..MS_LOAD_MAX_VALUE */
    uint64_t key_space; /* distinct keys, 1..MS_LOAD_MAX_KEY_SPACE */
    const char *key_prefix;      /* borrowed; at most MS_LOAD_MAX_PREFIX */
    uint64_t request_timeout_ms; /* 0: 10000 */
    FILE *progress; /* one line per second while running; NULL: none */
    /* When set and it becomes non-zero, no new op starts and the run ends
     * once the ops in flight are answered. Borrowed. */
    const volatile sig_atomic_t *cancel;
};

/* Fills c with the defaults: the "LargeScale" scenario, 50 clients, one
 * connection each, 50,000 ops of putget, 16-byte keys under "load/",
 * 12-byte values, key space 10,000, linearizable reads, v3, no
 * endpoints. */
void ms_load_config_default(struct ms_load_config *c);

/* --- latency histogram ---------------------------------------------------
 *
 * Log-linear (HDR-style) buckets over nanoseconds: values below
 * 2^(MS_LOAD_HIST_BITS+1) have a bucket each; above, every power of two is
 * split into 2^MS_LOAD_HIST_BITS equal buckets, so a percentile is within
 * 1/2^MS_LOAD_HIST_BITS (0.8%) of the true value. Fixed size (59 KiB)
 * whatever the number of samples; min, max and the sum are exact. */

#define MS_LOAD_HIST_BITS 7
#define MS_LOAD_HIST_BUCKETS                                                   \
    ((2u << MS_LOAD_HIST_BITS) + (63u - MS_LOAD_HIST_BITS) *                   \
                                     (1u << MS_LOAD_HIST_BITS))

struct ms_load_hist {
    uint64_t n, min, max; /* ns; min and max 0 when n == 0 */
    double sum;           /* ns */
    uint64_t counts[MS_LOAD_HIST_BUCKETS];
};

/* Empties h. */
void ms_load_hist_reset(struct ms_load_hist *h);

/* Counts one sample of ns nanoseconds. */
void ms_load_hist_record(struct ms_load_hist *h, uint64_t ns);

/* Adds the samples of src to dst. */
void ms_load_hist_merge(struct ms_load_hist *dst, const struct ms_load_hist *src);

/* Bucket index of value ns, and the largest value of bucket i. */
unsigned ms_load_hist_bucket(uint64_t ns);
uint64_t ms_load_hist_bucket_high(unsigned i);

/* Nearest-rank percentile p (0 < p <= 100): the largest value of the
 * bucket holding the sample of rank ceil(p / 100 * n), clamped to
 * [min, max]. 0 when h is empty. */
uint64_t ms_load_hist_percentile(const struct ms_load_hist *h, double p);

/* Latency figures, in milliseconds. */
struct ms_load_latency {
    double avg, min, p50, p90, p99, p999, max;
};

/* Summarises h into *out (all zero when h is empty). */
void ms_load_hist_summary(const struct ms_load_hist *h,
                          struct ms_load_latency *out);

/* --- results ------------------------------------------------------------ */

struct ms_load_error_kind {
    char kind[24]; /* "http_503", "connection", "timeout", "bad_value", ... */
    uint64_t count;
};

struct ms_load_result {
    uint64_t ops;      /* ops that succeeded */
    uint64_t requests; /* requests (HTTP or gRPC calls) answered and
                          checked as good */
    uint64_t reads, writes; /* successful reads and writes among them */
    uint64_t errors;   /* ops that failed */
    struct ms_load_error_kind error_kinds[MS_LOAD_MAX_ERROR_KINDS];
    size_t n_error_kinds;
    char first_error[MS_ERRMSG_SIZE]; /* first failure's message, or "" */
    uint64_t preloaded; /* keys written by the preload */
    double duration_s;  /* first op started .. last op answered */
    double ops_per_sec; /* ops / duration_s */
    struct ms_load_latency latency;
    /* From GET /metrics of every endpoint, summed, before and after the
     * measured phase (a preload is not counted). */
    bool have_metrics;     /* false when some endpoint gave none */
    uint64_t entries;      /* metastore_batch_entries_proposed_total */
    uint64_t proposed_ops; /* metastore_batch_ops_proposed_total */
    uint64_t barriers;     /* metastore_read_barriers_total (0 if absent) */
    double ops_per_entry;  /* proposed_ops / entries; 0 with no entries */
    double entries_per_sec; /* entries / duration_s */
    uint64_t disk_writes; /* metastore_raft_disk_writes_total: durable
                              (O_DSYNC) log writes, the fsyncs */
    double disk_writes_per_sec;
};

/* Parses an op: "put", "range", "txn", "putget", "mixed:R/W" with R + W =
 * 100 (R% reads), and the aliases "get" (range) and "mixed" (mixed:80/20).
 * Sets *op and *read_pct (100 for range, 0 for put and txn, 50 for
 * putget). Returns 0 or MS_EINVAL. */
int ms_load_parse_op(const char *s, enum ms_load_op *op, unsigned *read_pct);

/* Writes the canonical name of (op, read_pct) into out ("mixed:80/20").
 * Returns out. */
const char *ms_load_op_name(enum ms_load_op op, unsigned read_pct, char *out,
                            size_t size);

/* Parses "v3|rest|grpc". Returns 0 or MS_EINVAL. */
int ms_load_parse_api(const char *s, enum ms_load_api *out);
const char *ms_load_api_name(enum ms_load_api a);

/* HTTP requests one op sends (2 for putget, 1 otherwise). */
unsigned ms_load_requests_per_op(enum ms_load_op op);

/* Checks cfg (endpoint URLs parse, ranges, keys fit key_size). Returns 0
 * or MS_EINVAL with errmsg naming the field. */
int ms_load_config_check(const struct ms_load_config *cfg, char *errmsg,
                         size_t errmsg_size);

/* Runs the load described by cfg (borrowed) on private libuv loops (one
 * per thread) and fills *res. Before the run it reads /metrics from every
 * endpoint; when the first endpoint does not answer it returns MS_EIO with
 * errmsg saying so and sends no load. Returns 0 once the run ended,
 * however many ops failed (see res->errors), or MS_EINVAL / MS_EIO /
 * MS_ENOMEM with errmsg. The caller should ignore SIGPIPE: a server that
 * closes a connection while a request is being written would otherwise end
 * the process. */
int ms_load_run(const struct ms_load_config *cfg, struct ms_load_result *res,
                char *errmsg, size_t errmsg_size);

/* Writes res as one JSON object (no newline) with the settings of cfg:
 * op, api, clients, conns, threads, endpoints, total, key_size,
 * value_size, key_space, consistency; ops, requests, errors, duration_s,
 * ops_per_sec, avg_ms, p50_ms, p90_ms, p99_ms, p999_ms, max_ms,
 * errors_by_kind {kind: count}, first_error (when set), entries,
 * proposed_ops, ops_per_entry, entries_per_sec, barriers, disk_writes,
 * disk_writes_per_sec (null when unknown). Returns 0 or MS_ENOMEM. */
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

/* Writes key idx into out[0..key_size) and a NUL: prefix, then idx in
 * decimal zero-padded to fill key_size bytes. Returns key_size, or 0 when
 * out (size bytes) is too small or idx does not fit the digits left. */
size_t ms_load_key(char *out, size_t size, const char *prefix,
                   size_t key_size, uint64_t idx);

/* Fills out[0..size) with the value of put number seq of key idx:
 * printable bytes from [A-Za-z0-9+/]. With size >= MS_LOAD_SEQ_CHARS the
 * first MS_LOAD_SEQ_CHARS bytes encode seq (6 bits each, most significant
 * first) and the rest derives from (idx, seq); a shorter value derives
 * from idx only. */
void ms_load_value(uint8_t *out, size_t size, uint64_t idx, uint64_t seq);

/* Checks that v[0..len) is a value ms_load_value could have made for key
 * idx in a run of value size `size`. Returns 0 with *seq set (0 for short
 * values), MS_EMALFORMED, or MS_ENOMEM (values over 512 bytes are
 * regenerated in a heap buffer). */
int ms_load_value_check(const uint8_t *v, size_t len, size_t size,
                        uint64_t idx, uint64_t *seq);

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
