/* loopstat.h - how long each event-loop iteration keeps the loop thread
 * busy (everything but the wait for I/O): a histogram and the longest. */
#ifndef MS_UTIL_LOOPSTAT_H
#define MS_UTIL_LOOPSTAT_H

#include <stdint.h>
#include <uv.h>

#include "util/buf.h"
#include "util/metrics.h"

/*
 * One uv_prepare handle (runs just before the loop waits for I/O): the
 * time since the previous one, less what libuv counted as idle in that
 * interval (uv_metrics_idle_time), is the busy time of one iteration: the
 * longest a request could wait for the loop. The loop must be configured
 * with UV_METRICS_IDLE_TIME before it runs (ms_loopstat_init does it).
 * Loop thread only. The handle is unreferenced: it never keeps the loop
 * alive.
 *
 * The loop thread's CPU clock is read at the same points: an iteration
 * whose wall time is far above its CPU time spent the difference not
 * running (waiting for a CPU, blocked in the kernel, or a virtual CPU the
 * hypervisor did not run), not working.
 */
struct ms_loopstat {
    uv_prepare_t prepare;
    uint64_t last_ns;      /* uv_hrtime at the previous prepare */
    uint64_t last_idle_ns; /* uv_metrics_idle_time then */
    uint64_t max_ns;       /* longest busy iteration since start */
    uint64_t last_cpu_ns;  /* the loop thread's CPU clock then */
    uint64_t cpu_max_ns;   /* most CPU time one iteration took */
    struct ms_histogram busy_cpu; /* seconds of CPU per iteration */
    struct ms_histogram busy; /* seconds */
};

/* Configures loop for idle-time accounting and starts measuring. Call
 * before uv_run. Returns 0 or MS_EINVAL (libuv refused the option: nothing
 * is measured). Either way the handle exists: close it. */
int ms_loopstat_init(struct ms_loopstat *ls, uv_loop_t *loop);

/* Closes the handle (cb may be NULL); ls must live until it has run. */
void ms_loopstat_close(struct ms_loopstat *ls, uv_close_cb cb);

/* Appends metastore_loop_busy_seconds and metastore_loop_busy_cpu_seconds
 * (histograms), metastore_loop_stall_max_seconds and
 * metastore_loop_stall_max_cpu_seconds (gauges) to out. */
int ms_loopstat_metrics(const struct ms_loopstat *ls, struct ms_buf *out);

#endif /* MS_UTIL_LOOPSTAT_H */
