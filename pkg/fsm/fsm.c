/* fsm.c - decode, apply, route results; snapshot and restore via the store. */
#include "fsm/fsm.h"
#include "codec/codec.h"
#include "util/cowdump.h"
#include "util/error.h"
#include "util/log.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>

#include <stdlib.h>
#include <string.h>

void ms_fsm_init(struct ms_fsm *fsm, struct ms_store *store, uint64_t node_id,
                 uint8_t codec)
{
    memset(fsm, 0, sizeof(*fsm));
    fsm->store = store;
    fsm->node_id = node_id;
    fsm->codec = codec;
    ms_auth_init(&fsm->auth);
}

void ms_fsm_free(struct ms_fsm *fsm)
{
    ms_auth_free(&fsm->auth);
}

int ms_fsm_encode_auth(const struct ms_auth_cmd *cmd, struct ms_buf *out)
{
    int rc = ms_buf_putc(out, MS_CODEC_FORMAT_VERSION);

    rc |= ms_buf_putc(out, MS_ENTRY_AUTH);
    if (rc != 0)
        return MS_ENOMEM;
    rc = ms_auth_cmd_encode(cmd, out);
    if (rc == MS_AUTH_ENOMEM)
        return MS_ENOMEM;
    return rc == 0 ? 0 : MS_EINVAL;
}

/* Applies an auth entry; its outcome (an etcd error or success) is a
 * result, the same on every member, never a failure of the fsm. */
static int apply_auth(struct ms_fsm *fsm, uint64_t index, const uint8_t *buf,
                      size_t len, struct ms_fsm_auth_result **out)
{
    int rc = ms_auth_apply(&fsm->auth, buf + 2, len - 2);

    if (rc == MS_AUTH_EMALFORMED) {
        fsm->stats.entries_rejected++;
        ms_error("fsm: entry %llu: malformed auth entry",
                 (unsigned long long)index);
    }
    if (out != NULL) {
        *out = malloc(sizeof(**out));
        if (*out != NULL) {
            (*out)->rc = rc;
            (*out)->revision = fsm->auth.revision;
        }
    }
    return ms_fsm_apply_empty(fsm, index);
}

static int store_failed(struct ms_fsm *fsm, int rc, const char *what)
{
    fsm->fatal = rc;
    ms_error("fsm: %s: %s", what, fsm->errmsg);
    return rc;
}

static bool plain(const char *s)
{
    for (; *s; s++)
        if (*s < 0x21 || *s > 0x7e || *s == '"' || *s == '\\')
            return false;
    return true;
}

int ms_fsm_encode_member(const struct ms_member *m, bool remove,
                         uint64_t cluster_id, struct ms_buf *out)
{
    int rc;

    if (!plain(m->name) || !plain(m->peer_url) || !plain(m->client_url))
        return MS_EINVAL;
    rc = ms_buf_putc(out, MS_CODEC_FORMAT_VERSION);
    rc |= ms_buf_putc(out, MS_ENTRY_MEMBERS);
    if (remove)
        rc |= ms_buf_printf(out, "{\"op\":\"remove\",\"id\":\"%" PRIu64 "\"}",
                            m->id);
    else
        rc |= ms_buf_printf(out,
                            "{\"op\":\"upsert\",\"id\":\"%" PRIu64
                            "\",\"name\":\"%s\",\"peer_url\":\"%s\","
                            "\"client_url\":\"%s\",\"learner\":%s,"
                            "\"cluster_id\":\"%" PRIu64 "\"}",
                            m->id, m->name, m->peer_url, m->client_url,
                            m->learner ? "true" : "false", cluster_id);
    return rc ? MS_ENOMEM : 0;
}

static int str_field(const cJSON *o, const char *name, char *dst, size_t size)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (v == NULL)
        return 0;
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= size ||
        !plain(v->valuestring))
        return -1;
    memcpy(dst, v->valuestring, strlen(v->valuestring) + 1);
    return 0;
}

/* Applies a member-table entry; a malformed one is logged and skipped
 * alike on every node. */
