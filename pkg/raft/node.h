/* node.h - one Raft member: our glue around libraft (C-Raft 0.15). */
#ifndef MS_RAFT_NODE_H
#define MS_RAFT_NODE_H

/*
 * Every call into libraft lives in pkg/raft/, so the rules of
 * /work/shared/CRAFT_NOTES.md are applied in one place: SIGPIPE ignored,
 * leaders drained (or transferred away) before raft_close, the close order
 * raft_close -> raft_uv_close + raft_uv_tcp_close, all three fsm callbacks
 * set, install-snapshot timeout 3 s, large segments and snapshot threshold,
 * dotted IPv4 addresses, bootstrap once.
 *
 * Threading: everything runs on the loop thread given to ms_raft_start();
 * no function here may be called from another thread.
 *
 * Shape (libuv style): struct ms_raft is a caller-allocated long-lived
 * handle; proposals, barriers and membership changes are caller-allocated
 * requests with a `void *data` that pkg/raft never touches. If a function
 * that takes a callback returns an error, the callback is never called.
 * Requests must stay valid until their callback has fired.
 *
 * Calling libraft: when it may be entered, and from where.
 *
 * libraft 0.15 fails every request of a leader that steps down from
 * inside convertToFollower() (reached from tickLeader() when the leader
 * loses contact with a quorum, from recvBumpCurrentTerm() on a higher
 * term, from recvAppendEntries() / recvInstallSnapshot(), and from
 * applyChange() when the leader is removed) and from
 * convertToUnavailable() (raft_close(), or an error in recvCb()/tickCb()):
 * convertClear() -> convertClearLeader() frees leader_state.progress and
 * sets it to NULL, then fires RAFT_LEADERSHIPLOST on each raft_apply and
 * raft_barrier request of leader_state.requests and on the pending
 * raft_change. Only afterwards does convertSetState() leave RAFT_LEADER.
 * So inside those callbacks raft_state() still says RAFT_LEADER and
 * r->transfer is NULL; raft_apply() and raft_barrier() pass their own
 * leader check, append to the log, queue the request on the list being
 * drained, and replicationTrigger() -> triggerAll() ->
 * replicationProgress() -> progressState() reads the freed progress
 * array through its NULL pointer (progress[i] is 0x38 bytes: the faults
 * at 0x0 and 0x38 seen in the field). raft_add/raft_assign/raft_remove
 * (progressRebuildArray, progressMatchIndex) and raft_transfer
 * (clientSelectTransferee -> progressIsUpToDate) read the same array.
 * A leader's failed disk write is no better: appendLeaderCb() fires the
 * apply callback and only then calls logTruncate() from that entry's
 * index on, dropping whatever the callback appended while its request
 * stays queued. A leader check inside a libraft callback therefore
 * proves nothing, and the library checks nothing (asserts are compiled
 * out in Debian's build).
 *
 * The rule: libraft is entered only from the loop, never from inside a
 * libraft callback. Concretely:
 *  - pkg/raft never runs a request callback (ms_raft_propose_cb,
 *    ms_raft_barrier_cb, ms_raft_change_cb) from inside libraft: the
 *    libraft callback only records the outcome and queues it; the queue
 *    is drained from the loop (a uv_check handle, which runs in the same
 *    loop iteration, backed by a uv_idle handle so that the loop does not
 *    block meanwhile), in completion order, when libraft's state is
 *    consistent again. Follow-up work submitted from a request callback
 *    (the batch proposer's next entry, the read index's next barrier) is
 *    therefore always submitted from the loop.
 *  - every function here that submits to libraft (ms_raft_propose,
 *    ms_raft_barrier, ms_raft_add, ms_raft_assign, ms_raft_remove,
 *    ms_raft_transfer, the leader barrier, the handover in ms_raft_close)
 *    checks right before the call that the node is leader (raft_state()
 *    == RAFT_LEADER, no transfer under way) and fails with MS_ENOTLEADER
 *    otherwise; called while libraft is inside a fsm callback (apply,
 *    snapshot, restore, ...: the caller's code runs inside libraft
 *    there) it fails with MS_EINVAL and submits nothing.
 * A request callback thus never observes a half-converted node: when it
 * runs for MS_ENOTLEADER, ms_raft_is_leader() is already false.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "tls/tls.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/metrics.h"

/* Room for an "a.b.c.d:port" address (and for longer ones from peers). */
#define MS_RAFT_ADDR_SIZE 64

