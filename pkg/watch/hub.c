/* hub.c - watchers: matching, live delivery, history replay, slow-stream
 * cancellation (see hub.h for the model). */
#include "watch/hub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/arena.h"
#include "util/error.h"

/* A growable list of events whose bytes live in an arena. */
struct evbuf {
    struct ms_store_event *v;
    size_t n, cap;
    struct ms_arena a;
};

struct watcher {
    struct ms_watch_stream *st;
    struct watcher *next; /* in the stream, creation order */
    int64_t id;
    uint8_t *key, *end; /* owned copies */
    size_t klen, elen;
    bool single, unbounded, empty;
    bool prev_kv, progress_notify;
    unsigned filters;
    bool synced;
    int64_t next_rev;  /* first revision not yet delivered */
    int64_t window;    /* revisions per replay step (adaptive) */
    uint64_t last_sent_ms;
};

struct ms_watch_stream {
    struct ms_watch_hub *hub;
    struct ms_watch_stream *prev, *next;
    struct ms_watch_sink sink;
    void *ctx;
    struct watcher *watchers;
    int64_t next_id;
    bool closed;          /* owner closed it, or the hub ended it */
    bool broken;          /* a sink call failed */
    bool progress_wanted; /* answer the progress request once synced */
};

struct ms_watch_hub {
    struct ms_store *store;
    struct ms_watch_hub_config cfg;
    struct ms_watch_stream *streams;
    struct ms_watch_stream *dead; /* closed during a hub call */
    int depth;                    /* nesting of hub calls */
    bool shutdown;
    struct evbuf live;  /* changes applied since the last flush */
    bool lost;          /* live is incomplete (out of memory) */
    unsigned n_synced;  /* synced watchers (they need live changes) */
    unsigned n_prev;    /* watchers asking for prev_kv */
    const struct ms_store_event **sel; /* scratch: one message's events */
    size_t sel_cap;
    uint64_t now_ms;
    struct ms_watch_stats stats;
};

void ms_watch_hub_config_default(struct ms_watch_hub_config *c)
{
    c->max_pending = MS_WATCH_DEFAULT_MAX_PENDING;
    c->low_water = MS_WATCH_DEFAULT_LOW_WATER;
    c->max_events = 1000;
    c->pump_steps = 64;
    c->progress_interval_ms = 600000;
}

/* --- event buffers --------------------------------------------------------- */

static int kv_dup(struct ms_arena *a, struct ms_kv *dst, const struct ms_kv *src)
{
    *dst = *src;
    dst->key.data = NULL;
    dst->value.data = NULL;
    if (src->key.len > 0 &&
        (dst->key.data = ms_arena_dup(a, src->key.data, src->key.len)) == NULL)
        return MS_ENOMEM;
    if (src->value.len > 0 &&
        (dst->value.data = ms_arena_dup(a, src->value.data, src->value.len)) ==
            NULL)
        return MS_ENOMEM;
    return 0;
}

static int evbuf_push(struct evbuf *b, const struct ms_store_event *ev,
                      bool with_prev)
{
    struct ms_store_event *e;

    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        struct ms_store_event *nv = realloc(b->v, cap * sizeof(*nv));
        if (nv == NULL)
            return MS_ENOMEM;
        b->v = nv;
        b->cap = cap;
    }
    e = &b->v[b->n];
    memset(e, 0, sizeof(*e));
    e->is_delete = ev->is_delete;
    if (kv_dup(&b->a, &e->kv, &ev->kv) != 0)
        return MS_ENOMEM;
    if (with_prev && ev->has_prev) {
        if (kv_dup(&b->a, &e->prev_kv, &ev->prev_kv) != 0)
            return MS_ENOMEM;
        e->has_prev = true;
    }
    b->n++;
    return 0;
}

static void evbuf_reset(struct evbuf *b)
{
    b->n = 0;
    ms_arena_free(&b->a);
}

static void evbuf_free(struct evbuf *b)
{
    evbuf_reset(b);
    free(b->v);
    b->v = NULL;
    b->cap = 0;
}

