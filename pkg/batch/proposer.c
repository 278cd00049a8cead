/* proposer.c - batch proposer: off, fixed-timeout and adaptive group commit. */
#include "batch/proposer.h"
#include "util/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

void ms_batch_config_default(struct ms_batch_config *c)
{
    c->mode = MS_BATCH_ADAPTIVE;
    c->max_ops = MS_BATCH_DEFAULT_MAX_OPS;
    c->max_bytes = MS_BATCH_DEFAULT_MAX_BYTES;
    c->max_delay_us = MS_BATCH_DEFAULT_MAX_DELAY_US;
    c->max_inflight = MS_BATCH_DEFAULT_MAX_INFLIGHT;
}

static const char *mode_names[] = {"off", "fixed", "adaptive"};

int ms_batch_parse_mode(const char *s, enum ms_batch_mode *out)
{
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, mode_names[i]) == 0) {
            *out = (enum ms_batch_mode)i;
            return 0;
        }
    }
    return MS_EINVAL;
}

const char *ms_batch_mode_name(enum ms_batch_mode m)
{
    return (unsigned)m < 3 ? mode_names[m] : "unknown";
}

int ms_batch_config_check(const struct ms_batch_config *c, char *errmsg,
                          size_t errmsg_size)
{
    if ((unsigned)c->mode > MS_BATCH_ADAPTIVE)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "batch mode must be off, fixed or adaptive");
    if (c->max_ops < 1 || c->max_ops > MS_CODEC_MAX_OPS)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "batch max ops must be 1..%u", MS_CODEC_MAX_OPS);
    if (c->max_bytes < 64 || c->max_bytes > MS_CODEC_MAX_PAYLOAD / 2)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "batch max bytes must be 64..%u",
                         MS_CODEC_MAX_PAYLOAD / 2);
    if (c->max_delay_us > 1000000)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "batch max delay must be 0..1000000 us");
    if (c->max_inflight < 1 || c->max_inflight > 1024)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "batch max inflight must be 1..1024");
    return 0;
}

/* --- pending table: request_id -> proposal ---------------------------- */

static int table_grow(struct ms_batch_proposer *bp)
{
    size_t size = bp->table_size ? bp->table_size * 2 : 1024;
    struct ms_proposal **t = calloc(size, sizeof(*t));

    if (t == NULL)
        return MS_ENOMEM;
    for (size_t i = 0; i < bp->table_size; i++) {
        struct ms_proposal *p = bp->table[i];
        while (p != NULL) {
            struct ms_proposal *next = p->hnext;
            size_t h = p->request_id & (size - 1);
            p->hnext = t[h];
            t[h] = p;
            p = next;
        }
    }
    free(bp->table);
    bp->table = t;
    bp->table_size = size;
    return 0;
}

static void table_remove(struct ms_batch_proposer *bp, struct ms_proposal *p)
{
    struct ms_proposal **pp = &bp->table[p->request_id & (bp->table_size - 1)];
    while (*pp != NULL) {
        if (*pp == p) {
            *pp = p->hnext;
            bp->n_pending--;
            return;
        }
        pp = &(*pp)->hnext;
    }
}

static struct ms_proposal *table_find(struct ms_batch_proposer *bp,
                                      uint64_t id)
{
    if (bp->table_size == 0)
        return NULL;
    struct ms_proposal *p = bp->table[id & (bp->table_size - 1)];
    while (p != NULL && p->request_id != id)
        p = p->hnext;
    return p;
}

/* --- entries ------------------------------------------------------------ */

/* Takes p off its entry's list of waiting ops (the list holds exactly the
 * proposals whose callback has not run, so it never points at memory a
 * caller freed after its callback). */
static void entry_unlink(struct ms_batch_entry *e, struct ms_proposal *p)
{
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        e->head = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    else
        e->tail = p->prev;
    p->next = p->prev = NULL;
    p->entry = NULL;
}

static struct ms_batch_entry *entry_new(struct ms_batch_proposer *bp)
{
    struct ms_batch_entry *e = calloc(1, sizeof(*e));

    if (e == NULL)
        return NULL;
    e->bp = bp;
    if (ms_batch_writer_init(&e->w, bp->codec, &e->buf) != 0) {
        ms_buf_free(&e->buf);
        free(e);
        return NULL;
    }
    return e;
}

static void entry_free(struct ms_batch_entry *e)
{
    ms_buf_free(&e->buf);
    free(e);
}

