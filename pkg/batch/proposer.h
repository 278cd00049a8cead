/* proposer.h - the batch proposer: groups client operations into Raft
 * entries (off | fixed | adaptive), encoding each op once, in place. */
#ifndef MS_BATCH_PROPOSER_H
#define MS_BATCH_PROPOSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "codec/codec.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/metrics.h"

enum ms_batch_mode {
    MS_BATCH_OFF = 0,      /* one entry per operation */
    MS_BATCH_FIXED = 1,    /* flush at max_ops / max_bytes / max_delay */
    MS_BATCH_ADAPTIVE = 2, /* never waits: self-clocking group commit */
};

struct ms_batch_config {
    enum ms_batch_mode mode;
    size_t max_ops;        /* ops per entry (all modes but off) */
    size_t max_bytes;      /* payload bytes per entry (soft: an entry is
                              closed once it reaches this) */
    uint64_t max_delay_us; /* fixed: flush this long after the first op */
    unsigned max_inflight; /* adaptive: entries in Raft at once */
};

#define MS_BATCH_DEFAULT_MAX_OPS 256
#define MS_BATCH_DEFAULT_MAX_BYTES (1u << 20)
#define MS_BATCH_DEFAULT_MAX_DELAY_US 1000
#define MS_BATCH_DEFAULT_MAX_INFLIGHT 4

/* Fills c with the defaults (adaptive). */
void ms_batch_config_default(struct ms_batch_config *c);
/* Parses "off|fixed|adaptive"; returns 0 or MS_EINVAL. */
int ms_batch_parse_mode(const char *s, enum ms_batch_mode *out);
const char *ms_batch_mode_name(enum ms_batch_mode m);
/* Returns 0 or MS_EINVAL (zero max_ops / max_bytes / max_inflight ...). */
int ms_batch_config_check(const struct ms_batch_config *c, char *errmsg,
                          size_t errmsg_size);

struct ms_proposal;
/* Called once per submitted operation: status 0 with the op's result
 * (borrowed: valid only during the call), or an MS_E code and r == NULL
 * (MS_ENOTLEADER, MS_ESHUTDOWN, MS_ENOSPACE, ... : the entry holding the op
 * failed, or the op could not be encoded). */
typedef void (*ms_proposal_cb)(struct ms_proposal *p, int status,
                               const struct ms_result *r);

/* Caller-allocated; must stay valid until cb has been called. */
struct ms_proposal {
    void *data; /* the caller's; never touched */
    ms_proposal_cb cb;
    /* private */
    uint64_t request_id;
    uint64_t enqueued_ns;
    struct ms_proposal *next;  /* within its entry: the ops still waiting */
    struct ms_proposal *prev;
    struct ms_proposal *hnext; /* in the pending table */
    struct ms_batch_entry *entry;
};

/* One Raft entry's worth of operations. Allocated by the proposer; the
 * sink hands it back through ms_batch_entry_done. */
struct ms_batch_entry {
    struct ms_batch_proposer *bp;
    struct ms_proposal *head, *tail;
    size_t n_ops;
    struct ms_buf buf;
    struct ms_batch_writer w;
    uint64_t first_ns;
    struct ms_batch_entry *next; /* in the ready queue */
    void *sink_data;             /* for the sink's own use */
};

/* Where entries go (Raft, or a fake in tests). */
struct ms_batch_sink {
    void *data;
    /* Proposes the entry payload in *payload. On 0 the sink has taken
     * what it keeps (ms_raft_propose empties *payload); whatever is left
     * in it is freed by the proposer. The sink must later call
     * ms_batch_entry_done(entry, status) exactly once, after the entry was
     * applied locally (status 0) or failed. On an error return every op in
     * the entry fails with that code and done must not be called. */
    int (*propose)(void *data, struct ms_batch_entry *entry,
                   struct ms_buf *payload);
};

struct ms_batch_stats {
    uint64_t entries_proposed;
    uint64_t ops_proposed;
    uint64_t entries_failed;
    uint64_t ops_failed;
    struct ms_histogram batch_size;  /* ops per entry */
    struct ms_histogram queue_delay; /* s from submit to propose */
};

