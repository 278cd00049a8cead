/* policy.c - etcd's auto-compaction policies as a plain state machine. */
#include "compact/policy.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

#define HOUR_MS (3600ull * 1000)
#define RETRY_DIVISOR 10

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

int ms_compact_policy_init(struct ms_compact_policy *p,
                           enum ms_compact_mode mode, uint64_t retention,
                           uint64_t interval_ms, uint64_t now_ms, int64_t rev)
{
    memset(p, 0, sizeof(*p));
    if (retention == 0)
        return MS_EINVAL;
    p->mode = mode;
    p->retention = retention;
    p->last_success_ms = now_ms;
    if (mode == MS_COMPACT_REVISION) {
        p->tick_ms =
            interval_ms ? interval_ms : MS_COMPACT_REVISION_INTERVAL_MS;
        return 0;
    }
    p->tick_ms = min_u64(retention, HOUR_MS) / RETRY_DIVISOR;
    if (p->tick_ms == 0)
        p->tick_ms = 1;
    p->wait_ms = retention;
    p->cap_revs = (size_t)(retention / p->tick_ms) + 1;
    p->revs = calloc(p->cap_revs, sizeof(*p->revs));
    if (p->revs == NULL)
        return MS_ENOMEM;
    /* etcd samples at the start too: the first compaction, one retention
     * from now, is at the revision of now */
    p->revs[p->n_revs++] = rev;
    return 0;
}

void ms_compact_policy_free(struct ms_compact_policy *p)
{
    free(p->revs);
    p->revs = NULL;
}

int64_t ms_compact_tick(struct ms_compact_policy *p, uint64_t now_ms,
                        int64_t rev, int64_t compacted, bool leader)
{
    int64_t at;

    if (p->mode == MS_COMPACT_REVISION) {
        at = rev - (int64_t)p->retention;
        if (!leader || p->in_flight || at <= 0 || at == p->prev_rev ||
            at <= compacted)
            return 0;
        p->in_flight = true;
        return at;
    }
    /* periodic: revs[0] is the revision of one retention ago */
    if (p->n_revs == p->cap_revs) {
        memmove(p->revs, p->revs + 1, (p->n_revs - 1) * sizeof(*p->revs));
        p->n_revs--;
    }
    p->revs[p->n_revs++] = rev;
    if (!leader || p->in_flight || now_ms - p->last_success_ms < p->wait_ms)
        return 0;
    p->wait_ms = min_u64(p->retention, HOUR_MS);
    at = p->revs[0];
    if (at <= compacted) {
        p->last_success_ms = now_ms; /* nothing new: wait another period */
        return 0;
    }
    p->in_flight = true;
    return at;
}

void ms_compact_done(struct ms_compact_policy *p, uint64_t now_ms, int64_t rev,
                     bool ok)
{
    p->in_flight = false;
    if (!ok)
        return;
    p->last_success_ms = now_ms;
    p->prev_rev = rev;
}