/* Fails every op of e still pending with status and frees e. */
static void entry_fail(struct ms_batch_entry *e, int status)
{
    struct ms_batch_proposer *bp = e->bp;

    bp->stats.entries_failed++;
    while (e->head != NULL) {
        struct ms_proposal *p = e->head;
        table_remove(bp, p);
        entry_unlink(e, p);
        bp->stats.ops_failed++;
        p->cb(p, status, NULL);
    }
    entry_free(e);
}

static void propose_entry(struct ms_batch_proposer *bp,
                          struct ms_batch_entry *e)
{
    uint64_t now = ms_now_ns();
    int rc;

    rc = ms_batch_writer_finish(&e->w);
    if (rc != 0) {
        entry_fail(e, rc);
        return;
    }
    for (struct ms_proposal *p = e->head; p != NULL; p = p->next)
        ms_histogram_observe(&bp->stats.queue_delay,
                             (double)(now - p->enqueued_ns) / 1e9);
    ms_histogram_observe(&bp->stats.batch_size, (double)e->n_ops);
    bp->inflight++;
    rc = bp->sink.propose(bp->sink.data, e, &e->buf);
    if (rc != 0) {
        bp->inflight--;
        entry_fail(e, rc);
        return;
    }
    ms_buf_free(&e->buf);
    bp->stats.entries_proposed++;
    bp->stats.ops_proposed += e->n_ops;
}

/* --- fixed mode's delay: a timerfd, so delays below a millisecond are
 * kept (libuv's timers count whole milliseconds: 100 us would wait 1 ms) */

static void timer_set(struct ms_batch_proposer *bp, uint64_t us)
{
    struct itimerspec its = {0};

    if (us == 0)
        us = 1; /* a zero it_value would disarm */
    its.it_value.tv_sec = (time_t)(us / 1000000);
    its.it_value.tv_nsec = (long)(us % 1000000) * 1000;
    if (timerfd_settime(bp->tfd, 0, &its, NULL) == 0) {
        bp->timer_armed = true;
        uv_ref((uv_handle_t *)&bp->tpoll); /* keeps the loop running */
    }
}

/* Disarming also clears an expiry not yet read, so a stale wake-up finds
 * nothing to read. */
static void timer_stop(struct ms_batch_proposer *bp)
{
    struct itimerspec its = {0};

    if (!bp->timer_armed)
        return;
    timerfd_settime(bp->tfd, 0, &its, NULL);
    bp->timer_armed = false;
    uv_unref((uv_handle_t *)&bp->tpoll);
}

static void close_open(struct ms_batch_proposer *bp);
static void pump(struct ms_batch_proposer *bp);

static void on_timer(uv_poll_t *h, int status, int events)
{
    struct ms_batch_proposer *bp = h->data;
    uint64_t n;

    (void)events;
    if (status < 0 || read(bp->tfd, &n, sizeof n) != (ssize_t)sizeof n)
        return; /* disarmed after it fired: nothing to do */
    bp->timer_armed = false;
    uv_unref((uv_handle_t *)&bp->tpoll);
    close_open(bp);
    pump(bp);
}

/* Moves the open entry (if any ops) to the ready queue. */
static void close_open(struct ms_batch_proposer *bp)
{
    struct ms_batch_entry *e = bp->open;

    if (e == NULL || e->n_ops == 0)
        return;
    bp->open = NULL;
    if (bp->ready_tail != NULL)
        bp->ready_tail->next = e;
    else
        bp->ready = e;
    bp->ready_tail = e;
    if (bp->cfg.mode == MS_BATCH_FIXED)
        timer_stop(bp);
}

/* Proposes ready entries while the mode allows. In adaptive mode an entry
 * that waited for a free slot absorbs everything queued behind it (up to
 * the limits), so a burst becomes one entry. */
static void pump(struct ms_batch_proposer *bp)
{
    while (bp->ready != NULL) {
        if (bp->cfg.mode == MS_BATCH_ADAPTIVE &&
            bp->inflight >= bp->cfg.max_inflight)
            return;
        struct ms_batch_entry *e = bp->ready;
        bp->ready = e->next;
        if (bp->ready == NULL)
            bp->ready_tail = NULL;
        e->next = NULL;
        propose_entry(bp, e);
    }
}

static void on_check(uv_check_t *h)
{
    struct ms_batch_proposer *bp = h->data;

    uv_check_stop(h);
    bp->check_active = false;
    if (bp->cfg.mode == MS_BATCH_ADAPTIVE &&
        bp->inflight < bp->cfg.max_inflight)
        close_open(bp);
    pump(bp);
}

