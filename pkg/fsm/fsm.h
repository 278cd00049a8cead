/* fsm.h - the replicated state machine: decodes Raft entry payloads and
 * applies them to the store, routing results to local proposals. */
#ifndef MS_FSM_FSM_H
#define MS_FSM_FSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "fsm/alarms.h"
#include "fsm/members.h"
#include "store/store.h"
#include "util/buf.h"

/* Receives the result of each applied op that this node proposed
 * (op->node_id == node_id). r is borrowed for the call. */
typedef void (*ms_fsm_deliver_fn)(void *data, uint64_t request_id,
                                  const struct ms_result *r);

/* Observes every applied op with its result (watchers, leases, metrics).
 * Borrowed for the call. May be NULL. */
typedef void (*ms_fsm_observe_fn)(void *data, const struct ms_op *op,
                                  const struct ms_result *r);

/* Entries come in two kinds, told apart by the payload's second byte: an
 * operation batch (a codec id, codec/codec.h) or a member-table change
 * (MS_ENTRY_MEMBERS, then JSON: {"op":"upsert","id":"N","name":..,
 * "peer_url":..,"client_url":..,"learner":B} or {"op":"remove","id":"N"}).
 * Member changes are rare and proposed one per entry, never batched with
 * client operations; they do not advance the store revision. */
#define MS_ENTRY_MEMBERS 0x10
/* An auth change (pkg/auth: MS_ENTRY_AUTH, then the JSON of one
 * ms_auth_cmd). Passwords travel only as hashes made by the proposer. Like
 * member changes: one per entry, applied again on replay (the auth state
 * lives in memory and in snapshots), no store revision. */
#define MS_ENTRY_AUTH 0x12

/* An alarm entry: MS_ENTRY_ALARM, then JSON {"action":"activate" or
 * "deactivate","member_id":"N","alarm":"NOSPACE"}. Like member changes:
 * one per entry, no store revision. */
#define MS_ENTRY_ALARM 0x11

/* Called after a member entry was applied (the table is in fsm->members). */
typedef void (*ms_fsm_members_fn)(void *data);

struct ms_fsm_stats {
    uint64_t entries_applied;
    uint64_t ops_applied;
    uint64_t entries_skipped;  /* at or below the store's applied index */
    uint64_t entries_rejected; /* payload failed to decode */
    uint64_t snapshots_taken;
    uint64_t snapshots_restored;
    uint64_t snapshots_starved; /* children killed for no CPU at idle */
};

struct ms_fsm {
    struct ms_store *store; /* borrowed; outlives the fsm */
    uint64_t node_id;
    ms_fsm_deliver_fn deliver;
    void *deliver_data;
    ms_fsm_observe_fn observe;
    void *observe_data;
    ms_fsm_members_fn members_changed;
    void *members_data;
    struct ms_members members; /* replicated member table */
    struct ms_alarms alarms;   /* replicated alarms; NOSPACE caps the store */
    struct ms_auth auth;       /* replicated auth state (ms_fsm_free) */
    uint8_t codec;             /* recorded in snapshots */
    bool snapshot_inline;      /* never fork in ms_fsm_snapshot_begin */
    /* the forked child uses at most this share of one CPU (util/cowdump.h;
     * 0 or 100: no cap) */
    unsigned snapshot_cpu_percent;
    /* the last forked child starved at idle priority: the next one runs
     * at nice +10 (util/cowdump.h, MS_COWDUMP_IDLE); loop thread only */
    bool snapshot_starved;
    struct ms_fsm_stats stats;
    int fatal; /* the store failed: MS_EIO / MS_ENOMEM, 0 while healthy */
    char errmsg[256];
};

/* Initialises fsm over store (borrowed). */
void ms_fsm_init(struct ms_fsm *fsm, struct ms_store *store, uint64_t node_id,
                 uint8_t codec);

/* Applies the command entry at index: decodes buf (borrowed), applies the
 * batch, delivers local results. Never fails for bad content: an entry
 * that does not decode is logged and counted, and its index recorded as
 * applied, so every node skips it alike. Returns 0, or MS_EIO / MS_ENOMEM
 * when the store failed (fsm->fatal is set; the node must stop). */
int ms_fsm_apply(struct ms_fsm *fsm, uint64_t index, const uint8_t *buf,
                 size_t len);

/* Records index as applied for an entry with no operations (barrier,
 * configuration change). */
int ms_fsm_apply_empty(struct ms_fsm *fsm, uint64_t index);

/* Frees what the fsm owns (the auth state); the store is the caller's. */
void ms_fsm_free(struct ms_fsm *fsm);

/* The outcome of an applied auth entry, for its proposer. */
struct ms_fsm_auth_result {
    int rc;            /* 0 or an ms_auth_err */
    uint64_t revision; /* the auth revision after the entry */
};

/* Like ms_fsm_apply; when the entry is an auth change, *auth_result gets a
 * malloc'd outcome the caller frees (else NULL). */
