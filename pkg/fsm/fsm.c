/* fsm.c - decode, apply, route results; snapshot and restore via the store. */
#include "fsm/fsm.h"
#include "codec/codec.h"
#include "util/error.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

void ms_fsm_init(struct ms_fsm *fsm, struct ms_store *store, uint64_t node_id,
                 uint8_t codec)
{
    memset(fsm, 0, sizeof(*fsm));
    fsm->store = store;
    fsm->node_id = node_id;
    fsm->codec = codec;
}

static int store_failed(struct ms_fsm *fsm, int rc, const char *what)
{
    fsm->fatal = rc;
    ms_error("fsm: %s: %s", what, fsm->errmsg);
    return rc;
}

int ms_fsm_apply(struct ms_fsm *fsm, uint64_t index, const uint8_t *buf,
                 size_t len)
{
    struct ms_batch batch = {0};
    struct ms_results rs = {0};
    char why[256];
    int rc;

    if (fsm->fatal)
        return fsm->fatal;
    rc = ms_codec_decode_batch(buf, len, &batch, why, sizeof(why));
    if (rc != 0) {
        /* A payload every node decodes the same way: skip it everywhere. */
        fsm->stats.entries_rejected++;
        ms_error("fsm: entry %llu: undecodable payload (%s): %s",
                 (unsigned long long)index, ms_errname(rc), why);
        return ms_fsm_apply_empty(fsm, index);
    }
    rc = ms_store_apply(fsm->store, &batch, index, &rs, fsm->errmsg,
                        sizeof(fsm->errmsg));
    if (rc != 0) {
        ms_batch_free(&batch);
        return store_failed(fsm, rc, "apply");
    }
    if (rs.skipped) {
        fsm->stats.entries_skipped++;
    } else {
        fsm->stats.entries_applied++;
        fsm->stats.ops_applied += batch.n_ops;
        for (size_t i = 0; i < batch.n_ops && i < rs.n; i++) {
            const struct ms_op *op = &batch.ops[i];
            if (fsm->observe != NULL)
                fsm->observe(fsm->observe_data, op, &rs.r[i]);
            if (op->node_id == fsm->node_id && fsm->deliver != NULL)
                fsm->deliver(fsm->deliver_data, op->request_id, &rs.r[i]);
        }
    }
    ms_results_free(&rs);
    ms_batch_free(&batch);
    return 0;
}

int ms_fsm_apply_empty(struct ms_fsm *fsm, uint64_t index)
{
    int rc;

    if (fsm->fatal)
        return fsm->fatal;
    rc = ms_store_set_applied(fsm->store, index, fsm->errmsg,
                              sizeof(fsm->errmsg));
    if (rc != 0)
        return store_failed(fsm, rc, "set applied index");
    return 0;
}

static int buf_write(void *ctx, const void *p, size_t n)
{
    return ms_buf_append(ctx, p, n);
}

int ms_fsm_snapshot(struct ms_fsm *fsm, struct ms_buf *out)
{
    struct ms_snapshot_extra extra = {.codec = fsm->codec};
    int rc = ms_store_snapshot_save(fsm->store, &extra, buf_write, out,
                                    fsm->errmsg, sizeof(fsm->errmsg));
    if (rc == 0)
        fsm->stats.snapshots_taken++;
    return rc;
}

struct mem_reader {
    const uint8_t *p;
    size_t left;
};

static int mem_read(void *ctx, void *p, size_t n, size_t *got)
{
    struct mem_reader *r = ctx;
    size_t k = n < r->left ? n : r->left;

    memcpy(p, r->p, k);
    r->p += k;
    r->left -= k;
    *got = k;
    return 0;
}

int ms_fsm_restore(struct ms_fsm *fsm, const uint8_t *buf, size_t len)
{
    struct mem_reader r = {buf, len};
    struct ms_snapshot_extra extra = {0};
    int rc;

    rc = ms_store_snapshot_load(fsm->store, mem_read, &r, &extra,
                                fsm->errmsg, sizeof(fsm->errmsg));
    free(extra.members);
    if (rc != 0) {
        ms_error("fsm: restore: %s", fsm->errmsg);
        return rc;
    }
    fsm->stats.snapshots_restored++;
    ms_info("fsm: restored snapshot: revision %lld, applied index %llu",
            (long long)ms_store_revision(fsm->store),
            (unsigned long long)ms_store_applied_index(fsm->store));
    return 0;
}