int ms_batch_init(struct ms_batch_proposer *bp, uv_loop_t *loop,
                  const struct ms_batch_config *cfg, enum ms_codec_id codec,
                  uint64_t node_id, const struct ms_batch_sink *sink)
{
    int rc;

    memset(bp, 0, sizeof(*bp));
    rc = ms_batch_config_check(cfg, NULL, 0);
    if (rc != 0)
        return rc;
    if (codec != MS_CODEC_PROTOBUF && codec != MS_CODEC_JSON)
        return MS_EINVAL;
    bp->loop = loop;
    bp->cfg = *cfg;
    bp->sink = *sink;
    bp->codec = codec;
    bp->node_id = node_id;
    bp->next_request_id = 1;
    ms_histogram_init(&bp->stats.batch_size, ms_size_bounds,
                      ms_size_n_bounds);
    ms_histogram_init(&bp->stats.queue_delay, ms_latency_bounds,
                      ms_latency_n_bounds);
    if (table_grow(bp) != 0)
        return MS_ENOMEM;
    bp->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (bp->tfd < 0) {
        free(bp->table);
        bp->table = NULL;
        return MS_EIO;
    }
    if (uv_poll_init(loop, &bp->tpoll, bp->tfd) != 0) {
        close(bp->tfd);
        free(bp->table);
        bp->table = NULL;
        return MS_EIO;
    }
    uv_check_init(loop, &bp->check);
    bp->check.data = bp;
    bp->tpoll.data = bp;
    uv_poll_start(&bp->tpoll, UV_READABLE, on_timer);
    uv_unref((uv_handle_t *)&bp->tpoll); /* referenced only while armed */
    return 0;
}

int ms_batch_submit(struct ms_batch_proposer *bp, const struct ms_op *op,
                    struct ms_proposal *p)
{
    struct ms_batch_entry *e;
    struct ms_op o;
    size_t before;
    int rc;

    if (bp->closing)
        return MS_ESHUTDOWN;
    if (bp->n_pending >= bp->table_size && table_grow(bp) != 0)
        return MS_ENOMEM;
    if (bp->open == NULL) {
        bp->open = entry_new(bp);
        if (bp->open == NULL)
            return MS_ENOMEM;
    }
    e = bp->open;
    o = *op;
    o.node_id = bp->node_id;
    o.request_id = bp->next_request_id;
    before = e->buf.len;
    rc = ms_batch_writer_add(&e->w, &o);
    if (rc != 0) {
        /* Both codecs keep no writer state beyond buf and n_ops, so
         * cutting the buffer back to where this op began undoes it and
         * the ops already in the entry are unharmed. */
        e->buf.len = before;
        e->w.n_ops = e->n_ops;
        return rc;
    }
    bp->next_request_id++;
    p->request_id = o.request_id;
    p->enqueued_ns = ms_now_ns();
    p->entry = e;
    p->next = NULL;
    p->prev = e->tail;
    if (e->tail != NULL)
        e->tail->next = p;
    else
        e->head = p;
    e->tail = p;
    if (e->n_ops++ == 0)
        e->first_ns = p->enqueued_ns;
    {
        size_t h = p->request_id & (bp->table_size - 1);
        p->hnext = bp->table[h];
        bp->table[h] = p;
        bp->n_pending++;
    }

    switch (bp->cfg.mode) {
    case MS_BATCH_OFF:
        close_open(bp);
        pump(bp);
        break;
    case MS_BATCH_FIXED:
        if (e->n_ops >= bp->cfg.max_ops || e->buf.len >= bp->cfg.max_bytes ||
            bp->cfg.max_delay_us == 0) {
            close_open(bp);
            pump(bp);
        } else if (e->n_ops == 1) {
            timer_set(bp, bp->cfg.max_delay_us);
        }
        break;
    case MS_BATCH_ADAPTIVE:
        if (e->n_ops >= bp->cfg.max_ops || e->buf.len >= bp->cfg.max_bytes ||
            (bp->inflight == 0 && bp->ready == NULL)) {
            /* full, or Raft is idle: propose now, exactly as `off` would,
             * so a lone client never waits for anything */
            close_open(bp);
            pump(bp);
        } else if (bp->inflight < bp->cfg.max_inflight &&
                   !bp->check_active) {
            /* a free slot: propose at the end of this loop iteration, with
             * whatever else arrived in the same read */
            uv_check_start(&bp->check, on_check);
            bp->check_active = true;
        }
        break;
    }
    return 0;
}

