/* priv.h - private state of a node, shared by node.c and members.c only. */
#ifndef MS_RAFT_PRIV_H
#define MS_RAFT_PRIV_H

#include <raft.h>
#include <raft/uv.h>

#include "raft/node.h"
#include "raft/tls_transport.h"
#include "raft/transport.h"

/* The struct of type that holds member at ptr. */
#define ms_raft__of(ptr, type, member)                                         \
    ((type *)(void *)((char *)ptr - offsetof(type, member)))

/* A request libraft has completed, queued until the loop delivers it to
 * the caller's callback (the rule "Calling libraft" in node.h). */
struct ms_raft_done {
    struct ms_raft_done *next;
    void (*deliver)(struct ms_raft_done *d); /* runs the caller's callback */
};

/* A proposal in flight: libraft's request plus our links. */
struct ms_raft_prop {
    struct raft_apply apply;
    struct ms_raft_propose_req *req;
    struct ms_raft_priv *p;
    struct ms_raft_prop *prev, *next;
    struct ms_raft_done done; /* once libraft called back */
    int status;
    void *result;
};

/* A leadership transfer. libraft 0.15 keeps sending its TimeoutNow message
 * through the raft_io_send embedded in struct raft_transfer and may touch
 * it after the transfer callback fired (fixed upstream after 0.15), so
 * these are freed only once libraft is closed. */
struct ms_raft_xfer {
    struct raft_transfer transfer;
    struct ms_raft_change_req *req; /* NULL: the one ms_raft_close issued */
    struct ms_raft_priv *p;
    struct ms_raft_xfer *next;
    struct ms_raft_done done; /* once libraft called back */
    int status;
};

struct ms_raft_priv {
    struct ms_raft *node; /* NULL once a failed start gave the node back */
    uv_loop_t *loop;
    struct raft raft;
    struct raft_io io;
    struct ms_raft_transport transport; /* TCP with TCP_NODELAY */
    /* with peer TLS (config->peer_tls): our own transport instead */
    struct ms_raft_tls_transport *tls_transport;
    struct raft_uv_transport *rt; /* the one libraft was given */
    struct raft_fsm rfsm;
    struct ms_raft_fsm fsm;
    uv_timer_t timer; /* ours: state polling and close draining */
    /* completed requests waiting for the loop, oldest first: drained by
     * dcheck (always on, unref'd) and didle (on while the queue is not
     * empty, so the loop does not block in poll meanwhile) */
    struct ms_raft_done *done_head, *done_tail;
    size_t n_done;
    uv_check_t dcheck;
    uv_idle_t didle;
    unsigned in_fsm; /* > 0 while a fsm callback runs (inside libraft) */
    ms_raft_state_cb state_cb;
    ms_raft_close_cb close_cb;
    char address[MS_RAFT_ADDR_SIZE];
    char *data_dir;
    int lock_fd; /* flock on <data_dir>/raft.lock, -1 when not held */
    unsigned heartbeat_ms;
    unsigned election_ms;

    bool have_raft;    /* raft_init succeeded: close through raft_close */
    bool started;      /* raft_start succeeded */
    bool closing;      /* ms_raft_close called (or failed start) */
    bool raft_closing; /* raft_close called */
    /* io close interception, see io_close() in node.c */
    void (*uv_close_fn)(struct raft_io *io, raft_io_close_cb cb);
    raft_io_close_cb raft_io_close_cb;
    bool io_closed;
    struct ms_logstore *ls;       /* the io's storage half, see io_load() */
    uint64_t disk_appends;        /* append requests libraft made */
    uint64_t disk_append_entries; /* entries in them */
    unsigned grace_ticks;         /* loop iterations left before freeing */

    /* proposals in flight, in index order */
    struct ms_raft_prop *props_head, *props_tail;
    size_t n_props;
    size_t n_barriers; /* user barriers in flight */
    size_t n_changes;  /* membership changes in flight */

    /* the barrier each new leader appends so earlier terms' entries commit */
    struct raft_barrier lead_barrier;
    bool lead_barrier_inflight;
    uint64_t lead_barrier_term;
    bool leader_ready;

    struct ms_raft_xfer *xfers; /* see struct ms_raft_xfer */
    bool close_xfer_pending;
    uint64_t close_start_ms;

    /* last observed, for logging and state_cb */
    int seen_state;
    uint64_t seen_term;
    uint64_t seen_leader;
    bool seen_ready;
    int seen_fsm_error;

    int fsm_error;
    bool snapshot_failing; /* log a failing snapshot once per streak */
    /* the log-size condition (ms_raft_config.snapshot_log_percent):
     * entry bytes applied since the last snapshot was begun and taken,
     * the bytes of the last snapshot taken or restored (0: none yet since
     * start), and the applied bytes counted at the current one's begin;
     * snapshot_threshold is the configured one (libraft's is raised while
     * a snapshot is put off) */
    unsigned snapshot_threshold;
    unsigned snapshot_log_percent;
    uint64_t log_bytes_since_snap;
    uint64_t last_snap_bytes;
    uint64_t snap_log_mark;
    uint64_t snapshots_deferred;

    /* The asynchronous snapshot in progress (fsm version 3), NULL when
     * none. Set on the loop in fsm_snapshot before libraft queues the
     * threadpool work; snap_rc, snap_len, snap_ready_ns and snap_errmsg
     * are written only by that work (fsm_snapshot_async) and read only in
     * fsm_snapshot_finalize, after it completed. */
    void *snap_job;
    uint64_t snap_index;    /* libraft's last_applied at begin */
    uint64_t snap_begin_ns; /* when begin was called */
    uint64_t snap_began_ns; /* when begin returned */
    int snap_rc;            /* collect's result; -1: not run */
    size_t snap_len;
    uint64_t snap_ready_ns; /* when collect returned */
    char snap_errmsg[MS_ERRMSG_SIZE];
    /* the log store's answer to writing the snapshot (libraft's put
     * callback passes through io_snapshot_put's); -1: not answered */
    int snap_put_rc;
    raft_io_snapshot_put_cb snap_put_cb;
};

/* Maps a libraft error code to ours. */
int ms_raft__code(int rv);

/* Fails a call with the node's errmsg set from libraft's last message. */
int ms_raft__fail(struct ms_raft_priv *p, int rv, const char *what);

/* Checks that the node can take a new request (started, not closing). */
int ms_raft__usable(struct ms_raft *node);

/* The check in front of every call that submits to libraft: usable, not
 * inside a fsm callback (MS_EINVAL), leader and not transferring
 * (MS_ENOTLEADER). what names the call in errmsg. */
int ms_raft__can_submit(struct ms_raft *node, const char *what);

/* Queues d for delivery from the loop. Called from libraft callbacks. */
void ms_raft__defer(struct ms_raft_priv *p, struct ms_raft_done *d);

#endif /* MS_RAFT_PRIV_H */
