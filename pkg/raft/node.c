/* node.c - start and close a Raft node, the fsm glue, proposals, state. */
#include "raft/priv.h"
#include "raft/heap.h"
#include "raft/logstore.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

/* How long ms_raft_close waits for in-flight requests at most before it
 * closes libraft anyway (a leader without quorum steps down, failing them,
 * within an election timeout, so this only bounds a hung disk). */
#define CLOSE_DRAIN_MIN_MS 5000
/* Poll interval while closing. */
#define CLOSE_POLL_MS 5

static void on_timer(uv_timer_t *timer);
static void on_didle(uv_idle_t *h);

void ms_raft_config_init(struct ms_raft_config *c)
{
    memset(c, 0, sizeof *c);
    c->pre_vote = true;
}

int ms_raft__code(int rv)
{
    switch (rv) {
    case 0:
        return 0;
    case RAFT_NOMEM:
        return MS_ENOMEM;
    case RAFT_NOTLEADER:
    case RAFT_LEADERSHIPLOST:
        return MS_ENOTLEADER;
    case RAFT_SHUTDOWN:
        return MS_ESHUTDOWN;
    case RAFT_BADID:
    case RAFT_NOTFOUND:
        return MS_ENOTFOUND;
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
        return MS_EEXISTS;
    case RAFT_BADROLE:
    case RAFT_INVALID:
    case RAFT_NAMETOOLONG:
        return MS_EINVAL;
    case RAFT_TOOBIG:
        return MS_ETOOLARGE;
    case RAFT_CORRUPT:
    case RAFT_MALFORMED:
        return MS_ECORRUPT;
    case RAFT_CANCELED:
        return MS_ECANCELED;
    case RAFT_IOERR:
    case RAFT_UNAUTHORIZED:
        return MS_EIO;
    case RAFT_NOSPACE:
        return MS_ENOSPACE;
    default:
        return MS_ERAFT;
    }
}

int ms_raft__fail(struct ms_raft_priv *p, int rv, const char *what)
{
    int code = ms_raft__code(rv);

    if (p->node != NULL)
        ms_seterr(p->node->errmsg, sizeof p->node->errmsg, code, "raft: %s: %s",
                  what, raft_strerror(rv));
    return code;
}

int ms_raft__can_submit(struct ms_raft *node, const char *what)
{
    struct ms_raft_priv *p;
    int rc;

    rc = ms_raft__usable(node);
    if (rc != 0)
        return rc;
    p = node->priv;
    if (p->in_fsm > 0)
        return ms_seterr(node->errmsg, sizeof node->errmsg, MS_EINVAL,
                         "raft: %s: called from inside a fsm callback", what);
    if (raft_state(&p->raft) != RAFT_LEADER || p->raft.transfer != NULL)
        return ms_seterr(node->errmsg, sizeof node->errmsg, MS_ENOTLEADER,
                         "raft: %s: not the leader", what);
    return 0;
}

/* --- completions, delivered from the loop (node.h: "Calling libraft") */

void ms_raft__defer(struct ms_raft_priv *p, struct ms_raft_done *d)
{
    d->next = NULL;
    if (p->done_tail != NULL)
        p->done_tail->next = d;
    else
        p->done_head = d;
    p->done_tail = d;
    if (p->n_done++ == 0)
        uv_idle_start(&p->didle, on_didle);
}

/* Runs the callbacks of every completed request, oldest first, including
 * those completed meanwhile. */
static void deliver_done(struct ms_raft_priv *p)
{
    struct ms_raft_done *d;

    while ((d = p->done_head) != NULL) {
        p->done_head = d->next;
        if (p->done_head == NULL)
            p->done_tail = NULL;
        p->n_done--;
        d->deliver(d);
    }
    uv_idle_stop(&p->didle);
}

static void on_dcheck(uv_check_t *h)
{
    struct ms_raft_priv *p = h->data;

    if (p->done_head != NULL)
        deliver_done(p);
}

static void on_didle(uv_idle_t *h)
{
    deliver_done(h->data);
}

int ms_raft__usable(struct ms_raft *node)
{
    struct ms_raft_priv *p;

    if (node == NULL || node->priv == NULL)
        return MS_EINVAL;
    p = node->priv;
    if (p->closing)
        return ms_seterr(node->errmsg, sizeof node->errmsg, MS_ESHUTDOWN,
                         "raft: node is shutting down");
    if (!p->started)
        return ms_seterr(node->errmsg, sizeof node->errmsg, MS_EINVAL,
                         "raft: node is not started");
    return 0;
}

/* --- entry framing --- */

int ms_raft_unframe(const uint8_t *buf, size_t len, size_t *payload_len)
{
    size_t pad, i;

    *payload_len = 0;
    if (buf == NULL || len == 0 || len % 8 != 0)
        return MS_ECORRUPT;
    pad = buf[len - 1];
    if (pad < 1 || pad > MS_RAFT_PAD_MAX || pad > len)
        return MS_ECORRUPT;
    for (i = len - pad; i < len - 1; i++)
        if (buf[i] != 0)
            return MS_ECORRUPT;
    *payload_len = len - pad;
    return 0;
}

/* Writes the framing after b->len (growing the capacity if needed,
 * leaving b->len unchanged) and returns the framed length in *framed. */
static int frame(struct ms_buf *b, size_t *framed)
{
    size_t pad = MS_RAFT_PAD_MAX - b->len % MS_RAFT_PAD_MAX;

    if (ms_buf_reserve(b, pad) != 0)
        return MS_ENOMEM;
    memset(b->data + b->len, 0, pad - 1);
    b->data[b->len + pad - 1] = (uint8_t)pad;
    *framed = b->len + pad;
    return 0;
}

/* --- fsm glue --- */

static int fsm_apply(struct raft_fsm *rfsm, const struct raft_buffer *buf,
                     void **result)
{
    struct ms_raft_priv *p = rfsm->data;
    /* libraft 0.15 applies entry last_applied + 1 and bumps last_applied
     * only after this returns (replicationApply). */
    uint64_t index = p->raft.last_applied + 1;
    bool wanted;
    void *res = NULL;
    size_t len;
    int rc;

    *result = NULL;
    if (p->fsm_error != 0)
        return RAFT_IOERR; /* stay stuck rather than skip an entry */

    /* Proposals are kept in index order and leave the list when their
     * callback fires, so the entry has a local waiter iff it is first. */
    wanted = p->raft.state == RAFT_LEADER && p->props_head != NULL &&
             p->props_head->apply.index == index;

    if (ms_raft_unframe(buf->base, buf->len, &len) != 0) {
        /* not written by ms_raft_propose: hand it over whole, the fsm's
         * decoder judges it */
        ms_warn("raft: entry %llu of %zu bytes has no valid framing",
                (unsigned long long)index, buf->len);
        len = buf->len;
    }
    p->log_bytes_since_snap += buf->len;
    p->in_fsm++;
    rc = p->fsm.apply(p->fsm.data, index, buf->base, len, &res);
    if (rc != 0) {
        p->fsm_error = rc;
        ms_error("raft: applying entry %llu failed: %s; node %llu stops "
                 "applying",
                 (unsigned long long)index, ms_strerror(rc),
                 (unsigned long long)p->raft.id);
        if (res != NULL && p->fsm.release != NULL)
            p->fsm.release(p->fsm.data, res);
        p->in_fsm--;
        return RAFT_IOERR;
    }
    if (wanted)
        *result = res;
    else if (res != NULL && p->fsm.release != NULL)
        p->fsm.release(p->fsm.data, res);
    p->in_fsm--;
    return 0;
}

