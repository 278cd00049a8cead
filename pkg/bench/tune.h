/* tune.h - batch-setting sweep for metastore-tune: the settings to try,
 * the /admin/batch JSON, the rule that recommends one, the SVG plot, and
 * a throw-away local cluster to run the sweep on. */
#ifndef MS_BENCH_TUNE_H
#define MS_BENCH_TUNE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/buf.h"
#include "util/error.h"

#define MS_TUNE_MAX_SETTINGS 64
#define MS_TUNE_MAX_CLIENTS 16
#define MS_TUNE_MAX_VALUES 8
#define MS_TUNE_MAX_NODES 3

/* The batch settings of a server, as GET/PUT /admin/batch carry them. */
struct ms_tune_batch {
    char mode[16]; /* "off", "fixed", "adaptive" */
    uint64_t max_ops;
    uint64_t max_bytes;
    uint64_t max_delay_us;
    uint64_t max_inflight;
};

/* One setting of the sweep. Fields not set by the setting (has_* false)
 * keep the server's original values. */
struct ms_tune_setting {
    char label[48]; /* "off", "fixed 100 ops 5000us", "adaptive 256/4" */
    char mode[16];
    bool has_max_ops, has_max_delay, has_max_inflight;
    uint64_t max_ops, max_delay_us, max_inflight;
};

/* The grid a sweep covers: off once; fixed for every (max_ops,
 * max_delay_us); adaptive for every (max_ops, max_inflight). */
struct ms_tune_grid {
    bool off, fixed, adaptive;
    uint64_t max_ops[MS_TUNE_MAX_VALUES];
    size_t n_max_ops;
    uint64_t max_delay_us[MS_TUNE_MAX_VALUES];
    size_t n_max_delay;
    uint64_t max_inflight[MS_TUNE_MAX_VALUES];
    size_t n_max_inflight;
};

/* Fills g with the default grid: all three modes, max_ops 100 and 256,
 * max_delay_us 100 and 5000, max_inflight 1, 4 and 16 (11 settings). */
void ms_tune_grid_default(struct ms_tune_grid *g);

/* Sets the modes of g from a comma-separated list of off, fixed and
 * adaptive (each at most once). Returns 0 or MS_EINVAL with errmsg. */
int ms_tune_parse_modes(const char *s, struct ms_tune_grid *g, char *errmsg,
                        size_t errmsg_size);

/* Parses a comma-separated list of up to MS_TUNE_MAX_VALUES integers in
 * [min, max] into out. Returns 0 with *n set, or MS_EINVAL. */
int ms_tune_parse_values(const char *s, uint64_t min, uint64_t max,
                         uint64_t *out, size_t *n);

/* Expands g into settings, in the order off, fixed (by max_ops, then
 * max_delay), adaptive (by max_ops, then max_inflight). Returns 0 with *n
 * set, or MS_EINVAL with errmsg (no mode, more than cap settings). */
int ms_tune_grid_settings(const struct ms_tune_grid *g,
                          struct ms_tune_setting *out, size_t cap, size_t *n,
                          char *errmsg, size_t errmsg_size);

/* Parses one explicit setting: "off", "fixed:OPS/DELAY_US",
 * "adaptive:OPS/INFLIGHT", or "fixed" / "adaptive" alone (the server's
 * own values for the rest). Returns 0 or MS_EINVAL with errmsg. */
int ms_tune_parse_setting(const char *s, struct ms_tune_setting *out,
                          char *errmsg, size_t errmsg_size);

/* Parses the JSON object of GET /admin/batch (text[0..len)) into *out.
 * Returns 0 or MS_EMALFORMED with errmsg naming the field. */
int ms_tune_batch_parse(const char *text, size_t len, struct ms_tune_batch *out,
                        char *errmsg, size_t errmsg_size);

/* Appends the PUT /admin/batch body for all fields of b. Returns 0 or
 * MS_ENOMEM. */
int ms_tune_batch_json(const struct ms_tune_batch *b, struct ms_buf *out);

/* The full settings that s means on a server whose settings were base. */
void ms_tune_apply(const struct ms_tune_batch *base,
                   const struct ms_tune_setting *s, struct ms_tune_batch *out);

/* A measured point: one setting at one client count (medians over the
 * rounds when there are several). */
