/* hub.h - watchers over the applied change stream: key matching, revision
 * order, replay from the store's history, flow control of slow streams. */
#ifndef MS_WATCH_HUB_H
#define MS_WATCH_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/*
 * The hub knows nothing of HTTP or JSON. A client connection is a stream
 * (etcd's Watch stream) holding any number of watchers; the stream's owner
 * gives the hub a sink that renders and writes messages, and tells how many
 * bytes are still unsent (back-pressure).
 *
 * Events reach watchers in two ways, as in etcd:
 * - synced watchers get every change as it is applied: the store's event
 *   hook (installed by ms_watch_hub_new) collects the changes of one
 *   applied entry, and ms_watch_hub_flush hands them out;
 * - a watcher created with a start revision at or below the current one is
 *   unsynced: ms_watch_hub_pump replays the store's history to it, a
 *   bounded window at a time and only while its stream has fewer than
 *   low_water bytes unsent, until it has caught up; then it is synced.
 * Every watcher therefore sees each matching change exactly once, in
 * revision order. A stream with more than max_pending bytes unsent when
 * new events arrive is too slow: each of its watchers is canceled with a
 * reason and the hub ends the stream (sink->ended), so a stalled client
 * costs at most max_pending bytes.
 *
 * Everything runs on one thread. Sink callbacks are called from inside hub
 * calls and must not call hub functions (defer instead).
 */

struct ms_watch_hub;
struct ms_watch_stream;

/* Event filters of a watcher (etcd's WatchCreateRequest.filters). */
#define MS_WATCH_NOPUT 1u
#define MS_WATCH_NODELETE 2u

/* A message other than events, in etcd's WatchResponse terms. */
struct ms_watch_notice {
    int64_t watch_id;
    int64_t revision; /* header revision; 0: omitted (etcd does, when
                         reporting a compacted start revision) */
    bool created;
    bool canceled;
    int64_t compact_revision; /* 0: none */
    const char *cancel_reason; /* NULL: none */
};

/* Implemented by a stream's owner. ctx is the owner's. */
struct ms_watch_sink {
    /* One message of n events (borrowed for the call) for watcher
     * watch_id, header revision rev. n == 0 is a progress notification
     * (watch_id -1 when it answers a progress request). prev_kv: the
     * watcher asked for prev_kv. Returns 0, or an MS_E code: the stream is
     * broken and gets no further messages. */
    int (*events)(void *ctx, int64_t watch_id, int64_t rev,
                  const struct ms_store_event *const *ev, size_t n,
                  bool prev_kv);
    /* A created / canceled message. Same return convention. */
    int (*notice)(void *ctx, const struct ms_watch_notice *n);
    /* Bytes written to the client but not yet taken by the network. */
    size_t (*pending)(void *ctx);
    /* The hub ended the stream (too slow; every watcher was canceled
     * first). Called once; the stream is then closed and freed by the
     * hub: the owner finishes its client request and never passes the
     * stream to the hub again. */
    void (*ended)(void *ctx);
};

struct ms_watch_hub_config {
    size_t max_pending;  /* unsent bytes that make a stream too slow */
    size_t low_water;    /* replay only while fewer bytes are unsent */
    size_t max_events;   /* events per replay message (whole revisions) */
    unsigned pump_steps; /* replay steps per ms_watch_hub_pump call */
    uint64_t progress_interval_ms; /* progress_notify period (etcd: 10 min) */
};

#define MS_WATCH_DEFAULT_MAX_PENDING (2u << 20)
#define MS_WATCH_DEFAULT_LOW_WATER (256u << 10)

/* Fills c with the defaults: 2 MiB, 256 KiB, 1000 events, 64 steps,
 * 600000 ms. */
void ms_watch_hub_config_default(struct ms_watch_hub_config *c);

/* What a watcher watches (etcd's WatchCreateRequest). Bytes are borrowed
 * for the call (copied). */
struct ms_watch_spec {
    struct ms_bytes key;
    struct ms_bytes range_end; /* as struct ms_range: empty = key alone,
                                  "\0" = every key >= key */
    int64_t start_revision;    /* <= 0: changes after the current revision */
    int64_t watch_id;          /* 0: the stream picks the next free id */
    bool prev_kv;
    bool progress_notify;
    unsigned filters; /* MS_WATCH_NOPUT | MS_WATCH_NODELETE */
};

struct ms_watch_stats {
    uint64_t streams;        /* open streams */
    uint64_t watchers;       /* live watchers */
    uint64_t unsynced;       /* ... still replaying history */
    uint64_t created_total;
    uint64_t events_total;   /* events handed to sinks */
    uint64_t messages_total; /* event messages handed to sinks */
    uint64_t replayed_total; /* events of those that came from history */
    uint64_t slow_canceled_total;      /* watchers canceled: too slow */
    uint64_t compacted_canceled_total; /* ... start revision compacted */
};

/* Creates a hub over store (borrowed; outlives the hub) and installs its
 * event hook on the store. cfg NULL: defaults. Returns 0 and *out, or
 * MS_ENOMEM. */
int ms_watch_hub_new(struct ms_store *store,
                     const struct ms_watch_hub_config *cfg,
                     struct ms_watch_hub **out);

/* Removes the store hook and frees the hub and any stream still open
 * (without calling their sinks). NULL is fine. */
void ms_watch_hub_free(struct ms_watch_hub *hub);

/* Opens a stream writing to sink (copied) with ctx. Returns 0 and *out,
 * or MS_ENOMEM / MS_ESHUTDOWN (after ms_watch_hub_shutdown). */
int ms_watch_stream_open(struct ms_watch_hub *hub,
                         const struct ms_watch_sink *sink, void *ctx,
                         struct ms_watch_stream **out);

/* The owner is done with the stream (client gone, server stopping): its
 * watchers are dropped without messages and the sink is never called
 * again. st is invalid afterwards. */
void ms_watch_stream_close(struct ms_watch_stream *st);

/* Creates a watcher on st and sends its created message (then, for a
 * start revision below the compact revision, a canceled message with
 * compact_revision; for a watch_id already in use, one created+canceled
 * message with watch_id -1 and a reason, as etcd 3.4). Returns 0 (also in
 * those two cases) or MS_ENOMEM. The id is reported through the notice. */
int ms_watch_create(struct ms_watch_stream *st,
                    const struct ms_watch_spec *spec);

/* Cancels watcher id of st and sends its canceled message; an unknown id
 * is ignored (as etcd). */
void ms_watch_cancel(struct ms_watch_stream *st, int64_t id);

/* Answers a progress request: an empty message with watch_id -1 and the
 * current revision, at once when every watcher of st is synced, else as
 * soon as they are. */
void ms_watch_progress(struct ms_watch_stream *st);

/* Delivers the changes collected since the last flush to synced watchers.
 * Call after each applied entry. */
void ms_watch_hub_flush(struct ms_watch_hub *hub);

/* The store's state was replaced (snapshot load): watchers that had seen
 * less than the new revision catch up from its history. */
void ms_watch_hub_resync(struct ms_watch_hub *hub);

/* What ms_watch_hub_pump left to do. */
enum ms_watch_pump {
    MS_WATCH_IDLE = 0,    /* no watcher is replaying */
    MS_WATCH_BUSY = 1,    /* more replay is ready: pump again soon */
    MS_WATCH_BLOCKED = 2, /* replaying watchers wait for their streams to
                             drain: poll */
};

/* Runs up to pump_steps replay steps for unsynced watchers. */
enum ms_watch_pump ms_watch_hub_pump(struct ms_watch_hub *hub);

/* Periodic work at time now_ms (any monotonic clock): progress
 * notifications to idle synced watchers that asked for them. */
void ms_watch_hub_tick(struct ms_watch_hub *hub, uint64_t now_ms);

/* Ends every stream: no further messages; new streams are refused. The
 * owners still close their streams. */
void ms_watch_hub_shutdown(struct ms_watch_hub *hub);

void ms_watch_hub_stats(const struct ms_watch_hub *hub,
                        struct ms_watch_stats *out);

#endif /* MS_WATCH_HUB_H */
