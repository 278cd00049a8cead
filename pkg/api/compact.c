/* compact.c - compaction on the loop: the store's sweep in bounded steps
 * between other work, and etcd's auto-compaction (the leader proposes). */
#include "api/server_priv.h"
#include "util/error.h"
#include "util/log.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Records a sweep step looks at, and the loop time one idle callback may
 * spend on steps (then the loop polls for I/O again). */
#define SWEEP_RECORDS 256
#define SWEEP_BUDGET_NS 1000000ull

/* etcd: revision mode looks every 5 minutes; periodic mode samples the
 * revision every tenth of the period (at most an hour) and compacts every
 * period (at most an hour). */
#define REVISION_INTERVAL_MS (5ull * 60 * 1000)
#define HOUR_MS (3600ull * 1000)
#define RETRY_DIVISOR 10

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
                n *= HOUR_MS;
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

static void on_sweep(uv_idle_t *h)
{
    struct ms_server *s = h->data;
    uint64_t start = ms_now_ns();
    char err[MS_ERRMSG_SIZE];
    bool more = true;
    int rc;

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
    if (!more) {
        uv_idle_stop(h);
        s->compact.sweeps_done++;
        ms_info("compaction at revision %" PRId64 " swept in %.1f ms of "
                "loop time",
                ms_store_compact_revision(s->store),
                (double)s->compact.sweep_steps_ns / 1e6);
        s->compact.sweep_steps_ns = 0;
    }
}

void ms_compact_api_kick(struct ms_server *s)
{
    if (s->compact.started && !s->stopping &&
        !uv_is_active((uv_handle_t *)&s->compact.sweep) &&
        ms_store_compact_pending(s->store))
        uv_idle_start(&s->compact.sweep, on_sweep);
}

/* --- auto-compaction --------------------------------------------------------
 */

static void on_compacted(struct ms_proposal *p, int status,
                         const struct ms_result *r)
{
    struct ms_api_compact *ac = p->data;
    int err = status != 0 ? status : r->err;

    ac->in_flight = false;
    if (err == 0 || err == MS_ECOMPACTED) {
        ac->last_success_ms = ms_now_ns() / 1000000;
        ac->prev_rev = ac->op.u.compact.revision;
        ac->auto_compactions += err == 0;
        ms_info("auto-compaction: compacted at revision %" PRId64,
                ac->op.u.compact.revision);
    } else {
        ms_warn("auto-compaction at revision %" PRId64 " failed: %s",
                ac->op.u.compact.revision, ms_strerror(err));
    }
}

static void propose(struct ms_server *s, int64_t rev)
{
    struct ms_api_compact *ac = &s->compact;

    memset(&ac->op, 0, sizeof(ac->op));
    ac->op.type = MS_OP_COMPACT;
    ac->op.u.compact.revision = rev;
    ac->prop.data = ac;
    ac->prop.cb = on_compacted;
    if (ms_batch_submit(&s->bp, &ac->op, &ac->prop) == 0)
        ac->in_flight = true;
}

static void on_auto(uv_timer_t *t)
{
    struct ms_server *s = t->data;
    struct ms_api_compact *ac = &s->compact;
    const struct ms_server_config *c = &s->cfg;
    uint64_t now = ms_now_ns() / 1000000;
    int64_t rev = ms_store_revision(s->store);
    bool lead = !s->stopping && ms_raft_is_leader(&s->raft);

    if (c->auto_compaction_mode == MS_AUTOCOMPACT_REVISION) {
        rev -= (int64_t)c->auto_compaction_retention;
        if (lead && !ac->in_flight && rev > 0 && rev != ac->prev_rev &&
            rev > ms_store_compact_revision(s->store))
            propose(s, rev);
        return;
    }
    /* periodic: revs[0] is the revision of one period ago */
    if (ac->n_revs == ac->cap_revs) {
        memmove(ac->revs, ac->revs + 1, (ac->n_revs - 1) * sizeof(*ac->revs));
        ac->n_revs--;
    }
    ac->revs[ac->n_revs++] = rev;
    if (!lead || ac->in_flight || now - ac->last_success_ms < ac->base_ms)
        return;
    ac->base_ms = c->auto_compaction_retention < HOUR_MS
                      ? c->auto_compaction_retention
                      : HOUR_MS;
    rev = ac->revs[0];
    if (rev > ms_store_compact_revision(s->store))
        propose(s, rev);
    else
        ac->last_success_ms = now; /* nothing new: wait another interval */
}

int ms_compact_api_init(struct ms_server *s)
{
    struct ms_api_compact *ac = &s->compact;
    const struct ms_server_config *c = &s->cfg;
    uint64_t every;

    uv_idle_init(&s->loop, &ac->sweep);
    ac->sweep.data = s;
    uv_timer_init(&s->loop, &ac->timer);
    ac->timer.data = s;
    ac->started = true;
    ms_compact_api_kick(s); /* a rocksdb store reopened mid-sweep */
    if (c->auto_compaction_retention == 0)
        return 0;
    ac->last_success_ms = ms_now_ns() / 1000000;
    if (c->auto_compaction_mode == MS_AUTOCOMPACT_REVISION) {
        every = c->auto_compaction_interval_ms ? c->auto_compaction_interval_ms
                                               : REVISION_INTERVAL_MS;
    } else {
        uint64_t itv = c->auto_compaction_retention < HOUR_MS
                           ? c->auto_compaction_retention
                           : HOUR_MS;
        every = itv / RETRY_DIVISOR;
        ac->base_ms = c->auto_compaction_retention;
        ac->cap_revs =
            (size_t)(c->auto_compaction_retention / (every ? every : 1)) + 1;
        ac->revs = calloc(ac->cap_revs, sizeof(*ac->revs));
        if (ac->revs == NULL)
            return MS_ENOMEM;
        /* etcd samples at the start too: the first compaction, one period
         * from now, is at the revision of now */
        ac->revs[ac->n_revs++] = ms_store_revision(s->store);
    }
    if (every == 0)
        every = 1;
    uv_timer_start(&ac->timer, on_auto, every, every);
    ms_info("auto-compaction: %s mode, retention %" PRIu64 "%s, checked "
            "every %" PRIu64 " ms",
            c->auto_compaction_mode == MS_AUTOCOMPACT_REVISION ? "revision"
                                                               : "periodic",
            c->auto_compaction_retention,
            c->auto_compaction_mode == MS_AUTOCOMPACT_REVISION ? " revisions"
                                                               : " ms",
            every);
    return 0;
}

void ms_compact_api_stop(struct ms_server *s)
{
    if (!s->compact.started)
        return;
    uv_timer_stop(&s->compact.timer);
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
}

void ms_compact_api_free(struct ms_server *s)
{
    free(s->compact.revs);
    s->compact.revs = NULL;
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
                  "metastore_compaction_pending %d\n",
                  s->compact.auto_compactions, s->compact.sweeps_done,
                  ms_store_compact_pending(s->store) ? 1 : 0);
}