/* Defaults used for zero fields of struct ms_raft_config. */
#define MS_RAFT_DEFAULT_HEARTBEAT_MS 100
#define MS_RAFT_DEFAULT_ELECTION_MS 1000
#define MS_RAFT_DEFAULT_INSTALL_SNAPSHOT_MS 3000
#define MS_RAFT_DEFAULT_SNAPSHOT_THRESHOLD 10000
#define MS_RAFT_DEFAULT_SNAPSHOT_TRAILING 2048
#define MS_RAFT_DEFAULT_SEGMENT_SIZE (32u * 1024 * 1024)

/* Raft state of this node. */
enum ms_raft_state {
    MS_RAFT_UNAVAILABLE = 0, /* not started, failed, or closing */
    MS_RAFT_FOLLOWER = 1,
    MS_RAFT_CANDIDATE = 2,
    MS_RAFT_LEADER = 3,
};

/* Role of a server in the cluster configuration. */
enum ms_raft_role {
    MS_RAFT_STANDBY = 0, /* replicates the log, does not vote */
    MS_RAFT_VOTER = 1,   /* replicates the log and votes */
    MS_RAFT_SPARE = 2,   /* neither (a freshly added server) */
};

/* The replicated state machine, implemented by the caller (pkg/fsm).
 * All callbacks run on the loop thread, from inside libraft: nothing
 * called from them may submit to the node (see "Calling libraft" above;
 * such calls fail with MS_EINVAL). */
struct ms_raft_fsm {
    void *data; /* passed as first argument to every callback */

    /* Applies the committed command entry at log index (every node, in log
     * order; after a restart entries following the last snapshot are
     * applied again, so a durable store skips indexes it already holds).
     * buf[0..len) is borrowed for the call. *result starts NULL; what the
     * callback stores there is handed to the local proposal of this entry
     * (its ms_raft_propose_cb), or, when no local proposal waits for it,
     * passed to release() (if set) right away.
     * Must return 0 for anything that is a property of the entry (bad
     * payload, failed compare, ...): those are results, not errors. A
     * non-zero return means the state machine itself broke (I/O, memory):
     * the entry stays unapplied, the node stops applying, the code is kept
     * in ms_raft_status.fsm_error, and the process should stop. Required. */
    int (*apply)(void *data, uint64_t index, const uint8_t *buf, size_t len,
                 void **result);

    /* Frees a non-NULL apply() result that no local proposal receives.
     * Optional (NULL: such results are dropped). */
    void (*release)(void *data, void *result);

    /* Serialises the whole state by appending to out (empty on entry; at
     * least one byte must be produced). On return 0 the bytes pass to
     * pkg/raft, which writes them to disk without copying and frees them.
     * On an error nothing is taken and out is freed by pkg/raft; the
     * snapshot is retried later. Required. */
    int (*snapshot)(void *data, struct ms_buf *out);

    /* Replaces the whole state with a snapshot produced by snapshot() on
     * some node. buf[0..len) is borrowed for the call (pkg/raft frees it).
     * Returns 0 or an MS_E* code (libraft then rejects the snapshot).
     * Required. */
    int (*restore)(void *data, const uint8_t *buf, size_t len);

    /* Optional: snapshots serialised off the loop thread. Set all of
     * snapshot_begin, snapshot_collect and snapshot_end, or none (then
     * snapshot() above runs on the loop). snapshot() stays required: it is
     * the fallback when the libraft io cannot run work in its threadpool.
     *
     * snapshot_begin (loop thread) captures the state at the applied index
     * libraft labels the snapshot with (the last index apply() was called
     * for) and returns quickly: *job is the caller's handle. The loop then
     * keeps applying entries; what collect produces must not depend on
     * them. On an error nothing is started and the snapshot is retried
     * after a later apply.
     *
     * snapshot_collect (a libuv threadpool thread) produces the bytes of
     * the state captured by begin: *buf/ *len stay owned by the job (at
     * least one byte), read by libraft until snapshot_end. It may block;
     * it must touch nothing but the job (the loop thread runs meanwhile).
     * On an error it fills errmsg and returns an MS_E code: the snapshot is
     * dropped and retried later. Called at most once per job, possibly
     * never (then snapshot_end follows begin directly).
     *
     * snapshot_cancel (loop thread, optional) asks a running collect to
     * return soon with an error; pkg/raft calls it when the node closes.
     *
     * snapshot_end (loop thread) follows every successful begin exactly
     * once, after collect returned and libraft is done with the bytes
     * (written to disk, or failed): it releases the job. taken: collect
     * succeeded. */
    int (*snapshot_begin)(void *data, void **job);
    int (*snapshot_collect)(void *job, const uint8_t **buf, size_t *len,
                            char *errmsg, size_t errmsg_size);
    void (*snapshot_cancel)(void *job);
    void (*snapshot_end)(void *data, void *job, bool taken);
};

