/* tune.h - batch-setting sweep for metastore-tune: the settings to try,
 * the /admin/batch JSON, and the rule that recommends one. */
#ifndef MS_BENCH_TUNE_H
#define MS_BENCH_TUNE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define MS_TUNE_MAX_SETTINGS 32
#define MS_TUNE_MAX_CLIENTS 16

/* Default recommendation bound: p99 at most 1.2 x the best p99 at that
 * client count, or at most 1 ms above it. */
#define MS_TUNE_DEFAULT_P99_RATIO 1.2
#define MS_TUNE_DEFAULT_P99_SLACK_MS 1.0

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
    char label[48]; /* "off", "fixed 100/5000us", "adaptive inflight 4" */
    char mode[16];
    bool has_max_ops, has_max_delay, has_max_inflight;
    uint64_t max_ops, max_delay_us, max_inflight;
};

/* Builds the settings for the comma-separated modes list (each of off,
 * fixed, adaptive at most once, in the order given): off -> "off"; fixed ->
 * (max_ops, max_delay_us) = (10, 100), (100, 5000), (256, 1000); adaptive ->
 * max_inflight 1, 2, 4, 8, 16. Returns 0 with *n set, or MS_EINVAL with
 * errmsg (unknown or repeated mode, empty list). */
int ms_tune_settings(const char *modes, struct ms_tune_setting *out, size_t cap,
                     size_t *n, char *errmsg, size_t errmsg_size);

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

/* A measured point: one setting at one client count. */
struct ms_tune_point {
    bool ok; /* measured (false: run failed or was skipped) */
    double ops_per_sec;
    double p50_ms, p99_ms;
    double ops_per_entry; /* 0 when unknown */
    uint64_t errors;
};

/* The recommendation and why. */
struct ms_tune_verdict {
    size_t best;       /* index of the recommended setting */
    bool within_bound; /* false: no setting met the p99 bound at every
                          client count; best is the one with fewest
                          misses, then the highest score */
    double score[MS_TUNE_MAX_SETTINGS];    /* geometric mean of ops/s / best */
    unsigned misses[MS_TUNE_MAX_SETTINGS]; /* client counts out of bound */
    bool eligible[MS_TUNE_MAX_SETTINGS];
};

/* Recommends a setting from pts (row-major: pts[s * n_clients + c]) for
 * n_settings settings (<= MS_TUNE_MAX_SETTINGS) and n_clients client
 * counts. The rule: at each client count, best_ops = the highest ops/s and
 * best_p99 = the lowest p99 of the points measured there. A point is in
 * bound when it was measured, had no errors, and its p99 <=
 * max(ratio * best_p99, best_p99 + slack_ms). A setting's score is the
 * geometric mean over client counts of ops/s / best_ops (1 = the fastest
 * everywhere; a point not measured counts as 0.01). The recommendation is
 * the setting with the highest score among those in bound at every client
 * count; when there is none, the one with the fewest out-of-bound points,
 * then the highest score. Ties go to the earlier setting. Returns 0, or
 * MS_EINVAL (no settings, no client counts, too many settings). */
int ms_tune_recommend(const struct ms_tune_point *pts, size_t n_settings,
                      size_t n_clients, double ratio, double slack_ms,
                      struct ms_tune_verdict *out);

#endif /* MS_BENCH_TUNE_H */
