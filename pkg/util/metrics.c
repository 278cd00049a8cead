/* metrics.c - histograms and Prometheus text rendering. */
#include "util/metrics.h"
#include "util/error.h"

#include <time.h>

const double ms_latency_bounds[] = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
const size_t ms_latency_n_bounds =
    sizeof(ms_latency_bounds) / sizeof(ms_latency_bounds[0]);

const double ms_size_bounds[] = {1,  2,   4,   8,   16,   32,  64,
                                 128, 256, 512, 1024, 2048, 4096};
const size_t ms_size_n_bounds =
    sizeof(ms_size_bounds) / sizeof(ms_size_bounds[0]);

void ms_histogram_init(struct ms_histogram *h, const double *bounds,
                       size_t n_bounds)
{
    *h = (struct ms_histogram){0};
    h->bounds = bounds;
    h->n_bounds = n_bounds > MS_HIST_MAX_BUCKETS ? MS_HIST_MAX_BUCKETS
                                                 : n_bounds;
}

void ms_histogram_observe(struct ms_histogram *h, double v)
{
    size_t i = 0;
    while (i < h->n_bounds && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

double ms_histogram_quantile(const struct ms_histogram *h, double q)
{
    uint64_t seen = 0, want;

    if (h->count == 0)
        return 0;
    want = (uint64_t)(q * (double)h->count);
    if (want == 0)
        want = 1;
    for (size_t i = 0; i <= h->n_bounds; i++) {
        seen += h->counts[i];
        if (seen >= want)
            return i < h->n_bounds ? h->bounds[i]
                                   : h->bounds[h->n_bounds - 1];
    }
    return h->bounds[h->n_bounds - 1];
}

int ms_metrics_histogram(struct ms_buf *out, const char *name,
                         const char *help, const char *labels,
                         const struct ms_histogram *h)
{
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    int rc = 0;

    if (help != NULL)
        rc |= ms_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name,
                            help, name);
    for (size_t i = 0; i < h->n_bounds; i++) {
        cum += h->counts[i];
        rc |= ms_buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name,
                            labels, sep, h->bounds[i],
                            (unsigned long long)cum);
    }
    rc |= ms_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels,
                        sep, (unsigned long long)h->count);
    if (labels[0]) {
        rc |= ms_buf_printf(out, "%s_sum{%s} %.9g\n%s_count{%s} %llu\n", name,
                            labels, h->sum, name, labels,
                            (unsigned long long)h->count);
    } else {
        rc |= ms_buf_printf(out, "%s_sum %.9g\n%s_count %llu\n", name, h->sum,
                            name, (unsigned long long)h->count);
    }
    return rc ? MS_ENOMEM : 0;
}

static int sample(struct ms_buf *out, const char *type, const char *name,
                  const char *help, double value)
{
    return ms_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name,
                         help, name, type, name, value);
}

int ms_metrics_counter(struct ms_buf *out, const char *name, const char *help,
                       double value)
{
    return sample(out, "counter", name, help, value);
}

int ms_metrics_gauge(struct ms_buf *out, const char *name, const char *help,
                     double value)
{
    return sample(out, "gauge", name, help, value);
}

uint64_t ms_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