/* A server of the initial cluster. */
struct ms_raft_server {
    uint64_t id;         /* > 0, unique */
    const char *address; /* "IP:port", "host:port" or "http://host:port" */
};

struct ms_raft;

/* Called after this node's state, term, known leader or leader_ready
 * changed (observed at most once per heartbeat interval). */
typedef void (*ms_raft_state_cb)(struct ms_raft *node);

/* Settings of a node. Start from ms_raft_config_init(); zero numbers mean
 * the defaults above. Strings are borrowed for ms_raft_start() only. */
struct ms_raft_config {
    uint64_t id;          /* this node's id, > 0 */
    const char *address;  /* this node's peer address (normalised) */
    const char *data_dir; /* created (0700) if missing */
    unsigned heartbeat_ms;
    unsigned election_ms; /* must be > heartbeat_ms */
    unsigned install_snapshot_ms;
    unsigned snapshot_threshold; /* entries between snapshots (kept in RAM) */
    unsigned snapshot_trailing;  /* entries kept in the log after one */
    /* and, once snapshot_threshold entries are applied, not before the
     * log since the last snapshot holds this percentage of that
     * snapshot's bytes (0: by entries only). Bounds the bytes written in
     * snapshots to 100 / percent times the log's, where a store much
     * larger than snapshot_threshold entries would otherwise be rewritten
     * whole every few thousand puts. */
    unsigned snapshot_log_percent;
    size_t segment_size; /* bytes per open log segment */
    bool pre_vote;       /* default true */
    /* Initial cluster, used to bootstrap a fresh data directory. All are
     * voters and the list must contain this node. NULL/0: a cluster of
     * this node alone. Ignored when join is set or the directory already
     * holds a log. */
    const struct ms_raft_server *servers;
    size_t n_servers;
    /* Joining an existing cluster: never bootstrap; start empty and wait
     * for the leader to add this node (ms_raft_add). */
    bool join;
    ms_raft_state_cb state_cb; /* optional */
    /* Peer TLS (borrowed for ms_raft_start only: files are read then).
     * NULL: plain TCP, C-Raft's stock transport with TCP_NODELAY. Set:
     * mutual TLS before anything reaches libraft (raft/tls_transport.h);
     * a bad file fails the start with MS_EIO naming it. */
    const struct ms_tls_config *peer_tls;
};

/* The node handle. Caller-allocated; fields other than data and errmsg are
 * private. Valid from ms_raft_start() until the close callback fired. */
struct ms_raft {
    void *data;                  /* user data, never touched here */
    char errmsg[MS_ERRMSG_SIZE]; /* why the last call failed */
    struct ms_raft_priv *priv;   /* private */
};

/* Fills c with the defaults (pre_vote on, numbers zero = defaults). */
void ms_raft_config_init(struct ms_raft_config *c);

/* Entry framing. libraft 0.15 silently requires every entry's length to
 * be a multiple of 8 (on disk and on the wire; the check is an assert that
 * Debian compiles out, and a violation corrupts segments and replicated
 * payloads). So ms_raft_propose appends 1..8 pad bytes to each payload:
 * zeros, then a last byte holding the pad count; fsm->apply sees the
 * payload without them. Readers of the raw log (walinspect) unframe an
 * entry with ms_raft_unframe. */
#define MS_RAFT_PAD_MAX 8

/* Sets *payload_len to the length of the payload inside a command entry
 * buf[0..len) as stored in the log. Returns 0, or MS_ECORRUPT when the
 * length is not a multiple of 8 or the pad bytes are malformed. */
int ms_raft_unframe(const uint8_t *buf, size_t len, size_t *payload_len);

/* Turns a peer address into the dotted "a.b.c.d:port" that libraft needs:
 * strips "http://" / "https://" and a trailing "/", resolves a host name
 * ("localhost") to its first IPv4 address. Writes the NUL-terminated
 * result to out (size bytes). Returns 0, or MS_EINVAL (malformed, IPv6,
 * unresolvable, too long) with a message naming the address in errmsg
 * (MS_ERRMSG_SIZE bytes; may be NULL). May block in name resolution. */
int ms_raft_normalize_address(const char *in, char *out, size_t size,
                              char *errmsg);