int ms_fsm_apply_ex(struct ms_fsm *fsm, uint64_t index, const uint8_t *buf,
                    size_t len, struct ms_fsm_auth_result **auth_result);

/* Appends an auth entry payload for cmd to out. Returns 0 or MS_ENOMEM /
 * MS_EINVAL (cmd incomplete). */
int ms_fsm_encode_auth(const struct ms_auth_cmd *cmd, struct ms_buf *out);

/* Appends a member-table entry payload to out: upsert of m, or removal of
 * m->id when remove is set. A non-zero cluster_id is recorded as the
 * table's cluster id if it has none yet (the first leader's). Returns 0 or
 * MS_ENOMEM / MS_EINVAL (a name or URL with characters other than
 * printable ASCII without quotes). */
int ms_fsm_encode_member(const struct ms_member *m, bool remove,
                         uint64_t cluster_id, struct ms_buf *out);

/* Appends an alarm entry payload to out: raise (activate) or clear
 * (member_id, type). Returns 0, MS_ENOMEM or MS_EINVAL (type NONE or
 * unknown). */
int ms_fsm_encode_alarm(bool activate, uint64_t member_id,
                        enum ms_alarm_type type, struct ms_buf *out);

/* Serialises the whole state into out (appends), on the calling thread.
 * Returns 0 or an MS_E code with fsm->errmsg. */
int ms_fsm_snapshot(struct ms_fsm *fsm, struct ms_buf *out);

/* --- snapshots off the event loop ---------------------------------------
 *
 * ms_fsm_snapshot_begin captures the state as it is at the call (the
 * store's applied index at that moment) and returns at once; the bytes,
 * exactly those ms_fsm_snapshot would have produced at that moment, are
 * then collected on another thread while the loop keeps applying entries;
 * ms_fsm_snapshot_end releases them.
 *
 * memory backend: begin forks (util/cowdump.h); the child serialises its
 * copy-on-write image of the store and member table into a memory file,
 * and collect waits for it. The loop pays only for the fork.
 * rocksdb backend: begin takes a read-only view of the store (a RocksDB
 * snapshot, ms_store_view) and encodes the member table; collect
 * serialises them on its own thread (never in a forked child: RocksDB's
 * background threads may hold mutexes at fork time). The loop pays only
 * for the view.
 * A fork or view that failed, or fsm->snapshot_inline: begin serialises
 * on the calling thread, as ms_fsm_snapshot does, and collect returns
 * those bytes at once. */
struct ms_fsm_snapjob;

/* Loop thread. Returns 0 and *out (owned by the caller until
 * ms_fsm_snapshot_end), or an MS_E code with fsm->errmsg (nothing to end).
 * fsm and its store stay the caller's; the job keeps no pointer into them
 * that collect follows. */
int ms_fsm_snapshot_begin(struct ms_fsm *fsm, struct ms_fsm_snapjob **out);

/* Any one thread, at most once per job; blocks until the bytes are ready.
 * Touches only the job, never the fsm or the store. Returns 0 with
 * *buf and *len (owned by the job, valid until ms_fsm_snapshot_end), or an
 * MS_E code with errmsg (the child's message, MS_ECANCELED after cancel,
 * MS_ETIMEOUT for a stalled child). */
int ms_fsm_snapshot_collect(struct ms_fsm_snapjob *job, const uint8_t **buf,
                            size_t *len, char *errmsg, size_t errmsg_size);

/* Any thread, while a collect may be running: makes it fail with
 * MS_ECANCELED within a few ms (a forked child is killed). */
void ms_fsm_snapshot_cancel(struct ms_fsm_snapjob *job);

/* True when the job's bytes are produced by a forked child. */
bool ms_fsm_snapjob_forked(const struct ms_fsm_snapjob *job);

/* Loop thread, not concurrently with collect: releases job (a child still
 * running is killed and reaped). taken: the bytes were collected and
 * handed on (counted in fsm->stats.snapshots_taken). */
void ms_fsm_snapshot_end(struct ms_fsm *fsm, struct ms_fsm_snapjob *job,
                         bool taken);

/* ms_fsm_snapshot_end in two halves, so that the bytes (a snapshot of the
 * whole store: freeing them takes milliseconds of munmap) can be freed off
 * the loop: release (loop thread) counts the snapshot and lets go of the
 * store (the view); it returns job, which then holds memory only, for
 * ms_fsm_snapjob_free on any thread. */
struct ms_fsm_snapjob *ms_fsm_snapshot_release(struct ms_fsm *fsm,
                                               struct ms_fsm_snapjob *job,
                                               bool taken);
void ms_fsm_snapjob_free(struct ms_fsm_snapjob *job);

/* Replaces the state with the snapshot in buf[0..len) (borrowed). When the
 * store already holds this snapshot's applied index or later (a rocksdb
 * store that survived a restart) the load is skipped: the log replay that
 * follows skips what the store has. Returns 0 or an MS_E code with errmsg. */
int ms_fsm_restore(struct ms_fsm *fsm, const uint8_t *buf, size_t len);

#endif /* MS_FSM_FSM_H */