/* The log-size condition: true while the log since the last snapshot is
 * under snapshot_log_percent of that snapshot's bytes. libraft then hears
 * RAFT_BUSY; it would ask again after every apply (copying its
 * configuration each time), so its threshold is raised to about the entry
 * count at which the bytes will be there, at the average entry size so
 * far; snapshot_taken puts it back. */
static bool snapshot_deferred(struct ms_raft_priv *p)
{
    uint64_t want, entries, more;

    if (p->snapshot_log_percent == 0 || p->last_snap_bytes == 0)
        return false;
    want = p->last_snap_bytes * p->snapshot_log_percent / 100;
    if (p->log_bytes_since_snap >= want)
        return false;
    p->snapshots_deferred++;
    entries = p->raft.last_applied - p->raft.log.snapshot.last_index;
    more = (want - p->log_bytes_since_snap) /
               (p->log_bytes_since_snap / (entries ? entries : 1) + 1) +
           1;
    raft_set_snapshot_threshold(&p->raft, entries + more < UINT_MAX
                                              ? (unsigned)(entries + more)
                                              : UINT_MAX);
    return true;
}

/* A snapshot of len bytes was taken (begun when mark bytes had been
 * applied since the last one) or restored (mark: all of them). */
static void snapshot_taken(struct ms_raft_priv *p, size_t len, uint64_t mark)
{
    p->last_snap_bytes = len;
    p->log_bytes_since_snap -=
        mark < p->log_bytes_since_snap ? mark : p->log_bytes_since_snap;
    raft_set_snapshot_threshold(&p->raft, p->snapshot_threshold);
}

/* fsm version 2: libraft hands the buffers back to snapshot_finalize
 * instead of freeing them itself, so they are ours from end to end. */
static int fsm_snapshot(struct raft_fsm *rfsm, struct raft_buffer *bufs[],
                        unsigned *n_bufs)
{
    struct ms_raft_priv *p = rfsm->data;
    struct ms_buf out = MS_BUF_INIT;
    struct raft_buffer *b = NULL;
    size_t len;
    int rc;

    *bufs = NULL;
    *n_bufs = 0;
    if (snapshot_deferred(p))
        return RAFT_BUSY;
    p->in_fsm++;
    rc = p->fsm.snapshot(p->fsm.data, &out);
    p->in_fsm--;
    if (rc == 0 && out.len == 0)
        rc = MS_EINVAL;
    if (rc == 0) {
        b = malloc(sizeof *b);
        if (b == NULL)
            rc = MS_ENOMEM;
    }
    if (rc != 0) {
        ms_buf_free(&out);
        if (!p->snapshot_failing)
            ms_warn("raft: snapshot at index %llu failed: %s; will retry",
                    (unsigned long long)p->raft.last_applied, ms_strerror(rc));
        p->snapshot_failing = true;
        return RAFT_BUSY; /* libraft retries after the next apply */
    }
    b->base = ms_buf_steal(&out, &len);
    b->len = len;
    *bufs = b;
    *n_bufs = 1;
    p->snapshot_failing = false;
    snapshot_taken(p, len, p->log_bytes_since_snap);
    ms_info("raft: node %llu: snapshot at index %llu: %zu bytes",
            (unsigned long long)p->raft.id,
            (unsigned long long)p->raft.last_applied, len);
    return 0;
}

/* fsm version 3 (libraft 0.15, replication.c takeSnapshot): libraft calls
 * this on the loop right after applying entries, with the snapshot
 * labelled last_applied (the index the fsm has just applied); then
 * snapshot_async in its threadpool (io->async_work, uv_work.c) while it
 * goes on applying; then snapshot_finalize on the loop, whether the work
 * or the disk write failed or not, and before raft_close completes
 * (uvMaybeFireCloseCb waits for async work; a snapshot done after
 * raft_close is dropped with RAFT_CANCELED). It starts no other snapshot
 * and installs none from a leader until finalize has run. The buffer array
 * that snapshot_async fills is the one this call leaves empty. */
static int fsm_snapshot_begin(struct raft_fsm *rfsm, struct raft_buffer *bufs[],
                              unsigned *n_bufs)
{
    struct ms_raft_priv *p = rfsm->data;
    void *job = NULL;
    int rc;

    *bufs = NULL;
    *n_bufs = 0;
    if (p->snap_job != NULL)
        return RAFT_BUSY; /* cannot happen: libraft runs one at a time */
    if (snapshot_deferred(p))
        return RAFT_BUSY;
    p->snap_begin_ns = uv_hrtime();
    p->in_fsm++;
    rc = p->fsm.snapshot_begin(p->fsm.data, &job);
    p->in_fsm--;
    if (rc != 0 || job == NULL) {
        if (!p->snapshot_failing)
            ms_warn("raft: snapshot at index %llu failed: %s; will retry",
                    (unsigned long long)p->raft.last_applied,
                    ms_strerror(rc ? rc : MS_EINVAL));
        p->snapshot_failing = true;
        return RAFT_BUSY; /* libraft retries after the next apply */
    }
    p->snap_job = job;
    p->snap_log_mark = p->log_bytes_since_snap;
    p->snap_index = p->raft.last_applied;
    p->snap_began_ns = uv_hrtime();
    p->snap_rc = -1;
    p->snap_put_rc = -1;
    p->snap_len = 0;
    p->snap_ready_ns = 0;
    p->snap_errmsg[0] = '\0';
    return 0;
}

/* Threadpool thread: only the job and the snap_ fields it owns. */
static int fsm_snapshot_async(struct raft_fsm *rfsm, struct raft_buffer *bufs[],
                              unsigned *n_bufs)
{
    struct ms_raft_priv *p = rfsm->data;
    const uint8_t *base = NULL;
    struct raft_buffer *b;
    size_t len = 0;
    int rc;

    *bufs = NULL;
    *n_bufs = 0;
    rc = p->fsm.snapshot_collect(p->snap_job, &base, &len, p->snap_errmsg,
                                 sizeof p->snap_errmsg);
    if (rc == 0 && (base == NULL || len == 0))
        rc = ms_seterr(p->snap_errmsg, sizeof p->snap_errmsg, MS_EINVAL,
                       "snapshot: no bytes produced");
    if (rc == 0 && (b = malloc(sizeof *b)) == NULL)
        rc = ms_seterr(p->snap_errmsg, sizeof p->snap_errmsg, MS_ENOMEM,
                       "snapshot: out of memory");
    p->snap_ready_ns = uv_hrtime();
    p->snap_rc = rc;
    if (rc != 0)
        return rc == MS_ENOMEM ? RAFT_NOMEM : RAFT_IOERR;
    /* libraft only reads the bytes (compressing or writing them) */
    b->base = (void *)base;
    b->len = len;
    *bufs = b;
    *n_bufs = 1;
    p->snap_len = len;
    return 0;
}