static int cmp_bytes(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = an && bn ? memcmp(a, b, an < bn ? an : bn) : 0;
    if (c != 0)
        return c;
    return an < bn ? -1 : an > bn;
}

static bool matches(const struct watcher *w, const struct ms_store_event *ev)
{
    const struct ms_bytes *k = &ev->kv.key;

    if ((ev->is_delete && (w->filters & MS_WATCH_NODELETE)) ||
        (!ev->is_delete && (w->filters & MS_WATCH_NOPUT)))
        return false;
    if (w->single)
        return k->len == w->klen && (k->len == 0 ||
                                     memcmp(k->data, w->key, k->len) == 0);
    if (w->empty || cmp_bytes(k->data, k->len, w->key, w->klen) < 0)
        return false;
    return w->unbounded || cmp_bytes(k->data, k->len, w->end, w->elen) < 0;
}

/* --- store hook -------------------------------------------------------------- */

static int on_change(void *ctx, const struct ms_store_event *ev)
{
    struct ms_watch_hub *hub = ctx;

    /* nothing to do without listeners; a failed copy drops nothing
     * silently: the flush sends the watchers to the history instead */
    if (hub->n_synced == 0 || hub->lost)
        return 0;
    if (evbuf_push(&hub->live, ev, hub->n_prev > 0) != 0) {
        evbuf_reset(&hub->live);
        hub->lost = true;
    }
    return 0;
}

int ms_watch_hub_new(struct ms_store *store,
                     const struct ms_watch_hub_config *cfg,
                     struct ms_watch_hub **out)
{
    struct ms_watch_hub *hub = calloc(1, sizeof(*hub));

    if (hub == NULL)
        return MS_ENOMEM;
    hub->store = store;
    if (cfg != NULL)
        hub->cfg = *cfg;
    else
        ms_watch_hub_config_default(&hub->cfg);
    if (hub->cfg.max_events == 0)
        hub->cfg.max_events = 1000;
    if (hub->cfg.pump_steps == 0)
        hub->cfg.pump_steps = 64;
    hub->live.a.chunk_size = 64 * 1024;
    ms_store_set_event_hook(store, on_change, hub);
    *out = hub;
    return 0;
}

/* --- watchers and streams ---------------------------------------------------- */

static void watcher_free(struct ms_watch_hub *hub, struct watcher *w)
{
    if (w->synced)
        hub->n_synced--;
    if (w->prev_kv)
        hub->n_prev--;
    hub->stats.watchers--;
    if (!w->synced)
        hub->stats.unsynced--;
    free(w->key);
    free(w->end);
    free(w);
}

/* Unlinks w from its stream and frees it. */
static void watcher_remove(struct watcher *w)
{
    struct ms_watch_stream *st = w->st;
    struct watcher **pp = &st->watchers;

    while (*pp != w)
        pp = &(*pp)->next;
    *pp = w->next;
    watcher_free(st->hub, w);
}

static void set_synced(struct ms_watch_hub *hub, struct watcher *w, bool on)
{
    if (w->synced == on)
        return;
    w->synced = on;
    if (on) {
        hub->n_synced++;
        hub->stats.unsynced--;
    } else {
        hub->n_synced--;
        hub->stats.unsynced++;
        w->window = 64;
    }
}

static void stream_free(struct ms_watch_stream *st)
{
    while (st->watchers != NULL)
        watcher_remove(st->watchers);
    free(st);
}

/* Frees the streams closed while a hub call was running. */
static void leave(struct ms_watch_hub *hub)
{
    if (--hub->depth > 0)
        return;
    while (hub->dead != NULL) {
        struct ms_watch_stream *st = hub->dead;
        hub->dead = st->next;
        stream_free(st);
    }
}

static void stream_unlink(struct ms_watch_stream *st)
{
    struct ms_watch_hub *hub = st->hub;

    if (st->prev != NULL)
        st->prev->next = st->next;
    else
        hub->streams = st->next;
    if (st->next != NULL)
        st->next->prev = st->prev;
    st->prev = st->next = NULL;
    hub->stats.streams--;
}