static int apply_member(struct ms_fsm *fsm, uint64_t index, const uint8_t *buf,
                        size_t len)
{
    cJSON *o = cJSON_ParseWithLength((const char *)buf + 2, len - 2);
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(o, "op");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(o, "learner");
    struct ms_member m = {0};
    char *end = NULL;

    if (cJSON_IsString(id))
        m.id = strtoull(id->valuestring, &end, 10);
    if (!cJSON_IsString(op) || end == NULL || *end != '\0' || m.id == 0 ||
        str_field(o, "name", m.name, sizeof(m.name)) != 0 ||
        str_field(o, "peer_url", m.peer_url, sizeof(m.peer_url)) != 0 ||
        str_field(o, "client_url", m.client_url, sizeof(m.client_url)) != 0) {
        fsm->stats.entries_rejected++;
        ms_error("fsm: entry %llu: malformed member entry",
                 (unsigned long long)index);
    } else if (strcmp(op->valuestring, "remove") == 0) {
        ms_members_remove(&fsm->members, m.id);
        ms_info("members: removed %" PRIx64, m.id);
    } else {
        const cJSON *cid = cJSON_GetObjectItemCaseSensitive(o, "cluster_id");
        m.learner = cJSON_IsTrue(l);
        if (fsm->members.cluster_id == 0 && cJSON_IsString(cid))
            fsm->members.cluster_id = strtoull(cid->valuestring, NULL, 10);
        if (ms_members_upsert(&fsm->members, &m) != 0)
            ms_error("members: table full, %" PRIx64 " not added", m.id);
    }
    cJSON_Delete(o);
    if (fsm->members_changed != NULL)
        fsm->members_changed(fsm->members_data);
    return ms_fsm_apply_empty(fsm, index);
}

int ms_fsm_apply(struct ms_fsm *fsm, uint64_t index, const uint8_t *buf,
                 size_t len)
{
    return ms_fsm_apply_ex(fsm, index, buf, len, NULL);
}

