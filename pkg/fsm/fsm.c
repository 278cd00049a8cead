/* fsm.c - decode, apply, route results; snapshot and restore via the store. */
#include "fsm/fsm.h"
#include "codec/codec.h"
#include "util/cowdump.h"
#include "util/error.h"
#include "util/hugepages.h"
#include "util/log.h"
#include "util/metrics.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdatomic.h>
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

int ms_fsm_encode_alarm(bool activate, uint64_t member_id,
                        enum ms_alarm_type type, struct ms_buf *out)
{
    int rc;

    if (type == MS_ALARM_NONE || ms_alarm_type_name(type) == NULL)
        return MS_EINVAL;
    rc = ms_buf_putc(out, MS_CODEC_FORMAT_VERSION);
    rc |= ms_buf_putc(out, MS_ENTRY_ALARM);
    rc |= ms_buf_printf(out,
                        "{\"action\":\"%s\",\"member_id\":\"%" PRIu64
                        "\",\"alarm\":\"%s\"}",
                        activate ? "activate" : "deactivate", member_id,
                        ms_alarm_type_name(type));
    return rc ? MS_ENOMEM : 0;
}

static void alarms_changed(struct ms_fsm *fsm)
{
    ms_store_set_nospace(fsm->store,
                         ms_alarms_active(&fsm->alarms, MS_ALARM_NOSPACE));
}

/* Applies an alarm entry; a malformed one is skipped alike on every node.
 * Replays below the store's applied index apply too: the table lives in
 * memory (and in snapshots), and raising or clearing is idempotent. */
static int apply_alarm(struct ms_fsm *fsm, uint64_t index, const uint8_t *buf,
                       size_t len)
{
    cJSON *o = cJSON_ParseWithLength((const char *)buf + 2, len - 2);
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(o, "action");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "member_id");
    const cJSON *al = cJSON_GetObjectItemCaseSensitive(o, "alarm");
    enum ms_alarm_type type = MS_ALARM_NONE;
    char *end = NULL;
    uint64_t member = 0;

    if (cJSON_IsString(id))
        member = strtoull(id->valuestring, &end, 10);
    if (!cJSON_IsString(act) || end == NULL || *end != '\0' ||
        !cJSON_IsString(al) ||
        ms_alarm_type_parse(al->valuestring, &type) != 0) {
        fsm->stats.entries_rejected++;
        ms_error("fsm: entry %llu: malformed alarm entry",
                 (unsigned long long)index);
    } else if (strcmp(act->valuestring, "activate") == 0) {
        if (ms_alarms_activate(&fsm->alarms, member, type) != 0)
            ms_error("alarms: table full, %s of %" PRIx64 " not raised",
                     al->valuestring, member);
        else
            ms_warn("alarm raised: %s (member %" PRIx64 ")", al->valuestring,
                    member);
    } else if (ms_alarms_deactivate(&fsm->alarms, member, type) == 0) {
        ms_info("alarm cleared: %s (member %" PRIx64 ")", al->valuestring,
                member);
    }
    cJSON_Delete(o);
    alarms_changed(fsm);
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
        buf[1] == MS_ENTRY_ALARM)
        return apply_alarm(fsm, index, buf, len);
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

/* The snapshot's extra section: the member table, with the alarms riding
 * in its JSON object (older readers ignore the field):
 * {...,"alarms":[...]}. */
