/* readindex.h - linearizable reads: one Raft barrier serves every read
 * queued since the previous barrier (ReadIndex-style amortisation). */
#ifndef MS_BATCH_READINDEX_H
#define MS_BATCH_READINDEX_H

#include <stdbool.h>
#include <stdint.h>

struct ms_read_waiter;
/* status 0: everything committed before the read arrived is applied
 * locally; serve the read now. Else an MS_E code (no leader, shutdown). */
typedef void (*ms_read_cb)(struct ms_read_waiter *w, int status);

/* Caller-allocated; valid until cb. */
struct ms_read_waiter {
    void *data;
    ms_read_cb cb;
    struct ms_read_waiter *next; /* private */
};

struct ms_readindex;

struct ms_read_sink {
    void *data;
    /* Issues one barrier. On 0 the sink later calls
     * ms_readindex_done(ri, status) exactly once. On error the round
     * fails with that code. */
    int (*barrier)(void *data, struct ms_readindex *ri);
};

struct ms_readindex {
    struct ms_read_sink sink;
    struct ms_read_waiter *waiting, *waiting_tail; /* next round */
    struct ms_read_waiter *round;                  /* current barrier */
    bool outstanding;
    int closed; /* 0, or the status new reads fail with */
    uint64_t barriers; /* issued */
    uint64_t reads;    /* served through barriers */
};

void ms_readindex_init(struct ms_readindex *ri, const struct ms_read_sink *s);

/* Queues w for the next barrier (issued at once if none is outstanding).
 * w->cb is called later, or from inside this call only when issuing the
 * barrier fails at once. */
void ms_readindex_wait(struct ms_readindex *ri, struct ms_read_waiter *w);

/* Completes the outstanding round and starts the next one if reads are
 * waiting. */
void ms_readindex_done(struct ms_readindex *ri, int status);

/* Stops waiting for w (queued or in the outstanding round): its callback
 * runs now with status and never again. */
void ms_readindex_cancel(struct ms_readindex *ri, struct ms_read_waiter *w,
                         int status);

/* Fails every waiting read (not the outstanding round, which the sink
 * completes) with status and refuses new ones with the same status. */
void ms_readindex_shutdown(struct ms_readindex *ri, int status);

#endif /* MS_BATCH_READINDEX_H */
