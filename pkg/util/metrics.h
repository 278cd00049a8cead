/* metrics.h - counters and histograms, rendered in Prometheus text format. */
#ifndef MS_UTIL_METRICS_H
#define MS_UTIL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* A histogram with fixed upper bounds (le), as Prometheus defines it.
 * Single-threaded: observed from the loop thread only. */
#define MS_HIST_MAX_BUCKETS 24

struct ms_histogram {
    const double *bounds; /* ascending upper bounds, borrowed (static) */
    size_t n_bounds;
    uint64_t counts[MS_HIST_MAX_BUCKETS + 1]; /* last: +Inf */
    uint64_t count;
    double sum;
};

/* Bucket bounds for latencies in seconds (50 us .. 10 s) and for sizes
 * (1 .. 4096, powers of two). Static; pass to ms_histogram_init. */
extern const double ms_latency_bounds[];
extern const size_t ms_latency_n_bounds;
extern const double ms_size_bounds[];
extern const size_t ms_size_n_bounds;

void ms_histogram_init(struct ms_histogram *h, const double *bounds,
                       size_t n_bounds);
void ms_histogram_observe(struct ms_histogram *h, double v);

/* Returns the value below which fraction q (0..1) of observations fall,
 * as the upper bound of the bucket reached (0 when empty). */
double ms_histogram_quantile(const struct ms_histogram *h, double q);

/* Appends "# HELP", "# TYPE" and the _bucket/_sum/_count lines for h.
 * labels is "" or "key=\"v\",..." (without braces). */
int ms_metrics_histogram(struct ms_buf *out, const char *name,
                         const char *help, const char *labels,
                         const struct ms_histogram *h);

/* Appends HELP/TYPE and one sample line for a counter or gauge. */
int ms_metrics_counter(struct ms_buf *out, const char *name, const char *help,
                       double value);
int ms_metrics_gauge(struct ms_buf *out, const char *name, const char *help,
                     double value);

/* Monotonic clock in nanoseconds. */
uint64_t ms_now_ns(void);

#endif /* MS_UTIL_METRICS_H */