/* Opens the data directory, bootstraps it once (unless config->join; an
 * already bootstrapped directory is carried on with), starts listening on
 * config->address and starts Raft on loop. fsm is copied; fsm->data must
 * outlive the node. Ignores SIGPIPE process-wide. Holds an exclusive
 * flock on <data_dir>/raft.lock until closed (libraft has none).
 * Returns 0, or MS_EINVAL (bad config), MS_EIO (data directory unusable or
 * in use by another node: errmsg names it), MS_ENOMEM, MS_ECORRUPT (log or
 * snapshot unreadable), MS_ERAFT (libraft's message in errmsg). On error
 * nothing needs closing: resources already taken are released by pkg/raft
 * itself, partly through the loop, so run the loop once more (uv_run)
 * before uv_loop_close(). The node memory is free on return. */
int ms_raft_start(struct ms_raft *node, uv_loop_t *loop,
                  const struct ms_raft_config *config,
                  const struct ms_raft_fsm *fsm);

typedef void (*ms_raft_close_cb)(struct ms_raft *node);

/* Shuts the node down: new proposals, barriers and changes fail with
 * MS_ESHUTDOWN; a leader with other voters first hands leadership over
 * (raft_transfer, at most an election timeout) and every in-flight
 * proposal and barrier callback fires before libraft is closed (after an
 * fsm failure, or after waiting max(5 s, 4 election timeouts), libraft is
 * closed anyway and fails the rest with MS_ESHUTDOWN); then cb (may be
 * NULL) is called from the loop and the node memory may be freed.
 * Returns 0, or MS_EINVAL if the node is not started or already closing
 * (cb is then not called). */
int ms_raft_close(struct ms_raft *node, ms_raft_close_cb cb);

/* --- proposals and reads ----------------------------------------------- */

struct ms_raft_propose_req;

/* status: 0 (applied on this node; result is what fsm->apply stored and
 * now belongs to the callback), MS_ENOTLEADER (leadership lost before the
 * entry committed: it may still be applied later, the outcome is unknown),
 * MS_ESHUTDOWN (the node closed first; outcome unknown too), MS_ERAFT.
 * result is NULL on error. */
typedef void (*ms_raft_propose_cb)(struct ms_raft_propose_req *req, int status,
                                   void *result);

struct ms_raft_propose_req {
    void *data;     /* user data */
    uint64_t index; /* read-only: the entry's log index once accepted */
    /* private */
    ms_raft_propose_cb cb;
    struct ms_raft *node;
};

/* Appends one command entry with the bytes of payload (a non-empty ms_buf)
 * and calls cb once it is applied on this node, or failed. On success the
 * payload's memory passes to pkg/raft and *payload is left empty; on error
 * *payload keeps its bytes (its capacity may have grown by the framing,
 * see MS_RAFT_PAD_MAX). cb runs from the loop, never from inside this
 * call nor from inside libraft. Returns 0, MS_ENOTLEADER (not the leader,
 * or handing leadership over), MS_ESHUTDOWN (closing), MS_EINVAL (empty,
 * or called from a fsm callback), MS_ENOMEM, MS_ERAFT. */
int ms_raft_propose(struct ms_raft *node, struct ms_raft_propose_req *req,
                    struct ms_buf *payload, ms_raft_propose_cb cb);

struct ms_raft_barrier_req;

/* status: 0 (every entry before the barrier is applied here and this node
 * was leader when it committed), MS_ENOTLEADER, MS_ESHUTDOWN, MS_ERAFT. */
typedef void (*ms_raft_barrier_cb)(struct ms_raft_barrier_req *req, int status);

struct ms_raft_barrier_req {
    void *data;
    uint64_t index; /* read-only: the barrier entry's index */
    /* private */
    ms_raft_barrier_cb cb;
    struct ms_raft *node;
};

/* Appends a barrier entry (for linearizable reads). Each barrier is one
 * log entry; libraft does not merge them, so keep one outstanding and
 * let reads that arrive meanwhile wait for the next. cb runs from the
 * loop. Returns 0, MS_ENOTLEADER, MS_ESHUTDOWN, MS_EINVAL (called from a
 * fsm callback), MS_ENOMEM, MS_ERAFT. */
int ms_raft_barrier(struct ms_raft *node, struct ms_raft_barrier_req *req,
                    ms_raft_barrier_cb cb);

/* --- state -------------------------------------------------------------- */

