/* space.c - the disk-space alarm (etcd's NOSPACE): writes are refused
 * while a data directory runs low, reads go on, and the member recovers by
 * itself once space is freed. */
#include "api/server_priv.h"
#include "util/error.h"
#include "util/log.h"

#include <sys/statvfs.h>

#define CHECK_INTERVAL_NS 1000000000ull
/* At most one handover per this long: two members low on space would
 * otherwise pass leadership back and forth. */
#define HANDOVER_INTERVAL_NS 10000000000ull

/* libraft 0.15 never steps down on a failed log write, and with several
 * appends in flight a leader whose disk filled up crashes (CRAFT_NOTES):
 * the alarm must go off while libraft can still write. Writes stop, so
 * what is still written is small: one barrier entry per round of
 * linearizable reads, into segments libraft allocated earlier. */

static int free_bytes(const char *path, uint64_t *out)
{
    struct statvfs v;

    if (statvfs(path, &v) != 0)
        return -1;
    *out = (uint64_t)v.f_bavail * v.f_frsize;
    return 0;
}

static void on_handed_over(struct ms_raft_change_req *req, int status)
{
    struct ms_server *s = req->data;

    s->space_xfer_busy = false;
    if (status == 0)
        ms_info("space: handed leadership over (its reads need log "
                "writes)");
    else
        ms_warn("space: handing leadership over failed: %s",
                ms_strerror(status));
}

/* A leader with other voters hands leadership over: there a linearizable
 * read needs a barrier, which is a log entry; elsewhere it is forwarded to
 * the leader and writes nothing here. */
static void hand_over(struct ms_server *s, uint64_t now)
{
    struct ms_raft_status st;
    int rc;

    if (s->space_xfer_busy || s->stopping || !ms_raft_is_leader(&s->raft) ||
        (s->space_handover_ns != 0 &&
         now - s->space_handover_ns < HANDOVER_INTERVAL_NS))
        return;
    ms_raft_get_status(&s->raft, &st);
    if (st.voters < 2)
        return;
    s->space_handover_ns = now;
    s->space_xfer.data = s;
    rc = ms_raft_transfer(&s->raft, &s->space_xfer, 0, on_handed_over);
    if (rc != 0)
        ms_warn("space: cannot hand leadership over: %s", s->raft.errmsg);
    else
        s->space_xfer_busy = true;
}

void ms_space_check(struct ms_server *s, bool force)
{
    uint64_t now = ms_now_ns(), reserve = s->cfg.space_reserve_bytes;
    uint64_t f, db;

    if (!force && now - s->space_checked_ns < CHECK_INTERVAL_NS)
        return;
    s->space_checked_ns = now;
    if (free_bytes(s->raft_dir, &f) != 0 &&
        free_bytes(s->cfg.data_dir, &f) != 0)
        return;
    if (free_bytes(s->db_dir, &db) == 0 && db < f)
        f = db;
    s->space_free = f;
    if (reserve == 0)
        return;
    /* cleared an eighth above the reserve, so that it does not flap */
    if (!s->nospace && f < reserve) {
        s->nospace = true;
        ms_warn("space: %llu bytes free in %s, below --space-reserve %llu: "
                "refusing writes (\"database space exceeded\"), still "
                "serving reads; free space to recover, no restart needed",
                (unsigned long long)f, s->cfg.data_dir,
                (unsigned long long)reserve);
    } else if (s->nospace && f >= reserve + reserve / 8) {
        s->nospace = false;
        ms_info("space: %llu bytes free in %s: accepting writes again",
                (unsigned long long)f, s->cfg.data_dir);
    }
    if (s->nospace)
        hand_over(s, now);
}

static bool grows(const struct ms_op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct ms_op *op = &ops[i];

        if (op->type == MS_OP_PUT || op->type == MS_OP_LEASE_GRANT)
            return true;
        if (op->type == MS_OP_TXN &&
            (grows(op->u.txn.success, op->u.txn.n_success) ||
             grows(op->u.txn.failure, op->u.txn.n_failure)))
            return true;
    }
    return false;
}

bool ms_space_refuses(const struct ms_server *s, const struct ms_op *op)
{
    return s->nospace && grows(op, 1);
}

bool ms_space_local_read(struct ms_server *s)
{
    struct ms_raft_status st;

    if (!s->nospace)
        return false;
    ms_raft_get_status(&s->raft, &st);
    /* a sole voter that leads cannot be deposed without a configuration
     * change, and it commits an entry only once it is on its own disk and
     * applies it at once: its state holds every acknowledged write */
    return st.state == MS_RAFT_LEADER && st.voters == 1 && st.fsm_error == 0 &&
           st.last_applied >= st.commit_index;
}