static int encode_extra(const struct ms_fsm *fsm, struct ms_buf *out,
                        char *errmsg, size_t errmsg_size)
{
    const struct ms_auth *a = &fsm->auth;
    int rc = ms_members_encode(&fsm->members, out);

    if (rc == 0 && fsm->alarms.n > 0) {
        if (out->len == 0 || out->data[out->len - 1] != '}') {
            rc = MS_EINVAL;
        } else {
            out->len--;
            rc = ms_buf_printf(out, ",\"alarms\":") != 0
                     ? MS_ENOMEM
                     : ms_alarms_encode(&fsm->alarms, out);
            if (rc == 0 && ms_buf_putc(out, '}') != 0)
                rc = MS_ENOMEM;
        }
    }
    if (rc != 0)
        return ms_seterr(errmsg, errmsg_size, rc,
                         "snapshot: encode member table: %s", ms_strerror(rc));
    /* the auth state follows the member table after a NUL byte: older
     * snapshots (no NUL) load with auth off and no users or roles */
    if (a->enabled || a->revision || a->n_users || a->n_roles) {
        if (ms_buf_putc(out, 0) != 0 || ms_auth_encode(a, out) != 0)
            return ms_seterr(errmsg, errmsg_size, MS_ENOMEM,
                             "snapshot: encode auth state: out of memory");
    }
    return 0;
}

/* The snapshot of store with the extra section, streamed to write/wctx. */
static int save_store(struct ms_store *store, uint8_t codec,
                      const struct ms_buf *extra_bytes, ms_write_fn write,
                      void *wctx, char *errmsg, size_t errmsg_size)
{
    struct ms_snapshot_extra extra = {.codec = codec};

    extra.members = extra_bytes->data;
    extra.members_len = extra_bytes->len;
    return ms_store_snapshot_save(store, &extra, write, wctx, errmsg,
                                  errmsg_size);
}

/* The snapshot of the store plus member table, streamed to write/wctx. */
static int save(struct ms_fsm *fsm, ms_write_fn write, void *wctx, char *errmsg,
                size_t errmsg_size)
{
    struct ms_buf members = MS_BUF_INIT;
    int rc = encode_extra(fsm, &members, errmsg, errmsg_size);

    if (rc == 0)
        rc = save_store(fsm->store, fsm->codec, &members, write, wctx, errmsg,
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
    struct ms_buf bytes;     /* inline: the bytes, serialised in begin;
                                view: serialised by collect */
    /* rocksdb: a read-only view of the store at begin, and the extra
     * section as it was then; collect serialises them */
    struct ms_store *view;
    struct ms_buf extra;
    uint8_t codec;
    atomic_bool canceled;
    bool collected;
};

/* The writer of a view's snapshot: appends, or stops at a cancel. */
static int view_write(void *ctx, const void *p, size_t n)
{
    struct ms_fsm_snapjob *job = ctx;

    if (atomic_load(&job->canceled))
        return MS_ECANCELED;
    return ms_buf_append(&job->bytes, p, n);
}

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
        /* idle priority, unless the last child got no CPU that way */
        rc = ms_cowdump_start(dump_fn, fsm,
                              fsm->snapshot_starved ? 0 : MS_COWDUMP_IDLE,
                              fsm->snapshot_cpu_percent, &job->dump,
                              fsm->errmsg, sizeof(fsm->errmsg));
        fsm->snapshot_starved = false;
        if (rc == 0) {
            *out = job;
            return 0;
        }
        ms_warn("fsm: snapshot: %s; serialising on the event loop instead",
                fsm->errmsg);
    }
    if (!fsm->snapshot_inline &&
        ms_store_backend(fsm->store) == MS_BACKEND_ROCKSDB) {
        /* a RocksDB snapshot, read by collect on another thread */
        job->codec = fsm->codec;
        rc = encode_extra(fsm, &job->extra, fsm->errmsg, sizeof(fsm->errmsg));
        if (rc == 0)
            rc = ms_store_view(fsm->store, &job->view, fsm->errmsg,
                               sizeof(fsm->errmsg));
        if (rc == 0) {
            *out = job;
            return 0;
        }
        ms_buf_free(&job->extra);
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
    if (job->dump != NULL) {
        int rc = ms_cowdump_wait(job->dump, buf, len, errmsg, errmsg_size);
        uint64_t t0 = ms_now_ns();
        long n;
        /* the child is gone: what the loop wrote meanwhile split the heap's
         * huge pages; put them back before the next fork (we are on a
         * worker thread). Not after a failed or cancelled child: a close
         * would wait for it, and the next snapshot's collect does it. */
        if (rc != 0)
            return rc;
        if ((n = ms_hugepages_collapse()) > 0)
            ms_debug("fsm: heap back in huge pages: %ld MiB in %.1f ms",
                     n >> 20, (double)(ms_now_ns() - t0) / 1e6);
        return 0;
    }
    if (job->view != NULL) {
        int rc = save_store(job->view, job->codec, &job->extra, view_write, job,
                            errmsg, errmsg_size);
        if (rc != 0) {
            ms_buf_free(&job->bytes);
            return rc == MS_ECANCELED ? ms_seterr(errmsg, errmsg_size, rc,
                                                  "snapshot: canceled")
                                      : rc;
        }
    }
    *buf = job->bytes.data;
    *len = job->bytes.len;
    return 0;
}