struct ms_batch_proposer {
    uv_loop_t *loop;
    struct ms_batch_config cfg;
    struct ms_batch_sink sink;
    enum ms_codec_id codec;
    uint64_t node_id;
    uint64_t next_request_id;
    struct ms_batch_entry *open;              /* being filled */
    struct ms_batch_entry *ready, *ready_tail; /* closed, not proposed */
    unsigned inflight;
    struct ms_proposal **table; /* pending by request_id */
    size_t table_size;          /* power of two */
    size_t n_pending;
    uv_check_t check; /* adaptive: flush at the end of the loop iteration */
    uv_poll_t tpoll;  /* fixed: max_delay, on a timerfd (microseconds) */
    int tfd;
    bool timer_armed;
    bool check_active;
    bool closing;
    void (*close_cb)(struct ms_batch_proposer *);
    int n_closing;
    struct ms_batch_stats stats;
};

/* Initialises bp on loop. node_id goes into every op (results are routed
 * back only on the proposing node). Returns 0, MS_EINVAL, MS_ENOMEM or
 * MS_EIO (no timerfd); on failure nothing is left to close. */
int ms_batch_init(struct ms_batch_proposer *bp, uv_loop_t *loop,
                  const struct ms_batch_config *cfg, enum ms_codec_id codec,
                  uint64_t node_id, const struct ms_batch_sink *sink);

/* Submits one operation (borrowed: it is encoded before this returns; its
 * node_id/request_id are set by the proposer). p->cb is called exactly
 * once, normally later; it may run before this returns when the entry is
 * proposed at once and the sink refuses it. Returns 0, or MS_ESHUTDOWN /
 * MS_EINVAL / MS_ENOMEM, in which case p->cb is never called. */
int ms_batch_submit(struct ms_batch_proposer *bp, const struct ms_op *op,
                    struct ms_proposal *p);

/* Called by the state machine for each applied op that this node proposed
 * (op->node_id == node_id): hands r (borrowed) to the waiting proposal, if
 * it is still waiting. */
void ms_batch_deliver(struct ms_batch_proposer *bp, uint64_t request_id,
                      const struct ms_result *r);

/* Stops waiting for p: its callback runs now with status (e.g.
 * MS_ETIMEOUT) and never again. The op itself may still be applied (it
 * may be in Raft already): the outcome is unknown to the caller. p must
 * be pending (submitted, callback not yet run). */
void ms_batch_cancel(struct ms_batch_proposer *bp, struct ms_proposal *p,
                     int status);

/* Called by the sink once per proposed entry. Status 0: the entry was
 * applied (its ops' results were delivered; any op not delivered fails
 * with MS_EIO). Otherwise every op of the entry still waiting fails with
 * status. Frees the entry. */
void ms_batch_entry_done(struct ms_batch_entry *entry, int status);

/* Changes the configuration at runtime (the mode too). Returns 0 or
 * MS_EINVAL with errmsg. Queued ops are flushed under the new settings. */
int ms_batch_set_config(struct ms_batch_proposer *bp,
                        const struct ms_batch_config *cfg, char *errmsg,
                        size_t errmsg_size);

/* Fails every op not yet proposed with status, and refuses new ones with
 * MS_ESHUTDOWN. Entries in flight are still completed by the sink. */
void ms_batch_shutdown(struct ms_batch_proposer *bp, int status);

/* Entries proposed and not yet done. */
unsigned ms_batch_inflight(const struct ms_batch_proposer *bp);

/* Closes the handles; cb after they are closed. Call after shutdown and
 * after every in-flight entry is done. */
void ms_batch_close(struct ms_batch_proposer *bp,
                    void (*cb)(struct ms_batch_proposer *));

/* Appends Prometheus metrics for the proposer. */
int ms_batch_metrics(const struct ms_batch_proposer *bp, struct ms_buf *out);

#endif /* MS_BATCH_PROPOSER_H */