/* Takes st out of service; freed now or when the current call ends. */
static void stream_retire(struct ms_watch_stream *st)
{
    struct ms_watch_hub *hub = st->hub;

    if (st->closed)
        return;
    st->closed = true;
    stream_unlink(st);
    if (hub->depth > 0) {
        st->next = hub->dead;
        hub->dead = st;
    } else {
        stream_free(st);
    }
}

int ms_watch_stream_open(struct ms_watch_hub *hub,
                         const struct ms_watch_sink *sink, void *ctx,
                         struct ms_watch_stream **out)
{
    struct ms_watch_stream *st;

    if (hub->shutdown)
        return MS_ESHUTDOWN;
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return MS_ENOMEM;
    st->hub = hub;
    st->sink = *sink;
    st->ctx = ctx;
    st->next = hub->streams;
    if (hub->streams != NULL)
        hub->streams->prev = st;
    hub->streams = st;
    hub->stats.streams++;
    *out = st;
    return 0;
}

void ms_watch_stream_close(struct ms_watch_stream *st)
{
    if (st == NULL || st->closed)
        return;
    stream_retire(st);
}

/* Sink calls; a failure marks the stream broken (the owner closes it). */
static void send_notice(struct ms_watch_stream *st,
                        const struct ms_watch_notice *n)
{
    if (st->broken || st->closed)
        return;
    if (st->sink.notice(st->ctx, n) != 0)
        st->broken = true;
}

static void send_events(struct ms_watch_stream *st, struct watcher *w,
                        int64_t id, int64_t rev,
                        const struct ms_store_event *const *ev, size_t n,
                        bool prev_kv)
{
    struct ms_watch_hub *hub = st->hub;

    if (st->broken || st->closed)
        return;
    if (st->sink.events(st->ctx, id, rev, ev, n, prev_kv) != 0) {
        st->broken = true;
        return;
    }
    if (w != NULL)
        w->last_sent_ms = hub->now_ms;
    if (n > 0) {
        hub->stats.messages_total++;
        hub->stats.events_total += n;
    }
}

static bool all_synced(const struct ms_watch_stream *st)
{
    for (const struct watcher *w = st->watchers; w != NULL; w = w->next)
        if (!w->synced)
            return false;
    return true;
}

static void answer_progress(struct ms_watch_stream *st)
{
    if (!st->progress_wanted || !all_synced(st))
        return;
    st->progress_wanted = false;
    send_events(st, NULL, -1, ms_store_revision(st->hub->store), NULL, 0,
                false);
}

static struct watcher *find(struct ms_watch_stream *st, int64_t id)
{
    for (struct watcher *w = st->watchers; w != NULL; w = w->next)
        if (w->id == id)
            return w;
    return NULL;
}

static int set_range(struct watcher *w, const struct ms_watch_spec *spec)
{
    w->klen = spec->key.len;
    w->elen = spec->range_end.len;
    w->key = malloc(w->klen + 1);
    w->end = malloc(w->elen + 1);
    if (w->key == NULL || w->end == NULL)
        return MS_ENOMEM;
    if (w->klen > 0)
        memcpy(w->key, spec->key.data, w->klen);
    if (w->elen > 0)
        memcpy(w->end, spec->range_end.data, w->elen);
    if (w->elen == 0)
        w->single = true;
    else if (w->elen == 1 && w->end[0] == 0)
        w->unbounded = true;
    else if (cmp_bytes(w->key, w->klen, w->end, w->elen) >= 0)
        w->empty = true;
    return 0;
}