void ms_fsm_snapshot_cancel(struct ms_fsm_snapjob *job)
{
    if (job == NULL)
        return;
    if (job->dump != NULL)
        ms_cowdump_cancel(job->dump);
    atomic_store(&job->canceled, true);
}

bool ms_fsm_snapjob_forked(const struct ms_fsm_snapjob *job)
{
    return job->dump != NULL;
}

struct ms_fsm_snapjob *ms_fsm_snapshot_release(struct ms_fsm *fsm,
                                               struct ms_fsm_snapjob *job,
                                               bool taken)
{
    if (job == NULL)
        return NULL;
    if (taken)
        fsm->stats.snapshots_taken++;
    if (job->dump != NULL && ms_cowdump_starved(job->dump)) {
        fsm->snapshot_starved = true;
        fsm->stats.snapshots_starved++;
    }
    ms_store_close(job->view);
    job->view = NULL;
    ms_buf_free(&job->extra);
    return job;
}

void ms_fsm_snapjob_free(struct ms_fsm_snapjob *job)
{
    if (job == NULL)
        return;
    ms_cowdump_free(job->dump);
    ms_buf_free(&job->bytes);
    free(job);
}

void ms_fsm_snapshot_end(struct ms_fsm *fsm, struct ms_fsm_snapjob *job,
                         bool taken)
{
    ms_fsm_snapjob_free(ms_fsm_snapshot_release(fsm, job, taken));
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
    const uint8_t *nul = NULL;
    size_t mlen = 0;
    int rc;

    rc = ms_store_snapshot_load(fsm->store, mem_read, &r, &extra, fsm->errmsg,
                                sizeof(fsm->errmsg));
    if (rc == 0) {
        nul = extra.members_len ? memchr(extra.members, 0, extra.members_len)
                                : NULL;
        mlen = nul ? (size_t)(nul - extra.members) : extra.members_len;
        if (ms_members_decode(&fsm->members, extra.members, mlen) != 0)
            rc = ms_seterr(fsm->errmsg, sizeof(fsm->errmsg), MS_ECORRUPT,
                           "snapshot: malformed member table");
        else if (ms_auth_decode(&fsm->auth, nul ? nul + 1 : NULL,
                                nul ? extra.members_len - mlen - 1 : 0) != 0)
            rc = ms_seterr(fsm->errmsg, sizeof(fsm->errmsg), MS_ECORRUPT,
                           "snapshot: malformed auth state");
    }
    if (rc == 0) {
        cJSON *o =
            mlen > 0 ? cJSON_ParseWithLength((const char *)extra.members, mlen)
                     : NULL;
        if (ms_alarms_decode(&fsm->alarms, cJSON_GetObjectItemCaseSensitive(
                                               o, "alarms")) != 0)
            rc = ms_seterr(fsm->errmsg, sizeof(fsm->errmsg), MS_ECORRUPT,
                           "snapshot: malformed alarm table");
        cJSON_Delete(o);
        alarms_changed(fsm);
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
