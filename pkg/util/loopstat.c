/* loopstat.c - event-loop iteration busy time (see loopstat.h). */
#include "util/loopstat.h"

#include "util/error.h"

static void on_prepare(uv_prepare_t *h)
{
    struct ms_loopstat *ls = h->data;
    uint64_t now = uv_hrtime();
    uint64_t idle = uv_metrics_idle_time(h->loop);
    uint64_t busy = now - ls->last_ns;

    if (ls->last_ns == 0) {
        /* the first: everything before it is start-up, not an iteration */
        ls->last_ns = now;
        ls->last_idle_ns = idle;
        return;
    }

    /* idle time only grows; it can lag behind our clock by a hair */
    busy =
        idle - ls->last_idle_ns < busy ? busy - (idle - ls->last_idle_ns) : 0;
    ls->last_ns = now;
    ls->last_idle_ns = idle;
    if (busy > ls->max_ns)
        ls->max_ns = busy;
    ms_histogram_observe(&ls->busy, (double)busy / 1e9);
}

int ms_loopstat_init(struct ms_loopstat *ls, uv_loop_t *loop)
{
    ms_histogram_init(&ls->busy, ms_latency_bounds, ms_latency_n_bounds);
    ls->max_ns = 0;
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
    return rc | ms_metrics_gauge(out, "metastore_loop_stall_max_seconds",
                                 "Longest single event-loop iteration since "
                                 "start",
                                 (double)ls->max_ns / 1e9);
}
