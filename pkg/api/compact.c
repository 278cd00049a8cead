/* compact.c - compaction on the loop: the store's sweep in bounded steps
 * between other work, and etcd's auto-compaction (the leader proposes). */
#include "api/server_priv.h"
#include "util/error.h"
#include "util/log.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Records a sweep step looks at, and the loop time one slice (one idle
 * callback) may spend on steps. After a slice the loop rests for
 * SWEEP_PAUSE_MS: a loop thread that never sleeps uses more than its share
 * of a busy machine's CPU and is the thread the scheduler preempts, for
 * several ms in the middle of whatever it is doing (measured on the rocksdb
 * store: slow slices took 0.4-0.6 ms of CPU and 3-15 ms of wall time, with
 * involuntary context switches). While the engine's flushes lag (rocksdb:
 * a full memtable waiting), slices wait SWEEP_BACKOFF_MS: a sweep commit
 * could block on a write stall, and its deletes add to the backlog. */
#define SWEEP_RECORDS 128
#define SWEEP_BUDGET_NS 500000ull
#define SWEEP_PAUSE_MS 1
#define SWEEP_BACKOFF_MS 10

/* --- parsing -------------------------------------------------------------- */

int ms_server_parse_compaction_mode(const char *s,
                                    enum ms_autocompact_mode *out)
{
    if (strcmp(s, "periodic") == 0)
        *out = MS_AUTOCOMPACT_PERIODIC;
    else if (strcmp(s, "revision") == 0)
        *out = MS_AUTOCOMPACT_REVISION;
    else
        return MS_EINVAL;
    return 0;
}

/* A Go time.ParseDuration subset: one or more <number><unit> with units
 * h, m, s, ms, us, ns (fractions allowed), into milliseconds. */
static int parse_duration_ms(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"ms", 1},      {"us", 1e-3}, {"ns", 1e-6},
                 {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    double total = 0;

    if (*s == '\0')
        return MS_EINVAL;
    while (*s != '\0') {
        char *end;
        double v = strtod(s, &end);
        size_t i;
        if (end == s || v < 0 || *end < 'a' || *end > 'z')
            return MS_EINVAL;
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (strncmp(end, units[i].unit, strlen(units[i].unit)) == 0)
                break;
        if (i == sizeof(units) / sizeof(units[0]))
            return MS_EINVAL;
        total += v * units[i].ms;
        s = end + strlen(units[i].unit);
    }
    if (total > 1e15)
        return MS_EINVAL;
    *out = (uint64_t)total;
    return 0;
}

int ms_server_parse_retention(enum ms_autocompact_mode mode, const char *s,
                              uint64_t *out)
{
    char *end;
    unsigned long long n;

    if (*s >= '0' && *s <= '9') {
        n = strtoull(s, &end, 10);
        if (*end == '\0') {
            /* a bare integer: revisions, or hours in periodic mode */
            if (mode == MS_AUTOCOMPACT_PERIODIC) {
                if (n > 1000000ull * 24 * 365)
                    return MS_EINVAL;
                n *= 3600ull * 1000;
            }
            *out = n;
            return 0;
        }
    }
    if (mode == MS_AUTOCOMPACT_REVISION)
        return MS_EINVAL;
    return parse_duration_ms(s, out);
}

int ms_server_parse_duration_ms(const char *s, uint64_t *out)
{
    return parse_duration_ms(s, out);
}

/* --- the sweep ------------------------------------------------------------ */

static void on_sweep(uv_idle_t *h);

static void on_pause(uv_timer_t *t)
{
    struct ms_server *s = t->data;

    if (s->compact.started && !s->stopping)
        uv_idle_start(&s->compact.sweep, on_sweep);
}

static void on_sweep(uv_idle_t *h)
{
    struct ms_server *s = h->data;
    uint64_t start = ms_now_ns();
    char err[MS_ERRMSG_SIZE];
    bool more = true;
    int rc = 0;

    if (s->compact.sweep_start_ns == 0)
        s->compact.sweep_start_ns = start;
    if (ms_store_compact_should_wait(s->store)) {
        /* the engine is flushing or slowing writes: let it catch up */
        uv_idle_stop(h);
        if (!s->stopping)
            uv_timer_start(&s->compact.pause, on_pause, SWEEP_BACKOFF_MS, 0);
        s->compact.sweep_waits++;
        s->compact.sweep_slice_waits++;
        return;
    }
    do {
        rc = ms_store_compact_step(s->store, SWEEP_RECORDS, &more, err,
                                   sizeof(err));
    } while (rc == 0 && more && ms_now_ns() - start < SWEEP_BUDGET_NS);
    s->compact.sweep_steps_ns += ms_now_ns() - start;
    if (rc != 0) {
        /* the store is unusable, as after a failed apply */
        s->fsm.fatal = rc;
        ms_seterr(s->fsm.errmsg, sizeof(s->fsm.errmsg), rc,
                  "compaction: %.200s", err);
        ms_error("compaction: %s", err);
        more = false;
        ms_server_stop(s, 1);
    }
    uv_idle_stop(h);
    if (more && !s->stopping)
        uv_timer_start(&s->compact.pause, on_pause, SWEEP_PAUSE_MS, 0);
    if (!more) {
        s->compact.sweeps_done++;
        ms_info("compaction at revision %" PRId64 " swept in %.1f ms of "
                "loop time over %.2f s (%" PRIu64 " waits for the engine)",
                ms_store_compact_revision(s->store),
                (double)s->compact.sweep_steps_ns / 1e6,
                (double)(ms_now_ns() - s->compact.sweep_start_ns) / 1e9,
                s->compact.sweep_slice_waits);
        s->compact.sweep_steps_ns = 0;
        s->compact.sweep_start_ns = 0;
        s->compact.sweep_slice_waits = 0;
    }
}