int ms_watch_create(struct ms_watch_stream *st,
                    const struct ms_watch_spec *spec)
{
    struct ms_watch_hub *hub = st->hub;
    struct ms_watch_notice n = {0};
    int64_t cur = ms_store_revision(hub->store);
    int64_t compact = ms_store_compact_revision(hub->store);
    struct watcher *w, **tail;
    int64_t id = spec->watch_id;

    if (st->closed)
        return 0;
    hub->depth++;
    n.revision = cur;
    n.created = true;
    if (id != 0 && find(st, id) != NULL) {
        n.watch_id = -1;
        n.canceled = true;
        n.cancel_reason = "mvcc: duplicate watch ID provided on the "
                          "WatchStream";
        send_notice(st, &n);
        leave(hub);
        return 0;
    }
    if (id == 0) {
        while (find(st, st->next_id) != NULL)
            st->next_id++;
        id = st->next_id++;
    }
    n.watch_id = id;
    if (spec->start_revision > 0 && spec->start_revision < compact) {
        struct ms_watch_notice c = {.watch_id = id,
                                    .canceled = true,
                                    .compact_revision = compact};
        send_notice(st, &n);
        send_notice(st, &c);
        hub->stats.created_total++;
        hub->stats.compacted_canceled_total++;
        leave(hub);
        return 0;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL || set_range(w, spec) != 0) {
        if (w != NULL) {
            free(w->key);
            free(w->end);
            free(w);
        }
        leave(hub);
        return MS_ENOMEM;
    }
    w->st = st;
    w->id = id;
    w->prev_kv = spec->prev_kv;
    w->progress_notify = spec->progress_notify;
    w->filters = spec->filters;
    w->last_sent_ms = hub->now_ms;
    w->window = 64;
    if (spec->start_revision <= 0)
        w->next_rev = cur + 1;
    else
        w->next_rev = spec->start_revision;
    for (tail = &st->watchers; *tail != NULL; tail = &(*tail)->next)
        ;
    *tail = w;
    hub->stats.watchers++;
    hub->stats.unsynced++; /* set_synced moves it */
    if (w->prev_kv)
        hub->n_prev++;
    if (w->next_rev > cur)
        set_synced(hub, w, true);
    hub->stats.created_total++;
    send_notice(st, &n);
    leave(hub);
    return 0;
}

void ms_watch_cancel(struct ms_watch_stream *st, int64_t id)
{
    struct ms_watch_hub *hub = st->hub;
    struct watcher *w = find(st, id);
    struct ms_watch_notice n = {.watch_id = id, .canceled = true};

    if (w == NULL || st->closed)
        return;
    hub->depth++;
    watcher_remove(w);
    n.revision = ms_store_revision(hub->store);
    send_notice(st, &n);
    answer_progress(st);
    leave(hub);
}

void ms_watch_progress(struct ms_watch_stream *st)
{
    if (st->closed)
        return;
    st->hub->depth++;
    st->progress_wanted = true;
    answer_progress(st);
    leave(st->hub);
}

/* --- slow streams -------------------------------------------------------------- */

/* Cancels every watcher of st (too slow) and ends it. */
static void end_slow(struct ms_watch_stream *st, size_t pending)
{
    struct ms_watch_hub *hub = st->hub;
    char reason[160];
    struct ms_watch_notice n = {.canceled = true, .cancel_reason = reason};

    snprintf(reason, sizeof(reason),
             "metastore: watcher too slow: %zu bytes of events unsent, "
             "over the limit of %zu",
             pending, hub->cfg.max_pending);
    n.revision = ms_store_revision(hub->store);
    while (st->watchers != NULL) {
        n.watch_id = st->watchers->id;
        send_notice(st, &n);
        hub->stats.slow_canceled_total++;
        watcher_remove(st->watchers);
    }
    if (!st->broken)
        st->sink.ended(st->ctx);
    stream_retire(st);
}

/* True (and st ended) when st has more unsent than it may. */
static bool too_slow(struct ms_watch_stream *st)
{
    size_t p;

    if (st->closed || st->broken)
        return false;
    p = st->sink.pending(st->ctx);
    if (p <= st->hub->cfg.max_pending)
        return false;
    end_slow(st, p);
    return true;
}

static int sel_reserve(struct ms_watch_hub *hub, size_t n)
{
    if (n <= hub->sel_cap)
        return 0;
    const struct ms_store_event **nv = realloc(hub->sel, n * sizeof(*nv));
    if (nv == NULL)
        return MS_ENOMEM;
    hub->sel = nv;
    hub->sel_cap = n;
    return 0;
}

