/* loopstat.c - event-loop iteration busy time (see loopstat.h). */
#include "util/loopstat.h"

#include "util/error.h"

#include <time.h>

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_prepare(uv_prepare_t *h)
{
    struct ms_loopstat *ls = h->data;
    uint64_t now = uv_hrtime();
    uint64_t idle = uv_metrics_idle_time(h->loop);
    uint64_t busy = now - ls->last_ns;
    uint64_t cpu = thread_cpu_ns();

    if (ls->last_ns == 0) {
        /* the first: everything before it is start-up, not an iteration */
        ls->last_ns = now;
        ls->last_idle_ns = idle;
        ls->last_cpu_ns = cpu;
        return;
    }

    /* idle time only grows; it can lag behind our clock by a hair */
    busy =
        idle - ls->last_idle_ns < busy ? busy - (idle - ls->last_idle_ns) : 0;
    ls->last_ns = now;
    ls->last_idle_ns = idle;
    if (busy > ls->max_ns)
        ls->max_ns = busy;
    if (cpu > ls->last_cpu_ns) {
        if (cpu - ls->last_cpu_ns > ls->cpu_max_ns)
            ls->cpu_max_ns = cpu - ls->last_cpu_ns;
        ms_histogram_observe(&ls->busy_cpu,
                             (double)(cpu - ls->last_cpu_ns) / 1e9);
    } else {
        ms_histogram_observe(&ls->busy_cpu, 0.0);
    }
    ls->last_cpu_ns = cpu;
    ms_histogram_observe(&ls->busy, (double)busy / 1e9);
}

int ms_loopstat_init(struct ms_loopstat *ls, uv_loop_t *loop)
{
    ms_histogram_init(&ls->busy, ms_latency_bounds, ms_latency_n_bounds);
    ms_histogram_init(&ls->busy_cpu, ms_latency_bounds, ms_latency_n_bounds);
    ls->max_ns = 0;
    ls->cpu_max_ns = 0;
    ls->last_cpu_ns = 0;
    uv_prepare_init(loop, &ls->prepare);
    ls->prepare.data = ls;
    if (uv_loop_configure(loop, UV_METRICS_IDLE_TIME) != 0)
        return MS_EINVAL; /* the handle is there to close; it never runs */
    ls->last_ns = 0;
    ls->last_idle_ns = 0;
    uv_prepare_start(&ls->prepare, on_prepare);
    uv_unref((uv_handle_t *)&ls->prepare);
    return 0;
}

void ms_loopstat_close(struct ms_loopstat *ls, uv_close_cb cb)
{
    uv_close((uv_handle_t *)&ls->prepare, cb);
}

int ms_loopstat_metrics(const struct ms_loopstat *ls, struct ms_buf *out)
{
    int rc = ms_metrics_histogram(
        out, "metastore_loop_busy_seconds",
        "Time the event loop spent on one iteration's work (callbacks, "
        "timers, apply), excluding the wait for I/O",
        "", &ls->busy);
    rc |= ms_metrics_histogram(
        out, "metastore_loop_busy_cpu_seconds",
        "CPU time the event-loop thread spent in one iteration (its share "
        "of metastore_loop_busy_seconds actually on a CPU)",
        "", &ls->busy_cpu);
    rc |= ms_metrics_gauge(out, "metastore_loop_stall_max_seconds",
                           "Longest single event-loop iteration since start",
                           (double)ls->max_ns / 1e9);
    return rc | ms_metrics_gauge(
                    out, "metastore_loop_stall_max_cpu_seconds",
                    "Most CPU time the loop thread spent in one iteration "
                    "since start (far below metastore_loop_stall_max_seconds: "
                    "the longest iterations were spent waiting for a CPU)",
                    (double)ls->cpu_max_ns / 1e9);
}