static int fsm_snapshot_finalize(struct raft_fsm *rfsm,
                                 struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct ms_raft_priv *p = rfsm->data;
    unsigned i;

    if (p->snap_job != NULL) {
        /* version 3: the bytes belong to the job, the array to us */
        void *job = p->snap_job;
        bool taken = p->snap_rc == 0 && p->snap_put_rc == 0;

        p->snap_job = NULL;
        free(*bufs);
        *bufs = NULL;
        *n_bufs = 0;
        if (taken) {
            p->snapshot_failing = false;
            snapshot_taken(p, p->snap_len, p->snap_log_mark);
            ms_info("raft: node %llu: snapshot at index %llu: %zu bytes "
                    "(%.1f ms on the loop, serialised after %.1f ms; "
                    "%llu entries applied since)",
                    (unsigned long long)p->raft.id,
                    (unsigned long long)p->snap_index, p->snap_len,
                    (double)(p->snap_began_ns - p->snap_begin_ns) / 1e6,
                    (double)(p->snap_ready_ns - p->snap_begin_ns) / 1e6,
                    (unsigned long long)(p->raft.last_applied - p->snap_index));
        } else {
            /* the collect's error, or the log store's (logged there) */
            const char *why = p->snap_rc > 0    ? p->snap_errmsg
                              : p->snap_rc != 0 ? "not collected"
                              : p->snap_put_rc > 0
                                  ? raft_strerror(p->snap_put_rc)
                                  : "not written";
            if (p->closing) {
                ms_info("raft: snapshot at index %llu dropped while "
                        "closing: %s",
                        (unsigned long long)p->snap_index, why);
            } else {
                if (!p->snapshot_failing)
                    ms_warn("raft: snapshot at index %llu failed: %s; will "
                            "retry",
                            (unsigned long long)p->snap_index, why);
                p->snapshot_failing = true;
            }
        }
        p->in_fsm++;
        p->fsm.snapshot_end(p->fsm.data, job, taken);
        p->in_fsm--;
        return 0;
    }
    if (*bufs != NULL) {
        for (i = 0; i < *n_bufs; i++)
            free((*bufs)[i].base);
        free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

/* libraft passes ownership of buf->base on success only (snapshotRestore;
 * on failure its callers free it). */
static int fsm_restore(struct raft_fsm *rfsm, struct raft_buffer *buf)
{
    struct ms_raft_priv *p = rfsm->data;
    int rc;

    p->in_fsm++;
    rc = p->fsm.restore(p->fsm.data, buf->base, buf->len);
    p->in_fsm--;
    if (rc != 0) {
        ms_error("raft: node %llu: restoring a snapshot of %zu bytes "
                 "failed: %s",
                 (unsigned long long)p->raft.id, buf->len, ms_strerror(rc));
        return rc == MS_ENOMEM ? RAFT_NOMEM : RAFT_CORRUPT;
    }
    ms_info("raft: node %llu: restored a snapshot of %zu bytes",
            (unsigned long long)p->raft.id, buf->len);
    snapshot_taken(p, buf->len, p->log_bytes_since_snap);
    raft_free(buf->base);
    buf->base = NULL;
    return 0;
}

/* --- state observation --- */

static void on_lead_barrier(struct raft_barrier *req, int status)
{
    struct ms_raft_priv *p = req->data;

    p->lead_barrier_inflight = false;
    if (status == 0 && p->raft.state == RAFT_LEADER &&
        p->raft.current_term == p->lead_barrier_term)
        p->leader_ready = true;
}

static bool leader_ready(struct ms_raft_priv *p)
{
    return p->leader_ready && p->raft.state == RAFT_LEADER &&
           p->raft.current_term == p->lead_barrier_term;
}

/* Raft thesis 4.2.3: a server rejects (pre-)votes only "within the minimum
 * election timeout of hearing from a current leader". libraft 0.15 rejects
 * them for as long as a follower has a leader at all, i.e. until its own
 * randomized timer fires, so after the leader is cut off the election
 * waits for the slowest follower's timer instead of the fastest one's
 * (measured by tools/netfault failover: median 1.6 s against etcd's 1.2 s
 * at 100/1000 ms). A follower that has not heard from its leader for an
 * election timeout less one heartbeat forgets it, as etcd's check-quorum
 * lease does: it then grants votes and reports no leader. One heartbeat
 * early because this runs once per heartbeat, at its own phase: the first
 * timer to fire (an election timeout or more of silence, seen at libraft's
 * tick) must find the others' leader already forgotten, or its pre-vote
 * is refused and the election waits for the next timer (a third of the
 * isolations at 100/1000 ms). The next AppendEntries sets the leader again
 * (libraft keeps and reuses the address buffer). */
static void forget_silent_leader(struct ms_raft_priv *p)
{
    struct raft *r = &p->raft;

    if (r->state != RAFT_FOLLOWER || r->follower_state.current_leader.id == 0)
        return;
    if (r->io->time(r->io) - r->election_timer_start <
        r->election_timeout - p->heartbeat_ms)
        return;
    r->follower_state.current_leader.id = 0;
}

/* Runs once per heartbeat: notices leadership changes, logs them, appends
 * the first barrier of a new leader's term (libraft 0.15 does not append a
 * no-op on election, so entries of earlier terms would otherwise wait for
 * the next proposal to commit) and tells state_cb. */
static void observe(struct ms_raft_priv *p)
{
    struct raft *r = &p->raft;
    int state = raft_state(r);
    raft_id leader = 0;
    const char *laddr = NULL;
    bool ready;
    int rv;

    raft_leader(r, &leader, &laddr);
    /* on the loop (our timer), never inside libraft: see node.h */
    if (state == RAFT_LEADER && !p->closing && !p->lead_barrier_inflight &&
        p->lead_barrier_term != r->current_term && r->transfer == NULL) {
        p->leader_ready = false;
        p->lead_barrier.data = p;
        rv = raft_barrier(r, &p->lead_barrier, on_lead_barrier);
        if (rv == 0) {
            p->lead_barrier_inflight = true;
            p->lead_barrier_term = r->current_term;
        } else {
            ms_warn("raft: leader barrier: %s; will retry", raft_strerror(rv));
        }
    }
    ready = leader_ready(p);
    if (state == p->seen_state && r->current_term == p->seen_term &&
        leader == p->seen_leader && ready == p->seen_ready &&
        p->fsm_error == p->seen_fsm_error)
        return;

    if (state == RAFT_LEADER && p->seen_state != RAFT_LEADER)
        ms_info("raft: node %llu is leader (term %llu)",
                (unsigned long long)r->id, (unsigned long long)r->current_term);
    else if (state != RAFT_LEADER && leader != p->seen_leader) {
        if (leader != 0)
            ms_info("raft: node %llu follows leader %llu at %s (term %llu)",
                    (unsigned long long)r->id, (unsigned long long)leader,
                    laddr != NULL ? laddr : "?",
                    (unsigned long long)r->current_term);
        else
            ms_info("raft: node %llu has no leader (term %llu)",
                    (unsigned long long)r->id,
                    (unsigned long long)r->current_term);
    }
    if (ready && !p->seen_ready)
        ms_debug("raft: leader %llu ready at index %llu",
                 (unsigned long long)r->id,
                 (unsigned long long)r->last_applied);
    p->seen_state = state;
    p->seen_term = r->current_term;
    p->seen_leader = leader;
    p->seen_ready = ready;
    p->seen_fsm_error = p->fsm_error;
    if (p->state_cb != NULL && p->node != NULL)
        p->state_cb(p->node);
}

/* --- closing --- */

static void on_timer_closed(uv_handle_t *handle)
{
    struct ms_raft_priv *p = handle->data;
    struct ms_raft *node = p->node;
    ms_raft_close_cb cb = p->close_cb;
    struct ms_raft_xfer *x, *next;

    for (x = p->xfers; x != NULL; x = next) {
        next = x->next;
        free(x);
    }
    if (p->lock_fd >= 0)
        close(p->lock_fd);
    free(p->data_dir);
    free(p);
    if (node != NULL) {
        node->priv = NULL;
        if (cb != NULL)
            cb(node);
    }
}

/* libraft 0.15 may report its io closed too early: uvAliveSegmentFinalize
 * takes the last open segment off the queue that uvMaybeFireCloseCb checks
 * before that segment's writer has finished closing, so when the finalize
 * work completes first the close callback fires, and the writer's close
 * callback later calls uvMaybeFireCloseCb again: on freed memory if we
 * released everything at once (a segfault seen in about 1 run in 40 under
 * CPU load), or a second ioCloseCb (double free of r->address, log,
 * configuration). So: the first io close callback is passed on to libraft,
 * later ones are dropped, and the memory libraft may still touch stays
 * allocated for a grace period of a few loop iterations (the writer closes
 * within one or two: it has no work queued when it is closed). */
#define CLOSE_GRACE_TICKS 5
#define CLOSE_GRACE_MS 10

static struct ms_raft_priv *priv_of_io(struct raft_io *io)
{
    return (struct ms_raft_priv *)((char *)io -
                                   offsetof(struct ms_raft_priv, io));
}

static void on_io_closed(struct raft_io *io)
{
    struct ms_raft_priv *p = priv_of_io(io);

    if (p->io_closed) {
        ms_debug("raft: dropped a repeated io close callback");
        return;
    }
    p->io_closed = true;
    p->raft_io_close_cb(io);
}

/* libraft draws every election timer (and nothing else) from io->random,
 * uniformly in [election timeout, 2 election timeouts), and checks it once
 * per heartbeat tick. After the leader is cut off, the first follower's
 * timer decides when the election starts: the minimum of the followers'
 * draws plus up to a tick. Followers draw from a quarter of that spread,
 * 1 to 1.25 election timeouts: measured by tools/netfault failover at
 * 100/1000 ms, 25 isolations each, median new leader 1.46 s with
 * libraft's spread, 1.23 s with half of it, 1.14 s (max 1.27 s) with a
 * quarter; etcd 3.4 1.19-1.36 s (max 2.5-3.4 s). The narrower spread
 * makes two followers fire together more often (their ticks can be in
 * phase: members started together); both then win the pre-vote, split
 * the vote, and wait for their candidate timers. So a candidate draws
 * from a quarter to half an election timeout: a split costs that, and a
 * leader still comes within two election timeouts (the suite saw 1.12 s
 * at 50/500 ms when candidates waited 1 to 1.25 timeouts again). A
 * candidate's timer only bounds one round of (pre-)votes, which take a
 * round trip and a metadata fsync. libraft's spread is kept when a
 * quarter of it is under 2 ticks. */
static int io_random(struct raft_io *io, int min, int max)
{
    struct ms_raft_priv *p = priv_of_io(io);
    int spread = (max - min) / 4;

    if (spread < 2 * (int)p->heartbeat_ms)
        return min + (max > min ? rand() % (max - min) : 0);
    if (p->raft.state == RAFT_CANDIDATE)
        return min / 4 + rand() % (min / 4);
    return min + rand() % spread;
}

/* Counts libraft's log append requests on their way to the log store,
 * which merges the requests queued while a write is in flight into its
 * next write: requests are not writes (ms_logstore_stats counts those). */
static int io_append(struct raft_io *io, struct raft_io_append *req,
                     const struct raft_entry entries[], unsigned n,
                     raft_io_append_cb cb)
{
    struct ms_raft_priv *p = priv_of_io(io);
    int rv = p->ls != NULL ? ms_logstore_append(p->ls, req, entries, n, cb)
                           : RAFT_CANCELED;

    if (rv == 0) {
        p->disk_appends++;
        p->disk_append_entries += n;
    }
    return rv;
}

/* The storage half of the io is ours (logstore.h): libraft's stock uv io
 * closes an AIO context on the loop thread at every snapshot and segment
 * rollover (io_destroy, 20-40 ms here). The stock io keeps the network,
 * the tick timer and async work. */
static int io_load(struct raft_io *io, raft_term *term, raft_id *vote,
                   struct raft_snapshot **snapshot, raft_index *start_index,
                   struct raft_entry *entries[], size_t *n_entries)
{
    return ms_logstore_load(priv_of_io(io)->ls, term, vote, snapshot,
                            start_index, entries, n_entries, io->errmsg);
}

static int io_bootstrap(struct raft_io *io,
                        const struct raft_configuration *conf)
{
    return ms_logstore_bootstrap(priv_of_io(io)->ls, conf, io->errmsg);
}

static int io_recover(struct raft_io *io, const struct raft_configuration *conf)
{
    (void)conf;
    snprintf(io->errmsg, RAFT_ERRMSG_BUF_SIZE,
             "recover: not implemented by metastore's log store");
    return RAFT_IOERR;
}

static int io_set_term(struct raft_io *io, raft_term term)
{
    struct ms_raft_priv *p = priv_of_io(io);

    if (p->ls == NULL)
        return RAFT_CANCELED;
    return ms_logstore_set_term(p->ls, term, io->errmsg);
}

static int io_set_vote(struct raft_io *io, raft_id vote)
{
    struct ms_raft_priv *p = priv_of_io(io);

    if (p->ls == NULL)
        return RAFT_CANCELED;
    return ms_logstore_set_vote(p->ls, vote, io->errmsg);
}

static int io_truncate(struct raft_io *io, raft_index index)
{
    struct ms_raft_priv *p = priv_of_io(io);

    if (p->ls == NULL)
        return RAFT_CANCELED;
    return ms_logstore_truncate(p->ls, index);
}

/* The log store's answer to a snapshot taken here, on its way to
 * libraft's callback. */
static void on_snapshot_put(struct raft_io_snapshot_put *req, int status)
{
    struct raft *r = req->data; /* libraft's own req: data is the raft */
    struct ms_raft_priv *p = r->data;

    p->snap_put_rc = status;
    /* libraft now frees the entries the snapshot covers: off the loop
     * (heap.h says why) */
    ms_raft_heap_defer_begin();
    p->snap_put_cb(req, status);
    ms_raft_heap_defer_end(p->loop);
}

/* libraft can still write a snapshot after the log store has closed:
 * raft_close waits for the fsm's collect (stock io async work) only after
 * the log store is gone, and a collect that succeeds anyway (it finished
 * as it was cancelled) leads straight to snapshot_put. Refused, the
 * snapshot is dropped and finalized like any failed one. */
static int io_snapshot_put(struct raft_io *io, unsigned trailing,
                           struct raft_io_snapshot_put *req,
                           const struct raft_snapshot *snapshot,
                           raft_io_snapshot_put_cb cb)
{
    struct ms_raft_priv *p = priv_of_io(io);
    int rv;

    if (trailing == 0) /* installed from the leader */
        return p->ls != NULL
                   ? ms_logstore_snapshot_put(p->ls, 0, req, snapshot, cb)
                   : RAFT_CANCELED;
    /* one taken here: finalize reports whether it reached the disk */
    p->snap_put_cb = cb;
    rv = p->ls != NULL ? ms_logstore_snapshot_put(p->ls, trailing, req,
                                                  snapshot, on_snapshot_put)
                       : RAFT_CANCELED;
    p->snap_put_rc = rv != 0 ? rv : -1;
    return rv;
}

static int io_snapshot_get(struct raft_io *io, struct raft_io_snapshot_get *req,
                           raft_io_snapshot_get_cb cb)
{
    struct ms_raft_priv *p = priv_of_io(io);

    if (p->ls == NULL)
        return RAFT_CANCELED;
    return ms_logstore_snapshot_get(p->ls, req, cb);
}

/* Closes our own handles (the timer last: its close callback frees p). */
static void close_own_handles(struct ms_raft_priv *p)
{
    /* libraft is closed: whatever it completed last is delivered now */
    deliver_done(p);
    uv_close((uv_handle_t *)&p->dcheck, NULL);
    uv_close((uv_handle_t *)&p->didle, NULL);
    uv_close((uv_handle_t *)&p->timer, on_timer_closed);
}

/* After raft_uv_close (or when raft_uv_init failed): frees the transport
 * chosen in ms_raft_start. */
static void release_transport(struct ms_raft_priv *p)
{
    if (p->tls_transport != NULL) {
        ms_raft_tls_transport_free(p->tls_transport);
        p->tls_transport = NULL;
    } else {
        ms_raft_transport_close(&p->transport);
    }
}

/* The log store first (its writer finishes and every request is called
 * back), then the stock io. */
static void on_logstore_closed(void *arg)
{
    struct ms_raft_priv *p = arg;

    p->ls = NULL;
    p->uv_close_fn(&p->io, on_io_closed);
}

static void io_close(struct raft_io *io, raft_io_close_cb cb)
{
    struct ms_raft_priv *p = priv_of_io(io);

    p->raft_io_close_cb = cb;
    if (p->ls != NULL)
        ms_logstore_close(p->ls, on_logstore_closed, p);
    else
        p->uv_close_fn(io, on_io_closed);
}

/* CRAFT_NOTES rule 3: raft_close, then (here after the grace period)
 * raft_uv_close and the transport close, then our own handle. Never
 * libraft's handles. */
static void on_grace(uv_timer_t *timer)
{
    struct ms_raft_priv *p = timer->data;

    if (--p->grace_ticks > 0)
        return;
    uv_timer_stop(&p->timer);
    raft_uv_close(&p->io);
    release_transport(p);
    close_own_handles(p);
}

static void on_raft_closed(struct raft *r)
{
    struct ms_raft_priv *p = r->data;

    p->grace_ticks = CLOSE_GRACE_TICKS;
    uv_timer_start(&p->timer, on_grace, CLOSE_GRACE_MS, CLOSE_GRACE_MS);
}

static void close_raft(struct ms_raft_priv *p)
{
    p->raft_closing = true;
    uv_timer_stop(&p->timer);
    /* libraft waits for a snapshot's threadpool work before it reports
     * itself closed, and then drops the snapshot: make the work end now */
    if (p->snap_job != NULL && p->fsm.snapshot_cancel != NULL)
        p->fsm.snapshot_cancel(p->snap_job);
    raft_close(&p->raft, on_raft_closed);
}

/* CRAFT_NOTES rule 2: raft_close on a leader with disk appends in flight
 * double-frees in 0.15. Wait for every request we issued and for the
 * leader's own appends, and for a transfer in progress. */
static void maybe_close(struct ms_raft_priv *p)
{
    struct raft *r = &p->raft;
    uint64_t waited = uv_now(p->loop) - p->close_start_ms;
    uint64_t limit = 4 * (uint64_t)p->election_ms;
    bool busy;

    if (limit < CLOSE_DRAIN_MIN_MS)
        limit = CLOSE_DRAIN_MIN_MS;
    /* after an fsm failure nothing applies any more: only the disk
     * appends are worth waiting for */
    busy = (p->fsm_error == 0 && (p->n_props > 0 || p->n_barriers > 0 ||
                                  p->lead_barrier_inflight)) ||
           p->n_done > 0 || r->transfer != NULL ||
           (r->state == RAFT_LEADER && r->last_stored < raft_last_index(r));
    if (busy && waited < limit)
        return;
    if (busy)
        ms_warn("raft: closing with %zu proposals and %zu barriers still "
                "in flight after %llu ms",
                p->n_props, p->n_barriers, (unsigned long long)waited);
    close_raft(p);
}

static void on_close_transfer(struct raft_transfer *t)
{
    struct ms_raft_xfer *x = t->data;
    struct ms_raft_priv *p = x->p;
    raft_id leader = 0;
    const char *addr = NULL;

    raft_leader(&p->raft, &leader, &addr);
    if (leader != 0 && leader != p->raft.id)
        ms_info("raft: handed leadership to %llu before closing",
                (unsigned long long)leader);
    else
        ms_info("raft: no successor took over before closing");
}

/* The voter to hand leadership to on close: one heard from within the
 * last election timeout, the most up to date first; 0 when every other
 * voter seems down (a transfer would only time out). Leader only. */
static raft_id pick_successor(struct raft *r)
{
    raft_index last = raft_last_index(r);
    raft_id best = 0;
    unsigned i;

    for (i = 0; i < r->configuration.n; i++) {
        const struct raft_server *s = &r->configuration.servers[i];
        const struct raft_progress *pr = &r->leader_state.progress[i];

        if (s->id == r->id || s->role != RAFT_VOTER || !pr->recent_recv)
            continue;
        if (pr->match_index == last)
            return s->id;
        if (best == 0)
            best = s->id;
    }
    return best;
}

int ms_raft_close(struct ms_raft *node, ms_raft_close_cb cb)
{
    struct ms_raft_priv *p;

    if (node == NULL || node->priv == NULL)
        return MS_EINVAL;
    p = node->priv;
    if (p->closing)
        return ms_seterr(node->errmsg, sizeof node->errmsg, MS_EINVAL,
                         "raft: node is already closing");
    p->closing = true;
    p->close_cb = cb;
    p->close_start_ms = uv_now(p->loop);

    /* the handover is submitted from the timer, so that closing from
     * any callback never enters libraft from inside it (node.h) */
    p->close_xfer_pending = true;
    uv_timer_start(&p->timer, on_timer, 0, CLOSE_POLL_MS);
    return 0;
}

/* Before closing, a leader with other live voters hands leadership over
 * (see maybe_close). Runs on the timer. */
static void close_handover(struct ms_raft_priv *p)
{
    struct ms_raft_xfer *x;
    raft_id to;
    int rv;

    p->close_xfer_pending = false;
    if (p->in_fsm > 0 || raft_state(&p->raft) != RAFT_LEADER ||
        p->raft.transfer != NULL || (to = pick_successor(&p->raft)) == 0)
        return;
    x = calloc(1, sizeof *x);
    if (x == NULL)
        return;
    x->p = p;
    x->transfer.data = x;
    rv = raft_transfer(&p->raft, &x->transfer, to, on_close_transfer);
    if (rv == 0) {
        x->next = p->xfers;
        p->xfers = x;
    } else {
        ms_warn("raft: leadership transfer before closing: %s",
                raft_strerror(rv));
        free(x);
    }
}

static void on_timer(uv_timer_t *timer)
{
    struct ms_raft_priv *p = timer->data;

    if (p->raft_closing)
        return;
    if (p->started) {
        forget_silent_leader(p);
        observe(p);
    }
    if (p->started && p->closing && p->close_xfer_pending)
        close_handover(p);
    if (p->closing)
        maybe_close(p);
}

/* --- start --- */

/* mkdir -p with mode 0700 for missing components. */
static int make_dir(const char *path, char *errmsg, size_t size)
{
    char buf[4096];
    struct stat st;
    size_t i, n = strlen(path);

    if (n >= sizeof buf)
        return ms_seterr(errmsg, size, MS_EINVAL,
                         "raft: data dir path too long");
    if (stat(path, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return ms_seterr(errmsg, size, MS_EIO,
                             "raft: data dir %s: not a directory", path);
        return 0;
    }
    memcpy(buf, path, n + 1);
    for (i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        buf[i] = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return ms_seterr(errmsg, size, MS_EIO,
                             "raft: data dir %s: mkdir %s: %s", path, buf,
                             strerror(errno));
        if (i < n)
            buf[i] = '/';
    }
    return 0;
}

/* libraft 0.15 does not lock its directory, and two processes on one
 * data dir corrupt each other's log: take an exclusive flock, held until
 * the node is closed. */
static int lock_dir(struct ms_raft_priv *p, char *errmsg, size_t size)
{
    char path[4200];
    int fd;

    snprintf(path, sizeof path, "%s/raft.lock", p->data_dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return ms_seterr(errmsg, size, MS_EIO, "raft: data dir %s: %s: %s",
                         p->data_dir, path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;

        close(fd);
        if (e == EWOULDBLOCK)
            return ms_seterr(errmsg, size, MS_EIO,
                             "raft: data dir %s is in use by another node",
                             p->data_dir);
        return ms_seterr(errmsg, size, MS_EIO, "raft: data dir %s: lock: %s",
                         p->data_dir, strerror(e));
    }
    p->lock_fd = fd;
    return 0;
}

/* Builds the bootstrap configuration: every listed server a voter, this
 * node among them. */
static int initial_conf(struct ms_raft *node,
                        const struct ms_raft_config *config, const char *self,
                        struct raft_configuration *conf)
{
    char addr[MS_RAFT_ADDR_SIZE];
    bool found = false;
    size_t i;
    int rc, rv;

    raft_configuration_init(conf);
    if (config->n_servers == 0 || config->servers == NULL) {
        rv = raft_configuration_add(conf, config->id, self, RAFT_VOTER);
        if (rv != 0)
            goto err_raft;
        return 0;
    }
    for (i = 0; i < config->n_servers; i++) {
        const struct ms_raft_server *s = &config->servers[i];

        if (s->id == 0 || s->address == NULL) {
            rc = ms_seterr(node->errmsg, sizeof node->errmsg, MS_EINVAL,
                           "raft: initial server %zu: id and address "
                           "required",
                           i);
            goto err;
        }
        rc = ms_raft_normalize_address(s->address, addr, sizeof addr,
                                       node->errmsg);
        if (rc != 0) {
            ms_prefixerr(node->errmsg, sizeof node->errmsg,
                         "raft: initial server %llu",
                         (unsigned long long)s->id);
            goto err;
        }
        if (s->id == config->id) {
            found = true;
            if (strcmp(addr, self) != 0) {
                rc = ms_seterr(node->errmsg, sizeof node->errmsg, MS_EINVAL,
                               "raft: initial server %llu: address %s is "
                               "not this node's address %s",
                               (unsigned long long)s->id, addr, self);
                goto err;
            }
        }
        rv = raft_configuration_add(conf, s->id, addr, RAFT_VOTER);
        if (rv != 0)
            goto err_raft;
    }
    if (!found) {
        rc = ms_seterr(node->errmsg, sizeof node->errmsg, MS_EINVAL,
                       "raft: node id %llu is not in the initial cluster",
                       (unsigned long long)config->id);
        goto err;
    }
    return 0;

err_raft:
    rc = ms_seterr(node->errmsg, sizeof node->errmsg,
                   rv == RAFT_NOMEM ? MS_ENOMEM : MS_EINVAL,
                   "raft: initial cluster: %s", raft_strerror(rv));
err:
    raft_configuration_close(conf);
    return rc;
}

/* Releases what a failed start took, through the loop where needed. */
static void abort_start(struct ms_raft *node, struct ms_raft_priv *p)
{
    node->priv = NULL;
    p->node = NULL;
    p->closing = true;
    if (p->have_raft) {
        close_raft(p);
        return;
    }
    close_own_handles(p);
}

static const char *raft_detail(struct ms_raft_priv *p, int rv)
{
    const char *m = raft_errmsg(&p->raft);

    if (m != NULL && m[0] != '\0')
        return m;
    if (p->io.errmsg[0] != '\0')
        return p->io.errmsg;
    /* CRAFT_NOTES: a port in use fails raft_start with RAFT_IOERR and no
     * text; the transport has it */
    if (p->rt != NULL && p->rt->errmsg[0] != '\0')
        return p->rt->errmsg;
    return raft_strerror(rv);
}

int ms_raft_start(struct ms_raft *node, uv_loop_t *loop,
                  const struct ms_raft_config *config,
                  const struct ms_raft_fsm *fsm)
{
    struct raft_configuration conf;
    struct ms_raft_priv *p;
    char addr[MS_RAFT_ADDR_SIZE];
    unsigned hb, el, retry;
    size_t seg;
    int rc, rv;

    if (node == NULL)
        return MS_EINVAL;
    ms_raft_heap_install();
    node->errmsg[0] = '\0';
    node->priv = NULL;
    if (loop == NULL || config == NULL || fsm == NULL)
        return ms_seterr(node->errmsg, sizeof node->errmsg, MS_EINVAL,
                         "raft: loop, config and fsm are required");
    /* CRAFT_NOTES rule 4: a NULL callback crashes libraft later. */
    if (fsm->apply == NULL || fsm->snapshot == NULL || fsm->restore == NULL)
        return ms_seterr(node->errmsg, sizeof node->errmsg, MS_EINVAL,
                         "raft: the fsm needs apply, snapshot and restore");
    if ((fsm->snapshot_begin != NULL) != (fsm->snapshot_collect != NULL) ||
        (fsm->snapshot_begin != NULL) != (fsm->snapshot_end != NULL))
        return ms_seterr(node->errmsg, sizeof node->errmsg, MS_EINVAL,
                         "raft: snapshot_begin, snapshot_collect and "
                         "snapshot_end go together");
    if (config->id == 0)
        return ms_seterr(node->errmsg, sizeof node->errmsg, MS_EINVAL,
                         "raft: node id must be greater than 0");
    if (config->address == NULL || config->data_dir == NULL ||
        config->data_dir[0] == '\0')
        return ms_seterr(node->errmsg, sizeof node->errmsg, MS_EINVAL,
                         "raft: address and data dir are required");
    hb = config->heartbeat_ms ? config->heartbeat_ms
                              : MS_RAFT_DEFAULT_HEARTBEAT_MS;
    el =
        config->election_ms ? config->election_ms : MS_RAFT_DEFAULT_ELECTION_MS;
    if (el <= hb)
        return ms_seterr(node->errmsg, sizeof node->errmsg, MS_EINVAL,
                         "raft: election timeout %u ms must exceed the "
                         "heartbeat interval %u ms",
                         el, hb);
    seg = config->segment_size ? config->segment_size
                               : MS_RAFT_DEFAULT_SEGMENT_SIZE;
    /* CRAFT_NOTES rule 7: libraft wants dotted IPv4. */
    rc = ms_raft_normalize_address(config->address, addr, sizeof addr,
                                   node->errmsg);
    if (rc != 0) {
        ms_prefixerr(node->errmsg, sizeof node->errmsg, "raft");
        return rc;
    }
    rc = make_dir(config->data_dir, node->errmsg, sizeof node->errmsg);
    if (rc != 0)
        return rc;
    raft_configuration_init(&conf);
    if (!config->join) {
        rc = initial_conf(node, config, addr, &conf);
        if (rc != 0)
            return rc;
    }

    /* CRAFT_NOTES rule 1: a peer's death must not kill us. */
    signal(SIGPIPE, SIG_IGN);

    p = calloc(1, sizeof *p);
    if (p == NULL)
        goto err_nomem;
    p->data_dir = strdup(config->data_dir);
    if (p->data_dir == NULL) {
        free(p);
        goto err_nomem;
    }
    p->lock_fd = -1;
    p->node = node;
    p->loop = loop;
    p->fsm = *fsm;
    p->state_cb = config->state_cb;
    p->heartbeat_ms = hb;
    p->election_ms = el;
    p->seen_state = RAFT_UNAVAILABLE;
    snprintf(p->address, sizeof p->address, "%s", addr);
    rv = uv_timer_init(loop, &p->timer);
    if (rv != 0) {
        free(p->data_dir);
        free(p);
        raft_configuration_close(&conf);
        return ms_seterr(node->errmsg, sizeof node->errmsg, MS_EIO,
                         "raft: timer: %s", uv_strerror(rv));
    }
    p->timer.data = p;
    uv_check_init(loop, &p->dcheck);
    p->dcheck.data = p;
    uv_check_start(&p->dcheck, on_dcheck);
    uv_unref((uv_handle_t *)&p->dcheck);
    uv_idle_init(loop, &p->didle);
    p->didle.data = p;
    node->priv = p;

    rc = lock_dir(p, node->errmsg, sizeof node->errmsg);
    if (rc != 0)
        goto err;
    if (config->peer_tls != NULL) {
        rc =
            ms_raft_tls_transport_new(loop, config->peer_tls, &p->tls_transport,
                                      node->errmsg, sizeof node->errmsg);
        if (rc != 0) {
            ms_prefixerr(node->errmsg, sizeof node->errmsg, "raft: peer TLS");
            goto err;
        }
        p->rt = ms_raft_tls_transport_outer(p->tls_transport);
    } else {
        rv = ms_raft_transport_init(&p->transport, loop);
        if (rv != 0) {
            rc = ms_seterr(node->errmsg, sizeof node->errmsg, ms_raft__code(rv),
                           "raft: transport: %s", p->transport.inner.errmsg);
            goto err;
        }
        p->rt = &p->transport.outer;
    }
    rv = raft_uv_init(&p->io, loop, p->data_dir, p->rt);
    if (rv != 0) {
        rc = ms_seterr(node->errmsg, sizeof node->errmsg,
                       rv == RAFT_NOMEM ? MS_ENOMEM : MS_EIO,
                       "raft: data dir %s: %s", p->data_dir,
                       p->io.errmsg[0] ? p->io.errmsg : raft_strerror(rv));
        release_transport(p);
        goto err;
    }
    rc = ms_logstore_open(loop, p->data_dir, seg, &p->ls, node->errmsg,
                          sizeof node->errmsg);
    if (rc != 0) {
        ms_prefixerr(node->errmsg, sizeof node->errmsg, "raft");
        raft_uv_close(&p->io);
        release_transport(p);
        goto err;
    }
    p->uv_close_fn = p->io.close;
    p->io.close = io_close;
    p->io.load = io_load;
    p->io.bootstrap = io_bootstrap;
    p->io.recover = io_recover;
    p->io.set_term = io_set_term;
    p->io.set_vote = io_set_vote;
    p->io.append = io_append;
    p->io.truncate = io_truncate;
    p->io.snapshot_put = io_snapshot_put;
    p->io.snapshot_get = io_snapshot_get;
    p->io.random = io_random;
    retry = el / 2 < 1000 ? el / 2 : 1000;
    raft_uv_set_connect_retry_delay(&p->io, retry);

    /* libraft 0.15's uv io implements async_work but says version 1, so
     * raft_init would refuse an fsm with snapshot_async (raft.c
     * ioFsmCompat); the field is ours, and upstream set it to 2 later
     * (commit 269e541 "uv: set io version to 2"). */
    if (p->io.version < 2 && p->io.async_work != NULL)
        p->io.version = 2;
    p->rfsm.data = p;
    p->rfsm.apply = fsm_apply;
    p->rfsm.restore = fsm_restore;
    p->rfsm.snapshot_finalize = fsm_snapshot_finalize;
    if (fsm->snapshot_begin != NULL && fsm->snapshot_collect != NULL &&
        fsm->snapshot_end != NULL && p->io.version >= 2 &&
        p->io.async_work != NULL) {
        p->rfsm.version = 3;
        p->rfsm.snapshot = fsm_snapshot_begin;
        p->rfsm.snapshot_async = fsm_snapshot_async;
    } else {
        p->rfsm.version = 2;
        p->rfsm.snapshot = fsm_snapshot;
        p->rfsm.snapshot_async = NULL;
    }
    p->raft.data = p;
    rv = raft_init(&p->raft, &p->io, &p->rfsm, config->id, addr);
    if (rv != 0) {
        /* an unwritable directory fails here (RAFT_IOERR) */
        rc =
            ms_seterr(node->errmsg, sizeof node->errmsg,
                      rv == RAFT_NOMEM ? MS_ENOMEM : MS_EIO,
                      "raft: data dir %s: %s", p->data_dir, raft_detail(p, rv));
        ms_logstore_close(p->ls, NULL, NULL);
        p->ls = NULL;
        raft_uv_close(&p->io);
        release_transport(p);
        goto err;
    }
    p->raft.data = p;
    p->have_raft = true;
    raft_set_heartbeat_timeout(&p->raft, hb);
    raft_set_election_timeout(&p->raft, el);
    /* CRAFT_NOTES rule 5 */
    raft_set_install_snapshot_timeout(
        &p->raft, config->install_snapshot_ms
                      ? config->install_snapshot_ms
                      : MS_RAFT_DEFAULT_INSTALL_SNAPSHOT_MS);
    p->snapshot_threshold = config->snapshot_threshold
                                ? config->snapshot_threshold
                                : MS_RAFT_DEFAULT_SNAPSHOT_THRESHOLD;
    raft_set_snapshot_threshold(&p->raft, p->snapshot_threshold);
    p->snapshot_log_percent = config->snapshot_log_percent;
    raft_set_snapshot_trailing(&p->raft,
                               config->snapshot_trailing
                                   ? config->snapshot_trailing
                                   : MS_RAFT_DEFAULT_SNAPSHOT_TRAILING);
    raft_set_pre_vote(&p->raft, config->pre_vote);

    /* CRAFT_NOTES rule 8: bootstrap once; a joining node never. */
    if (!config->join) {
        rv = raft_bootstrap(&p->raft, &conf);
        if (rv == 0) {
            ms_info("raft: bootstrapped a new cluster of %u voter(s) in %s",
                    conf.n, p->data_dir);
        } else if (rv == RAFT_CANTBOOTSTRAP) {
            ms_debug("raft: %s is already bootstrapped", p->data_dir);
        } else {
            rc = ms_seterr(node->errmsg, sizeof node->errmsg,
                           rv == RAFT_NOMEM ? MS_ENOMEM : MS_EIO,
                           "raft: bootstrap %s: %s", p->data_dir,
                           raft_detail(p, rv));
            goto err;
        }
    }
    raft_configuration_close(&conf);

    rv = raft_start(&p->raft);
    if (rv != 0) {
        rc = ms_seterr(node->errmsg, sizeof node->errmsg, ms_raft__code(rv),
                       "raft: start node %llu at %s (data dir %s): %s",
                       (unsigned long long)config->id, addr, p->data_dir,
                       raft_detail(p, rv));
        goto err_started;
    }
    p->started = true;
    uv_timer_start(&p->timer, on_timer, hb, hb);
    ms_info("raft: node %llu listening at %s, data dir %s",
            (unsigned long long)config->id, addr, p->data_dir);
    return 0;

err:
    raft_configuration_close(&conf);
err_started:
    abort_start(node, p);
    return rc;
err_nomem:
    raft_configuration_close(&conf);
    return ms_seterr(node->errmsg, sizeof node->errmsg, MS_ENOMEM,
                     "raft: out of memory");
}

/* --- proposals and barriers --- */

/* Status for a request callback: requests our own raft_close fails (it
 * reports them as leadership lost) read as shutdown. */
static int req_code(struct ms_raft_priv *p, int status)
{
    if (status == RAFT_LEADERSHIPLOST && p->raft_closing)
        return MS_ESHUTDOWN;
    return ms_raft__code(status);
}

static void props_unlink(struct ms_raft_priv *p, struct ms_raft_prop *x)
{
    if (x->prev != NULL)
        x->prev->next = x->next;
    else
        p->props_head = x->next;
    if (x->next != NULL)
        x->next->prev = x->prev;
    else
        p->props_tail = x->prev;
    p->n_props--;
}

static void deliver_applied(struct ms_raft_done *d)
{
    struct ms_raft_prop *x = ms_raft__of(d, struct ms_raft_prop, done);
    struct ms_raft_propose_req *req = x->req;
    int status = x->status;
    void *result = x->result;

    free(x);
    req->cb(req, status, result);
}

/* Inside libraft: record and queue, see node.h. */
static void on_applied(struct raft_apply *a, int status, void *result)
{
    struct ms_raft_prop *x = a->data;
    struct ms_raft_priv *p = x->p;

    props_unlink(p, x);
    x->status = req_code(p, status);
    x->result = x->status == 0 ? result : NULL;
    x->done.deliver = deliver_applied;
    ms_raft__defer(p, &x->done);
}

int ms_raft_propose(struct ms_raft *node, struct ms_raft_propose_req *req,
                    struct ms_buf *payload, ms_raft_propose_cb cb)
{
    struct ms_raft_priv *p;
    struct ms_raft_prop *x;
    struct raft_buffer rb;
    int rc, rv;

    rc = ms_raft__usable(node);
    if (rc != 0)
        return rc;
    p = node->priv;
    if (req == NULL || payload == NULL || payload->len == 0 || cb == NULL)
        return ms_seterr(node->errmsg, sizeof node->errmsg, MS_EINVAL,
                         "raft: propose: empty entry or no callback");
    rc = ms_raft__can_submit(node, "propose");
    if (rc != 0)
        return rc;
    x = calloc(1, sizeof *x);
    if (x == NULL || frame(payload, &rb.len) != 0) {
        free(x);
        return ms_seterr(node->errmsg, sizeof node->errmsg, MS_ENOMEM,
                         "raft: propose: out of memory");
    }
    rb.base = payload->data;
    x->req = req;
    x->p = p;
    x->apply.data = x;
    req->cb = cb;
    req->node = node;
    req->index = 0;

    /* linked first: the list must be complete should libraft ever apply
     * synchronously */
    x->prev = p->props_tail;
    if (p->props_tail != NULL)
        p->props_tail->next = x;
    else
        p->props_head = x;
    p->props_tail = x;
    p->n_props++;
    rv = raft_apply(&p->raft, &x->apply, &rb, 1, on_applied);
    if (rv != 0) {
        props_unlink(p, x);
        free(x);
        return ms_raft__fail(p, rv, "propose");
    }
    req->index = x->apply.index;
    /* the bytes belong to libraft now (it frees them with raft_free, which
     * is free() as we never install a custom raft heap) */
    payload->data = NULL;
    payload->len = 0;
    payload->cap = 0;
    return 0;
}

struct barrier {
    struct raft_barrier barrier;
    struct ms_raft_barrier_req *req;
    struct ms_raft_priv *p;
    struct ms_raft_done done;
    int status;
};

static void deliver_barrier(struct ms_raft_done *d)
{
    struct barrier *x = ms_raft__of(d, struct barrier, done);
    struct ms_raft_barrier_req *req = x->req;
    int status = x->status;

    free(x);
    req->cb(req, status);
}

/* Inside libraft: record and queue, see node.h. */
static void on_barrier(struct raft_barrier *b, int status)
{
    struct barrier *x = b->data;

    x->p->n_barriers--;
    x->status = req_code(x->p, status);
    x->done.deliver = deliver_barrier;
    ms_raft__defer(x->p, &x->done);
}

int ms_raft_barrier(struct ms_raft *node, struct ms_raft_barrier_req *req,
                    ms_raft_barrier_cb cb)
{
    struct ms_raft_priv *p;
    struct barrier *x;
    int rc, rv;

    rc = ms_raft__usable(node);
    if (rc != 0)
        return rc;
    p = node->priv;
    if (req == NULL || cb == NULL)
        return ms_seterr(node->errmsg, sizeof node->errmsg, MS_EINVAL,
                         "raft: barrier: no callback");
    rc = ms_raft__can_submit(node, "barrier");
    if (rc != 0)
        return rc;
    x = calloc(1, sizeof *x);
    if (x == NULL)
        return ms_seterr(node->errmsg, sizeof node->errmsg, MS_ENOMEM,
                         "raft: barrier: out of memory");
    x->req = req;
    x->p = p;
    x->barrier.data = x;
    req->cb = cb;
    req->node = node;
    req->index = 0;
    p->n_barriers++;
    rv = raft_barrier(&p->raft, &x->barrier, on_barrier);
    if (rv != 0) {
        p->n_barriers--;
        free(x);
        return ms_raft__fail(p, rv, "barrier");
    }
    req->index = x->barrier.index;
    return 0;
}

/* --- state --- */

static struct raft *live_raft(struct ms_raft *node)
{
    struct ms_raft_priv *p;

    if (node == NULL || node->priv == NULL)
        return NULL;
    p = node->priv;
    if (!p->started || p->raft_closing)
        return NULL;
    return &p->raft;
}

void ms_raft_get_status(struct ms_raft *node, struct ms_raft_status *out)
{
    struct raft *r = live_raft(node);
    struct ms_raft_priv *p;
    raft_id leader = 0;
    const char *addr = NULL;

    memset(out, 0, sizeof *out);
    out->state = MS_RAFT_UNAVAILABLE;
    if (r == NULL)
        return;
    p = node->priv;
    out->id = r->id;
    switch (raft_state(r)) {
    case RAFT_FOLLOWER:
        out->state = MS_RAFT_FOLLOWER;
        break;
    case RAFT_CANDIDATE:
        out->state = MS_RAFT_CANDIDATE;
        break;
    case RAFT_LEADER:
        out->state = MS_RAFT_LEADER;
        break;
    default:
        out->state = MS_RAFT_UNAVAILABLE;
        break;
    }
    out->term = r->current_term;
    raft_leader(r, &leader, &addr);
    out->leader_id = leader;
    if (addr != NULL)
        snprintf(out->leader_address, sizeof out->leader_address, "%s", addr);
    out->commit_index = r->commit_index;
    out->last_applied = raft_last_applied(r);
    out->last_index = raft_last_index(r);
    out->snapshot_index = r->log.snapshot.last_index;
    out->leader_ready = leader_ready(p);
    out->fsm_error = p->fsm_error;
    for (unsigned i = 0; i < r->configuration.n; i++)
        if (r->configuration.servers[i].role == RAFT_VOTER)
            out->voters++;
    out->inflight = p->n_props + p->n_barriers + p->n_done;
    out->disk_appends = p->disk_appends;
    out->disk_append_entries = p->disk_append_entries;
    out->snapshot_log_bytes = p->log_bytes_since_snap;
    out->snapshot_last_bytes = p->last_snap_bytes;
    out->snapshots_deferred = p->snapshots_deferred;
    if (p->ls != NULL) {
        struct ms_logstore_stats ls;
        ms_logstore_stats(p->ls, &ls);
        out->disk_writes = ls.syncs;
        out->log_bytes = ls.bytes;
        out->log_segments = ls.segments;
        out->log_sync_max_ns = ls.sync_ns_max;
        out->log_rounds = ls.round_seconds;
        out->log_files_deleted = ls.files_deleted;
        out->log_delete_steps = ls.delete_steps;
        out->log_delete_pending_bytes = ls.delete_pending_bytes;
    }
}

bool ms_raft_is_leader(struct ms_raft *node)
{
    struct raft *r = live_raft(node);

    return r != NULL && raft_state(r) == RAFT_LEADER && r->transfer == NULL;
}

uint64_t ms_raft_leader(struct ms_raft *node, char *addr, size_t size)
{
    struct raft *r = live_raft(node);
    raft_id leader = 0;
    const char *a = NULL;

    if (r != NULL)
        raft_leader(r, &leader, &a);
    if (addr != NULL && size > 0)
        snprintf(addr, size, "%s", a != NULL ? a : "");
    return leader;
}