/* --- live delivery --------------------------------------------------------------- */

void ms_watch_hub_flush(struct ms_watch_hub *hub)
{
    struct evbuf *ev = &hub->live;
    int64_t cur = ms_store_revision(hub->store);
    struct ms_watch_stream *st, *next;

    if (hub->lost || (ev->n > 0 && sel_reserve(hub, ev->n) != 0)) {
        /* changes were not kept: every synced watcher re-reads them from
         * the history */
        hub->lost = false;
        evbuf_reset(ev);
        ms_watch_hub_resync(hub);
        return;
    }
    if (ev->n == 0)
        return;
    hub->depth++;
    for (st = hub->streams; st != NULL; st = next) {
        next = st->next;
        bool checked = false;
        if (st->broken)
            continue;
        for (struct watcher *w = st->watchers; w != NULL; w = w->next) {
            size_t n = 0;
            if (!w->synced)
                continue;
            for (size_t i = 0; i < ev->n; i++)
                if (ev->v[i].kv.mod_revision >= w->next_rev &&
                    matches(w, &ev->v[i]))
                    hub->sel[n++] = &ev->v[i];
            if (w->next_rev <= cur)
                w->next_rev = cur + 1;
            if (n == 0)
                continue;
            if (!checked) {
                checked = true;
                if (too_slow(st))
                    break;
            }
            send_events(st, w, w->id, cur, hub->sel, n, w->prev_kv);
        }
    }
    evbuf_reset(ev);
    leave(hub);
}

void ms_watch_hub_resync(struct ms_watch_hub *hub)
{
    int64_t cur = ms_store_revision(hub->store);

    for (struct ms_watch_stream *st = hub->streams; st != NULL; st = st->next)
        for (struct watcher *w = st->watchers; w != NULL; w = w->next)
            if (w->synced && w->next_rev <= cur)
                set_synced(hub, w, false);
}

/* --- replay ------------------------------------------------------------------------ */

struct replay {
    struct ms_watch_hub *hub;
    struct watcher *w;
    struct evbuf buf;
    int64_t stop_rev; /* first revision left out (0: window complete) */
    int64_t last_rev;
};

static int replay_cb(void *ctx, const struct ms_store_event *ev)
{
    struct replay *r = ctx;
    int64_t rev = ev->kv.mod_revision;

    if (r->buf.n >= r->hub->cfg.max_events && rev != r->last_rev) {
        r->stop_rev = rev;
        return MS_ECANCELED; /* enough for one message: stop here */
    }
    r->last_rev = rev;
    if (!matches(r->w, ev))
        return 0;
    return evbuf_push(&r->buf, ev, r->w->prev_kv);
}

/* One replay step for w: sends the next window of history. Returns false
 * when w is gone (canceled) or its stream broke. */