struct ms_raft_status {
    uint64_t id;
    enum ms_raft_state state;
    uint64_t term;
    uint64_t leader_id; /* 0: no known leader */
    char leader_address[MS_RAFT_ADDR_SIZE];
    uint64_t commit_index;
    uint64_t last_applied;
    uint64_t last_index;     /* last entry in the local log */
    uint64_t snapshot_index; /* last snapshot (0: none) */
    /* Leader whose first entry of its term (an internal barrier) has been
     * applied: everything committed before it is applied here too. */
    bool leader_ready;
    int fsm_error;   /* non-zero once fsm->apply failed: the node is stuck */
    unsigned voters; /* voters in the latest known configuration */
    size_t inflight; /* proposals + barriers waiting for their callback */
    uint64_t disk_appends;             /* log append requests libraft made */
    uint64_t disk_append_entries;      /* entries they carried */
    uint64_t disk_writes;              /* fdatasyncs of the log: the log store
                                          merges queued requests into one */
    uint64_t log_bytes;                /* record bytes written to the log */
    uint64_t log_segments;             /* log segments opened */
    uint64_t log_sync_max_ns;          /* longest write + fdatasync round */
    struct ms_histogram log_rounds;    /* seconds per write + fdatasync round */
    uint64_t log_files_deleted;        /* old segments and snapshots deleted */
    uint64_t log_delete_steps;         /* the truncations that deleted them */
    uint64_t log_delete_pending_bytes; /* bytes still to delete */
    uint64_t snapshot_log_bytes;       /* entry bytes applied since the last
                                          snapshot */
    uint64_t snapshot_last_bytes;      /* its size (0: none since start) */
    uint64_t snapshots_deferred;       /* asks put off by the log-size rule */
};

/* Fills out with the node's current state (an unstarted or closed node
 * reads as MS_RAFT_UNAVAILABLE with zeros). */
void ms_raft_get_status(struct ms_raft *node, struct ms_raft_status *out);

/* True when this node is the leader (and not handing leadership over). */
bool ms_raft_is_leader(struct ms_raft *node);

/* Returns the id of the known leader (0: none) and copies its address to
 * addr (size bytes; "" when unknown). addr may be NULL. */
uint64_t ms_raft_leader(struct ms_raft *node, char *addr, size_t size);

/* --- membership ------------------------------------------------------- */

struct ms_raft_member {
    uint64_t id;
    char address[MS_RAFT_ADDR_SIZE];
    enum ms_raft_role role;
};

/* Copies the latest known configuration (possibly not yet committed) into
 * a malloc'd array *out of *n members, which the caller frees with free().
 * Returns 0, MS_EINVAL (not started) or MS_ENOMEM. */
int ms_raft_members(struct ms_raft *node, struct ms_raft_member **out,
                    size_t *n);

struct ms_raft_change_req;

/* Runs from the loop, like the other request callbacks. status: 0
 * (committed; for a transfer: the target is now leader),
 * MS_ENOTLEADER (leadership lost), MS_ETIMEOUT (transfer did not complete
 * within an election timeout), MS_ESHUTDOWN, MS_ERAFT. */
typedef void (*ms_raft_change_cb)(struct ms_raft_change_req *req, int status);

struct ms_raft_change_req {
    void *data;
    /* private */
    ms_raft_change_cb cb;
    struct ms_raft *node;
};

/* Adds server id at address (normalised here) as a spare. Leader only.
 * Returns 0, MS_ENOTLEADER, MS_ESHUTDOWN, MS_EEXISTS (id or address in
 * use), MS_EINVAL, MS_ERAFT (a change is already in progress, ...). */
int ms_raft_add(struct ms_raft *node, struct ms_raft_change_req *req,
                uint64_t id, const char *address, ms_raft_change_cb cb);

/* Gives server id a new role. Promoting to voter first lets the server
 * catch up with the log. Returns 0, MS_ENOTLEADER, MS_ESHUTDOWN,
 * MS_ENOTFOUND, MS_EINVAL (has that role already), MS_ERAFT. */
int ms_raft_assign(struct ms_raft *node, struct ms_raft_change_req *req,
                   uint64_t id, enum ms_raft_role role, ms_raft_change_cb cb);

/* Removes server id from the configuration (transfer leadership first to
 * remove the leader itself). Returns 0, MS_ENOTLEADER, MS_ESHUTDOWN,
 * MS_ENOTFOUND, MS_ERAFT. */
int ms_raft_remove(struct ms_raft *node, struct ms_raft_change_req *req,
                   uint64_t id, ms_raft_change_cb cb);

/* Hands leadership to voter id (0: the most up-to-date voter). Proposals
 * fail with MS_ENOTLEADER meanwhile. Returns 0, MS_ENOTLEADER,
 * MS_ESHUTDOWN, MS_ENOTFOUND (no such voter / no other voter). */
int ms_raft_transfer(struct ms_raft *node, struct ms_raft_change_req *req,
                     uint64_t id, ms_raft_change_cb cb);

#endif /* MS_RAFT_NODE_H */