void ms_batch_deliver(struct ms_batch_proposer *bp, uint64_t request_id,
                      const struct ms_result *r)
{
    struct ms_proposal *p = table_find(bp, request_id);

    if (p == NULL)
        return; /* failed earlier (e.g. leadership lost), answer gone */
    table_remove(bp, p);
    entry_unlink(p->entry, p);
    p->cb(p, 0, r);
}

void ms_batch_cancel(struct ms_batch_proposer *bp, struct ms_proposal *p,
                     int status)
{
    struct ms_batch_entry *e = p->entry;

    if (e == NULL)
        return;
    table_remove(bp, p);
    entry_unlink(e, p);
    bp->stats.ops_failed++;
    p->cb(p, status, NULL);
}

void ms_batch_entry_done(struct ms_batch_entry *e, int status)
{
    struct ms_batch_proposer *bp = e->bp;

    bp->inflight--;
    /* applied: every op was delivered by the state machine, so any op
     * still waiting got no result (should not happen) */
    if (status == 0 && e->head == NULL)
        entry_free(e);
    else
        entry_fail(e, status == 0 ? MS_EIO : status);
    if (bp->cfg.mode == MS_BATCH_ADAPTIVE && !bp->closing) {
        /* self-clocking: a slot is free, so everything queued goes now */
        close_open(bp);
    }
    pump(bp);
}

int ms_batch_set_config(struct ms_batch_proposer *bp,
                        const struct ms_batch_config *cfg, char *errmsg,
                        size_t errmsg_size)
{
    int rc = ms_batch_config_check(cfg, errmsg, errmsg_size);

    if (rc != 0)
        return rc;
    bp->cfg = *cfg;
    timer_stop(bp);
    close_open(bp);
    pump(bp);
    return 0;
}

void ms_batch_shutdown(struct ms_batch_proposer *bp, int status)
{
    bp->closing = true;
    timer_stop(bp);
    if (bp->check_active) {
        uv_check_stop(&bp->check);
        bp->check_active = false;
    }
    close_open(bp);
    while (bp->ready != NULL) {
        struct ms_batch_entry *e = bp->ready;
        bp->ready = e->next;
        entry_fail(e, status);
    }
    bp->ready_tail = NULL;
}

unsigned ms_batch_inflight(const struct ms_batch_proposer *bp)
{
    return bp->inflight;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct ms_batch_proposer *bp = h->data;

    if (--bp->n_closing == 0) {
        close(bp->tfd);
        bp->tfd = -1;
        free(bp->table);
        bp->table = NULL;
        if (bp->close_cb != NULL)
            bp->close_cb(bp);
    }
}

void ms_batch_close(struct ms_batch_proposer *bp,
                    void (*cb)(struct ms_batch_proposer *))
{
    ms_batch_shutdown(bp, MS_ESHUTDOWN);
    bp->close_cb = cb;
    bp->n_closing = 2;
    uv_close((uv_handle_t *)&bp->check, on_handle_closed);
    uv_close((uv_handle_t *)&bp->tpoll, on_handle_closed);
}

int ms_batch_metrics(const struct ms_batch_proposer *bp, struct ms_buf *out)
{
    const struct ms_batch_stats *s = &bp->stats;
    int rc = 0;

    rc |= ms_metrics_counter(out, "metastore_batch_entries_proposed_total",
                             "Raft entries proposed by the batch proposer.",
                             (double)s->entries_proposed);
    rc |= ms_metrics_counter(out, "metastore_batch_ops_proposed_total",
                             "Operations proposed inside Raft entries.",
                             (double)s->ops_proposed);
    rc |= ms_metrics_counter(out, "metastore_batch_entries_failed_total",
                             "Proposed entries that failed.",
                             (double)s->entries_failed);
    rc |= ms_metrics_counter(out, "metastore_batch_ops_failed_total",
                             "Operations that failed with their entry.",
                             (double)s->ops_failed);
    rc |= ms_metrics_gauge(out, "metastore_batch_inflight",
                           "Entries proposed and not yet applied.",
                           (double)bp->inflight);
    rc |= ms_metrics_histogram(out, "metastore_batch_size_ops",
                               "Operations per proposed entry.", "",
                               &s->batch_size);
    rc |= ms_metrics_histogram(out, "metastore_batch_queue_delay_seconds",
                               "Time from submit to propose.", "",
                               &s->queue_delay);
    return rc ? MS_ENOMEM : 0;
}