struct ms_tune_point {
    bool ok; /* measured (false: run failed or was skipped) */
    double ops_per_sec;
    double p50_ms, p99_ms;
    double ops_per_entry;   /* 0 when unknown */
    double entries_per_sec; /* 0 when unknown */
    uint64_t errors;
    double barriers_per_sec; /* read barriers (log entries too); 0 unknown */
};

/* The recommendation and why. */
struct ms_tune_verdict {
    size_t best;       /* index of the recommended setting */
    bool within_bound; /* false: no setting kept p99 <= max_p99 without
                          errors at every client count; best is the one
                          with fewest misses, then the highest score */
    double score[MS_TUNE_MAX_SETTINGS];    /* geometric mean of ops/s / best */
    unsigned misses[MS_TUNE_MAX_SETTINGS]; /* client counts out of bound */
    bool eligible[MS_TUNE_MAX_SETTINGS];
    /* per client count: the fastest setting in bound there, or SIZE_MAX */
    size_t best_at[MS_TUNE_MAX_CLIENTS];
};

/* Recommends a setting from pts (row-major: pts[s * n_clients + c]) for
 * n_settings (<= MS_TUNE_MAX_SETTINGS) settings and n_clients (<=
 * MS_TUNE_MAX_CLIENTS) client counts. A point is in bound when it was
 * measured, had no errors and its p99 <= max_p99_ms. At each client count
 * best_at is the fastest point in bound. A setting's score is the
 * geometric mean over client counts of its ops/s over the highest ops/s
 * measured there (1 = the fastest everywhere; a point not measured counts
 * as 0.01). The recommendation is the highest score among settings in
 * bound at every client count; when there is none, the setting with the
 * fewest points out of bound, then the highest score. Ties go to the
 * earlier setting. Returns 0, or MS_EINVAL (counts out of range). */
int ms_tune_recommend(const struct ms_tune_point *pts, size_t n_settings,
                      size_t n_clients, double max_p99_ms,
                      struct ms_tune_verdict *out);

/* Median of v[0..n) (the mean of the middle two when n is even); sorts v.
 * 0 when n == 0. */
double ms_tune_median(double *v, size_t n);

/* Appends an SVG document (hand-written XML, no dependency) plotting
 * throughput (y, ops/s) against p99 latency (x, ms, log scale) for every
 * setting: one colour per setting, its measured points joined in client
 * order and labelled with the client count, a legend, and a dashed line
 * at max_p99_ms (none when <= 0). labels[s] are the settings' names,
 * pts as for ms_tune_recommend. Returns 0 or MS_ENOMEM. */
int ms_tune_plot_svg(const char *title, const char *const *labels,
                     const unsigned *clients, const struct ms_tune_point *pts,
                     size_t n_settings, size_t n_clients, double max_p99_ms,
                     struct ms_buf *out);

/* --- a local cluster for the sweep ------------------------------------ */

/* A cluster of 1 or 3 metastore-server processes started by
 * ms_tune_cluster_start in a fresh temporary directory on loopback ports.
 * Fields are read-only for the caller. */
struct ms_tune_cluster {
    char dir[256]; /* temporary directory, removed by stop */
    unsigned nodes;
    pid_t pids[MS_TUNE_MAX_NODES]; /* 0: not running */
    char urls[MS_TUNE_MAX_NODES][64];
};

/* Starts nodes (1..MS_TUNE_MAX_NODES) members of a new cluster: server
 * (path of metastore-server), data in <tmpdir>/metastore-tune.XXXXXX/nI,
 * logs in nI.log beside, with --storage storage and --codec codec (NULL:
 * the server's default), then extra[0..n_extra) (borrowed), and waits up
 * to timeout_ms for every member's /health to answer 200. Each server
 * runs in its own process group and gets SIGTERM if this process dies.
 * Returns 0, or MS_EIO / MS_ETIMEOUT / MS_ENOMEM with errmsg (quoting the
 * end of the failing member's log); on failure everything started is
 * stopped and removed. */
int ms_tune_cluster_start(struct ms_tune_cluster *cl, const char *server,
                          unsigned nodes, const char *storage,
                          const char *codec, const char *const *extra,
                          size_t n_extra, uint64_t timeout_ms, char *errmsg,
                          size_t errmsg_size);

/* Stops every member by PID (SIGTERM, then SIGKILL after 10 s), reaps it
 * and removes the directory. Safe to call twice. Returns 0, or MS_EIO when
 * a member had to be killed or exited with a failure. */
int ms_tune_cluster_stop(struct ms_tune_cluster *cl);

#endif /* MS_BENCH_TUNE_H */
