/* logstore.h - the storage half of metastore's struct raft_io: the Raft
 * log, term and vote, and snapshots in the format of logfmt.h, written by
 * one thread of its own with group commit, so the event loop never waits
 * for the disk (except for set_term/set_vote and bootstrap, which C-Raft's
 * interface makes synchronous, and load at start).
 *
 * node.c keeps C-Raft's stock libuv io for the network, the tick timer and
 * async work, and points its storage methods here. Requests complete in the
 * order they were made; callbacks run on the loop.
 *
 * The writer thread takes every request queued since its last round,
 * encodes the entries into one buffer, writes it with one pwrite per
 * segment and makes it durable with one fdatasync, then completes them all:
 * while a write is on the disk the next round's requests queue up, so the
 * batch grows with the load and a lone request never waits for company.
 * Segments are preallocated (fallocate) when they are opened; closed ones
 * are deleted once a snapshot covers them (after C-Raft's trailing
 * entries). Snapshots are written on libuv's threadpool to tmp- files,
 * synced, renamed; the newest two are kept. */
#ifndef MS_RAFT_LOGSTORE_H
#define MS_RAFT_LOGSTORE_H

#include <raft.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/metrics.h"

struct ms_logstore;

#define MS_LOGSTORE_DEFAULT_SEGMENT (64u * 1024 * 1024)

/* Opens the store on dir (which exists) without reading the log yet.
 * Refuses (MS_EVERSION, errmsg says how to move on) a directory holding
 * C-Raft's own format, which metastore used before. */
int ms_logstore_open(uv_loop_t *loop, const char *dir, uint64_t segment_size,
                     struct ms_logstore **out, char *errmsg, size_t n);

/* The struct raft_io storage methods, with C-Raft's semantics; errors are
 * C-Raft codes, the text in errmsg (RAFT_ERRMSG_BUF_SIZE bytes). */
int ms_logstore_load(struct ms_logstore *ls, raft_term *term, raft_id *vote,
                     struct raft_snapshot **snapshot, raft_index *start_index,
                     struct raft_entry **entries, size_t *n_entries,
                     char *errmsg);
int ms_logstore_bootstrap(struct ms_logstore *ls,
                          const struct raft_configuration *conf, char *errmsg);
int ms_logstore_set_term(struct ms_logstore *ls, raft_term term, char *errmsg);
int ms_logstore_set_vote(struct ms_logstore *ls, raft_id vote, char *errmsg);
int ms_logstore_append(struct ms_logstore *ls, struct raft_io_append *req,
                       const struct raft_entry entries[], unsigned n,
                       raft_io_append_cb cb);
int ms_logstore_truncate(struct ms_logstore *ls, raft_index index);
int ms_logstore_snapshot_put(struct ms_logstore *ls, unsigned trailing,
                             struct raft_io_snapshot_put *req,
                             const struct raft_snapshot *snapshot,
                             raft_io_snapshot_put_cb cb);
int ms_logstore_snapshot_get(struct ms_logstore *ls,
                             struct raft_io_snapshot_get *req,
                             raft_io_snapshot_get_cb cb);

/* Counters since open (read on the loop). */
struct ms_logstore_stats {
    uint64_t writes;                   /* rounds of the writer */
    uint64_t syncs;                    /* fdatasyncs of the log */
    uint64_t entries;                  /* entries made durable */
    uint64_t bytes;                    /* record bytes written */
    uint64_t segments;                 /* segments opened */
    uint64_t sync_ns_max;              /* the longest write + fdatasync */
    struct ms_histogram round_seconds; /* every round's write + fdatasync */
    /* old segments and snapshots, deleted in steps (util/reaper.h) */
    uint64_t files_deleted;
    uint64_t delete_steps;
    uint64_t delete_pending_bytes;
};
void ms_logstore_stats(const struct ms_logstore *ls,
                       struct ms_logstore_stats *out);

/* Stops the writer after the round in flight, completes what is left
 * (RAFT_CANCELED for requests not written), waits for snapshot work on the
 * threadpool, then calls cb(arg) on the loop and frees ls. */
void ms_logstore_close(struct ms_logstore *ls, void (*cb)(void *arg),
                       void *arg);

/* Fault injection for tests (test/test_logstore.c); NULL in the server.
 * When set, it is called at every step of a write that a crash could cut
 * ("log-write" before a segment write of len bytes of buf at off of fd,
 * "log-sync" before its fdatasync, "seg-header", "seg-alloc",
 * "seg-created", "seg-drop", "trunc-zero", "compact-unlink", "meta-write",
 * "meta-synced", "snap-write", "snap-synced", "snap-renamed",
 * "snap-prune", "install-written", "load-zero"): it may write a prefix of
 * buf itself (a torn write) and _exit, as a crash at that point would. */
extern void (*ms_logstore__fault)(const char *point, int fd, const void *buf,
                                  size_t len, uint64_t off);

#endif