static bool replay_step(struct ms_watch_hub *hub, struct watcher *w)
{
    struct ms_watch_stream *st = w->st;
    struct replay r = {.hub = hub, .w = w};
    int64_t cur = ms_store_revision(hub->store);
    int64_t compact = ms_store_compact_revision(hub->store);
    int64_t to;
    char err[MS_ERRMSG_SIZE];
    int rc;

    if (w->next_rev < compact) {
        struct ms_watch_notice n = {.watch_id = w->id,
                                    .canceled = true,
                                    .compact_revision = compact};
        send_notice(st, &n);
        hub->stats.compacted_canceled_total++;
        watcher_remove(w);
        return false;
    }
    to = w->next_rev + w->window - 1;
    if (to > cur || to < w->next_rev)
        to = cur;
    r.buf.a.chunk_size = 64 * 1024;
    rc = ms_store_changes(hub->store, (struct ms_bytes){w->key, w->klen},
                          (struct ms_bytes){w->end, w->elen}, w->next_rev, to,
                          w->prev_kv, replay_cb, &r, err, sizeof(err));
    if (rc != 0 && !(rc == MS_ECANCELED && r.stop_rev != 0)) {
        struct ms_watch_notice n = {.watch_id = w->id,
                                    .revision = cur,
                                    .canceled = true,
                                    .cancel_reason = err};
        if (rc == MS_ENOMEM)
            snprintf(err, sizeof(err), "metastore: out of memory");
        send_notice(st, &n);
        watcher_remove(w);
        evbuf_free(&r.buf);
        return false;
    }
    if (r.buf.n > 0) {
        if (sel_reserve(hub, r.buf.n) != 0) {
            evbuf_free(&r.buf);
            return true; /* try again later */
        }
        for (size_t i = 0; i < r.buf.n; i++)
            hub->sel[i] = &r.buf.v[i];
        send_events(st, w, w->id, cur, hub->sel, r.buf.n, w->prev_kv);
        hub->stats.replayed_total += r.buf.n;
    }
    /* a short window: look further next time */
    if (r.stop_rev == 0 && r.buf.n < hub->cfg.max_events / 4 &&
        w->window < ((int64_t)1 << 20))
        w->window *= 2;
    w->next_rev = r.stop_rev != 0 ? r.stop_rev : to + 1;
    evbuf_free(&r.buf);
    if (w->next_rev > cur) {
        set_synced(hub, w, true);
        answer_progress(st);
    }
    return !st->broken;
}

enum ms_watch_pump ms_watch_hub_pump(struct ms_watch_hub *hub)
{
    unsigned steps = hub->cfg.pump_steps;
    bool blocked = false, more = false;
    struct ms_watch_stream *st, *next;

    if (hub->stats.unsynced == 0)
        return MS_WATCH_IDLE;
    hub->depth++;
    for (st = hub->streams; st != NULL; st = next) {
        next = st->next;
        if (st->broken)
            continue;
        struct watcher *w = st->watchers, *wn;
        for (; w != NULL; w = wn) {
            wn = w->next;
            while (!w->synced) {
                if (steps == 0) {
                    more = true;
                    break;
                }
                if (st->sink.pending(st->ctx) >= hub->cfg.low_water) {
                    blocked = true;
                    break;
                }
                steps--;
                if (!replay_step(hub, w))
                    break;
            }
            if (st->broken)
                break;
        }
    }
    leave(hub);
    if (hub->stats.unsynced == 0)
        return MS_WATCH_IDLE;
    if (more)
        return MS_WATCH_BUSY;
    return blocked ? MS_WATCH_BLOCKED : MS_WATCH_BUSY;
}

void ms_watch_hub_tick(struct ms_watch_hub *hub, uint64_t now_ms)
{
    int64_t cur = ms_store_revision(hub->store);

    hub->now_ms = now_ms;
    hub->depth++;
    for (struct ms_watch_stream *st = hub->streams; st != NULL;
         st = st->next) {
        for (struct watcher *w = st->watchers; w != NULL; w = w->next) {
            if (!w->synced || !w->progress_notify ||
                now_ms - w->last_sent_ms < hub->cfg.progress_interval_ms)
                continue;
            send_events(st, w, w->id, cur, NULL, 0, false);
        }
    }
    leave(hub);
}

void ms_watch_hub_shutdown(struct ms_watch_hub *hub)
{
    hub->shutdown = true;
}

void ms_watch_hub_stats(const struct ms_watch_hub *hub,
                        struct ms_watch_stats *out)
{
    *out = hub->stats;
}

void ms_watch_hub_free(struct ms_watch_hub *hub)
{
    if (hub == NULL)
        return;
    ms_store_set_event_hook(hub->store, NULL, NULL);
    while (hub->streams != NULL) {
        struct ms_watch_stream *st = hub->streams;
        stream_unlink(st);
        stream_free(st);
    }
    while (hub->dead != NULL) {
        struct ms_watch_stream *st = hub->dead;
        hub->dead = st->next;
        stream_free(st);
    }
    evbuf_free(&hub->live);
    free(hub->sel);
    free(hub);
}
