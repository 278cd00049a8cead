/* policy.h - etcd's auto-compaction policies (periodic and revision) as a
 * plain state machine: fed the clock and the store revision, it says when
 * to compact and at which revision. No I/O, no loop: the caller ticks it. */
#ifndef MS_COMPACT_POLICY_H
#define MS_COMPACT_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ms_compact_mode {
    MS_COMPACT_PERIODIC = 0, /* retention: milliseconds of history */
    MS_COMPACT_REVISION = 1, /* retention: revisions kept */
};

/* etcd's revision mode looks every 5 minutes. */
#define MS_COMPACT_REVISION_INTERVAL_MS (5ull * 60 * 1000)

struct ms_compact_policy {
    enum ms_compact_mode mode;
    uint64_t retention;
    uint64_t tick_ms; /* how often the caller must call ms_compact_tick */
    /* private */
    int64_t *revs; /* periodic: revisions sampled, oldest first */
    size_t n_revs, cap_revs;
    uint64_t last_success_ms;
    uint64_t wait_ms; /* periodic: since the last success */
    int64_t prev_rev; /* revision mode: the last one compacted */
    bool in_flight;
};

/* Sets p up at time now_ms with the store at revision rev. retention > 0.
 * interval_ms: revision mode's period between looks (0: etcd's 5
 * minutes); unused in periodic mode, which looks every tenth of the
 * retention (at most every 6 minutes), as etcd. Returns 0 or MS_ENOMEM /
 * MS_EINVAL. Free with ms_compact_policy_free. */
int ms_compact_policy_init(struct ms_compact_policy *p,
                           enum ms_compact_mode mode, uint64_t retention,
                           uint64_t interval_ms, uint64_t now_ms, int64_t rev);
void ms_compact_policy_free(struct ms_compact_policy *p);

/* One look, every p->tick_ms: rev is the store's revision, compacted its
 * compact revision, leader whether this member may propose. Returns the
 * revision to compact at (the caller proposes it, then reports with
 * ms_compact_done), or 0 for nothing now. As etcd: periodic mode compacts
 * first one retention after init, at the revision of then, then every
 * retention (at most every hour) at the revision of one retention ago;
 * revision mode compacts at rev - retention when that moved. Followers
 * keep sampling but never compact. */
int64_t ms_compact_tick(struct ms_compact_policy *p, uint64_t now_ms,
                        int64_t rev, int64_t compacted, bool leader);

/* The proposal of ms_compact_tick's revision ended: ok when it applied
 * (or the revision was compacted already); otherwise the next look
 * retries. */
void ms_compact_done(struct ms_compact_policy *p, uint64_t now_ms, int64_t rev,
                     bool ok);

#endif /* MS_COMPACT_POLICY_H */