void ms_compact_api_kick(struct ms_server *s)
{
    if (s->compact.started && !s->stopping &&
        !uv_is_active((uv_handle_t *)&s->compact.sweep) &&
        !uv_is_active((uv_handle_t *)&s->compact.pause) &&
        ms_store_compact_pending(s->store))
        uv_idle_start(&s->compact.sweep, on_sweep);
}

/* --- auto-compaction (compact/policy.h decides) ----------------------------
 */

static uint64_t now_ms(void)
{
    return ms_now_ns() / 1000000;
}

static void on_compacted(struct ms_proposal *p, int status,
                         const struct ms_result *r)
{
    struct ms_api_compact *ac = p->data;
    int err = status != 0 ? status : r->err;
    int64_t rev = ac->op.u.compact.revision;

    ms_compact_done(&ac->policy, now_ms(), rev,
                    err == 0 || err == MS_ECOMPACTED);
    if (err == 0 || err == MS_ECOMPACTED) {
        ac->auto_compactions += err == 0;
        ms_info("auto-compaction: compacted at revision %" PRId64, rev);
    } else {
        ms_warn("auto-compaction at revision %" PRId64 " failed: %s", rev,
                ms_strerror(err));
    }
}

static void on_auto(uv_timer_t *t)
{
    struct ms_server *s = t->data;
    struct ms_api_compact *ac = &s->compact;
    bool lead = !s->stopping && ms_raft_is_leader(&s->raft);
    int64_t rev =
        ms_compact_tick(&ac->policy, now_ms(), ms_store_revision(s->store),
                        ms_store_compact_revision(s->store), lead);

    if (rev == 0)
        return;
    memset(&ac->op, 0, sizeof(ac->op));
    ac->op.type = MS_OP_COMPACT;
    ac->op.u.compact.revision = rev;
    ac->prop.data = ac;
    ac->prop.cb = on_compacted;
    if (ms_batch_submit(&s->bp, &ac->op, &ac->prop) != 0)
        ms_compact_done(&ac->policy, now_ms(), rev, false);
}

int ms_compact_api_init(struct ms_server *s)
{
    struct ms_api_compact *ac = &s->compact;
    const struct ms_server_config *c = &s->cfg;
    bool revision = c->auto_compaction_mode == MS_AUTOCOMPACT_REVISION;
    int rc;

    uv_idle_init(&s->loop, &ac->sweep);
    ac->sweep.data = s;
    uv_timer_init(&s->loop, &ac->pause);
    ac->pause.data = s;
    uv_timer_init(&s->loop, &ac->timer);
    ac->timer.data = s;
    ac->started = true;
    ms_compact_api_kick(s); /* a rocksdb store reopened mid-sweep */
    if (c->auto_compaction_retention == 0)
        return 0;
    rc = ms_compact_policy_init(
        &ac->policy, revision ? MS_COMPACT_REVISION : MS_COMPACT_PERIODIC,
        c->auto_compaction_retention, c->auto_compaction_interval_ms, now_ms(),
        ms_store_revision(s->store));
    if (rc != 0)
        return rc;
    ac->auto_on = true;
    uv_timer_start(&ac->timer, on_auto, ac->policy.tick_ms, ac->policy.tick_ms);
    ms_info("auto-compaction: %s mode, retention %" PRIu64 "%s, checked "
            "every %" PRIu64 " ms",
            revision ? "revision" : "periodic", c->auto_compaction_retention,
            revision ? " revisions" : " ms", ac->policy.tick_ms);
    return 0;
}

void ms_compact_api_stop(struct ms_server *s)
{
    if (!s->compact.started)
        return;
    uv_timer_stop(&s->compact.timer);
    uv_timer_stop(&s->compact.pause);
    uv_idle_stop(&s->compact.sweep);
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

void ms_compact_api_close(struct ms_server *s)
{
    if (!s->compact.started)
        return;
    s->compact.started = false;
    uv_close((uv_handle_t *)&s->compact.timer, on_closed);
    uv_close((uv_handle_t *)&s->compact.sweep, on_closed);
    uv_close((uv_handle_t *)&s->compact.pause, on_closed);
}

void ms_compact_api_free(struct ms_server *s)
{
    if (s->compact.auto_on)
        ms_compact_policy_free(&s->compact.policy);
    s->compact.auto_on = false;
}

void ms_compact_api_metrics(struct ms_server *s, struct ms_buf *b)
{
    ms_buf_printf(b,
                  "# HELP metastore_compactions_auto_total Compactions the "
                  "auto-compactor proposed that applied.\n"
                  "# TYPE metastore_compactions_auto_total counter\n"
                  "metastore_compactions_auto_total %" PRIu64 "\n"
                  "# HELP metastore_compaction_sweeps_total Compactions whose "
                  "unreachable versions were removed.\n"
                  "# TYPE metastore_compaction_sweeps_total counter\n"
                  "metastore_compaction_sweeps_total %" PRIu64 "\n"
                  "# HELP metastore_compaction_pending 1 while a compaction's "
                  "sweep is under way.\n"
                  "# TYPE metastore_compaction_pending gauge\n"
                  "metastore_compaction_pending %d\n"
                  "# HELP metastore_compaction_sweep_waits_total Sweep slices "
                  "put off while the storage engine caught up with its "
                  "flushes and compactions.\n"
                  "# TYPE metastore_compaction_sweep_waits_total counter\n"
                  "metastore_compaction_sweep_waits_total %" PRIu64 "\n",
                  s->compact.auto_compactions, s->compact.sweeps_done,
                  ms_store_compact_pending(s->store) ? 1 : 0,
                  s->compact.sweep_waits);
}