int ms_fsm_apply_ex(struct ms_fsm *fsm, uint64_t index, const uint8_t *buf,
                    size_t len, struct ms_fsm_auth_result **auth_result)
{
    struct ms_batch batch = {0};
    struct ms_results rs = {0};
    char why[256];
    int rc;

    if (auth_result != NULL)
        *auth_result = NULL;
    if (fsm->fatal)
        return fsm->fatal;
    if (len >= 2 && buf[0] == MS_CODEC_FORMAT_VERSION &&
        buf[1] == MS_ENTRY_MEMBERS) {
        /* applied even when replayed below the store's applied index: the
         * table lives in memory, and upserts and removals are idempotent */
        return apply_member(fsm, index, buf, len);
    }
    if (len >= 2 && buf[0] == MS_CODEC_FORMAT_VERSION &&
        buf[1] == MS_ENTRY_AUTH)
        return apply_auth(fsm, index, buf, len, auth_result);
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

/* The snapshot of the store plus member table, streamed to write/wctx. */
static int save(struct ms_fsm *fsm, ms_write_fn write, void *wctx, char *errmsg,
                size_t errmsg_size)
{
    struct ms_buf members = MS_BUF_INIT;
    struct ms_snapshot_extra extra = {.codec = fsm->codec};
    int rc = ms_members_encode(&fsm->members, &members);
    const struct ms_auth *a = &fsm->auth;

    if (rc != 0)
        return ms_seterr(errmsg, errmsg_size, rc,
                         "snapshot: encode member table: %s", ms_strerror(rc));
    /* the auth state follows the member table after a NUL byte: older
     * snapshots (no NUL) load with auth off and no users or roles */
    if (a->enabled || a->revision || a->n_users || a->n_roles) {
        if (ms_buf_putc(&members, 0) != 0 || ms_auth_encode(a, &members)) {
            ms_buf_free(&members);
            return ms_seterr(errmsg, errmsg_size, MS_ENOMEM,
                             "snapshot: encode auth state: out of memory");
        }
    }
    extra.members = members.data;
    extra.members_len = members.len;
    rc = ms_store_snapshot_save(fsm->store, &extra, write, wctx, errmsg,
                                errmsg_size);
    ms_buf_free(&members);
    return rc;
}

int ms_fsm_snapshot(struct ms_fsm *fsm, struct ms_buf *out)
{
    int rc = save(fsm, buf_write, out, fsm->errmsg, sizeof(fsm->errmsg));

    if (rc == 0)
        fsm->stats.snapshots_taken++;
    return rc;
}

struct ms_fsm_snapjob {
    struct ms_cowdump *dump; /* forked: the child writing the bytes */
    struct ms_buf bytes;     /* inline: the bytes, serialised in begin */
    bool collected;
};

/* Runs in the forked child, on its copy of fsm (util/cowdump.h rules:
 * memory reads, malloc and the write callback only). */
static int dump_fn(void *ctx, ms_cowdump_write_fn write, void *wctx,
                   char *errmsg, size_t errmsg_size)
{
    return save(ctx, write, wctx, errmsg, errmsg_size);
}

int ms_fsm_snapshot_begin(struct ms_fsm *fsm, struct ms_fsm_snapjob **out)
{
    struct ms_fsm_snapjob *job;
    int rc;

    *out = NULL;
    job = calloc(1, sizeof(*job));
    if (job == NULL)
        return ms_seterr(fsm->errmsg, sizeof(fsm->errmsg), MS_ENOMEM,
                         "snapshot: out of memory");
    if (!fsm->snapshot_inline &&
        ms_store_backend(fsm->store) == MS_BACKEND_MEMORY) {
        rc = ms_cowdump_start(dump_fn, fsm, &job->dump, fsm->errmsg,
                              sizeof(fsm->errmsg));
        if (rc == 0) {
            *out = job;
            return 0;
        }
        ms_warn("fsm: snapshot: %s; serialising on the event loop instead",
                fsm->errmsg);
    }
    rc = save(fsm, buf_write, &job->bytes, fsm->errmsg, sizeof(fsm->errmsg));
    if (rc != 0) {
        ms_buf_free(&job->bytes);
        free(job);
        return rc;
    }
    *out = job;
    return 0;
}

int ms_fsm_snapshot_collect(struct ms_fsm_snapjob *job, const uint8_t **buf,
                            size_t *len, char *errmsg, size_t errmsg_size)
{
    *buf = NULL;
    *len = 0;
    if (job->collected)
        return ms_seterr(errmsg, errmsg_size, MS_EINVAL,
                         "snapshot: already collected");
    job->collected = true;
    if (job->dump != NULL)
        return ms_cowdump_wait(job->dump, buf, len, errmsg, errmsg_size);
    *buf = job->bytes.data;
    *len = job->bytes.len;
    return 0;
}

void ms_fsm_snapshot_cancel(struct ms_fsm_snapjob *job)
{
    if (job != NULL && job->dump != NULL)
        ms_cowdump_cancel(job->dump);
}

bool ms_fsm_snapjob_forked(const struct ms_fsm_snapjob *job)
{
    return job->dump != NULL;
}

void ms_fsm_snapshot_end(struct ms_fsm *fsm, struct ms_fsm_snapjob *job,
                         bool taken)
{
    if (job == NULL)
        return;
    if (taken)
        fsm->stats.snapshots_taken++;
    ms_cowdump_free(job->dump);
    ms_buf_free(&job->bytes);
    free(job);
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
    if (rc == 0) {
        const uint8_t *nul = extra.members_len
                                 ? memchr(extra.members, 0, extra.members_len)
                                 : NULL;
        size_t mlen = nul ? (size_t)(nul - extra.members) : extra.members_len;

        if (ms_members_decode(&fsm->members, extra.members, mlen) != 0)
            rc = ms_seterr(fsm->errmsg, sizeof(fsm->errmsg), MS_ECORRUPT,
                           "snapshot: malformed member table");
        else if (ms_auth_decode(&fsm->auth, nul ? nul + 1 : NULL,
                                nul ? extra.members_len - mlen - 1 : 0) != 0)
            rc = ms_seterr(fsm->errmsg, sizeof(fsm->errmsg), MS_ECORRUPT,
                           "snapshot: malformed auth state");
    }
    free(extra.members);
    if (rc != 0) {
        ms_error("fsm: restore: %s", fsm->errmsg);
        return rc;
    }
    if (fsm->members_changed != NULL)
        fsm->members_changed(fsm->members_data);
    fsm->stats.snapshots_restored++;
    ms_info("fsm: restored snapshot: revision %lld, applied index %llu",
            (long long)ms_store_revision(fsm->store),
            (unsigned long long)ms_store_applied_index(fsm->store));
    return 0;
}
