/* grpc_codec.c - etcd's v3 protobuf messages to operations and from
 * results (see grpc_codec.h). */
#include "api/grpc_codec.h"
#include "codec/codec.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

#include "etcd/etcdserver/etcdserverpb/rpc.pb-c.h"

/* --- requests to operations ---------------------------------------------- */

static int dup_bytes(struct ms_arena *a, ProtobufCBinaryData in,
                     struct ms_bytes *out)
{
    out->len = in.len;
    out->data = NULL;
    if (in.len == 0)
        return 0;
    out->data = ms_arena_dup(a, in.data, in.len);
    return out->data == NULL ? MS_ENOMEM : 0;
}

static int conv_put(struct ms_arena *a, const Etcdserverpb__PutRequest *m,
                    struct ms_put *p)
{
    p->lease = m->lease;
    p->prev_kv = m->prev_kv;
    p->ignore_value = m->ignore_value;
    p->ignore_lease = m->ignore_lease;
    if (dup_bytes(a, m->key, &p->key) != 0 ||
        dup_bytes(a, m->value, &p->value) != 0)
        return MS_ENOMEM;
    return 0;
}

static int conv_range(struct ms_arena *a, const Etcdserverpb__RangeRequest *m,
                      struct ms_range *r)
{
    if ((unsigned)m->sort_order > MS_SORT_DESCEND ||
        (unsigned)m->sort_target > MS_SORT_VALUE)
        return MS_EMALFORMED;
    r->limit = m->limit;
    r->revision = m->revision;
    r->sort_order = (enum ms_sort_order)m->sort_order;
    r->sort_target = (enum ms_sort_target)m->sort_target;
    r->serializable = m->serializable;
    r->keys_only = m->keys_only;
    r->count_only = m->count_only;
    r->min_mod_revision = m->min_mod_revision;
    r->max_mod_revision = m->max_mod_revision;
    r->min_create_revision = m->min_create_revision;
    r->max_create_revision = m->max_create_revision;
    if (dup_bytes(a, m->key, &r->key) != 0 ||
        dup_bytes(a, m->range_end, &r->range_end) != 0)
        return MS_ENOMEM;
    return 0;
}

static int conv_delete(struct ms_arena *a,
                       const Etcdserverpb__DeleteRangeRequest *m,
                       struct ms_delete_range *d)
{
    d->prev_kv = m->prev_kv;
    if (dup_bytes(a, m->key, &d->key) != 0 ||
        dup_bytes(a, m->range_end, &d->range_end) != 0)
        return MS_ENOMEM;
    return 0;
}

static int conv_txn(struct ms_arena *a, const Etcdserverpb__TxnRequest *m,
                    int depth, struct ms_txn *t);

static int conv_request_op(struct ms_arena *a, const Etcdserverpb__RequestOp *m,
                           int depth, struct ms_op *op)
{
    switch (m->request_case) {
    case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
        op->type = MS_OP_RANGE;
        return conv_range(a, m->request_range, &op->u.range);
    case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
        op->type = MS_OP_PUT;
        return conv_put(a, m->request_put, &op->u.put);
    case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
        op->type = MS_OP_DELETE_RANGE;
        return conv_delete(a, m->request_delete_range, &op->u.delete_range);
    case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
        op->type = MS_OP_TXN;
        return conv_txn(a, m->request_txn, depth + 1, &op->u.txn);
    default:
        op->type = 0; /* ms_gw_check_op: "etcdserver: key not found" */
        return 0;
    }
}

static int conv_ops(struct ms_arena *a, Etcdserverpb__RequestOp **in, size_t n,
                    int depth, struct ms_op **out)
{
    int rc;

    *out = NULL;
    if (n == 0)
        return 0;
    *out = ms_arena_zalloc(a, n * sizeof(**out));
    if (*out == NULL)
        return MS_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if ((rc = conv_request_op(a, in[i], depth, &(*out)[i])) != 0)
            return rc;
    return 0;
}

static int conv_txn(struct ms_arena *a, const Etcdserverpb__TxnRequest *m,
                    int depth, struct ms_txn *t)
{
    int rc;

    if (depth > MS_CODEC_MAX_TXN_DEPTH)
        return MS_ETOOLARGE;
    t->n_compare = m->n_compare;
    if (m->n_compare > 0) {
        t->compare = ms_arena_zalloc(a, m->n_compare * sizeof(*t->compare));
        if (t->compare == NULL)
            return MS_ENOMEM;
    }
    for (size_t i = 0; i < m->n_compare; i++) {
        const Etcdserverpb__Compare *c = m->compare[i];
        struct ms_compare *o = &t->compare[i];
        if ((unsigned)c->result > MS_CMP_NOT_EQUAL ||
            (unsigned)c->target > MS_CMP_LEASE)
            return MS_EMALFORMED;
        o->result = (enum ms_compare_result)c->result;
        o->target = (enum ms_compare_target)c->target;
        if (dup_bytes(a, c->key, &o->key) != 0 ||
            dup_bytes(a, c->range_end, &o->range_end) != 0)
            return MS_ENOMEM;
        /* etcd reads the union member the target names; another member
         * set compares against its zero value */
        switch (c->target_union_case) {
        case ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION:
            if (c->target == ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION)
                o->number = c->version;
            break;
        case ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION:
            if (c->target == ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE)
                o->number = c->create_revision;
            break;
        case ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION:
            if (c->target == ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD)
                o->number = c->mod_revision;
            break;
        case ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE:
            if (c->target == ETCDSERVERPB__COMPARE__COMPARE_TARGET__LEASE)
                o->number = c->lease;
            break;
        case ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE:
            if (c->target == ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE &&
                dup_bytes(a, c->value, &o->value) != 0)
                return MS_ENOMEM;
            break;
        default:
            break;
        }
    }
    t->n_success = m->n_success;
    t->n_failure = m->n_failure;
    if ((rc = conv_ops(a, m->success, m->n_success, depth, &t->success)) != 0 ||
        (rc = conv_ops(a, m->failure, m->n_failure, depth, &t->failure)) != 0)
        return rc;
    return 0;
}

int ms_pb_decode_op(enum ms_op_type t, const uint8_t *data, size_t len,
                    struct ms_arena *arena, struct ms_op *op)
{
    int rc = 0;

    memset(op, 0, sizeof(*op));
    op->type = t;
    switch (t) {
    case MS_OP_PUT: {
        Etcdserverpb__PutRequest *m =
            etcdserverpb__put_request__unpack(NULL, len, data);
        if (m == NULL)
            return MS_EMALFORMED;
        rc = conv_put(arena, m, &op->u.put);
        etcdserverpb__put_request__free_unpacked(m, NULL);
        return rc;
    }
    case MS_OP_RANGE: {
        Etcdserverpb__RangeRequest *m =
            etcdserverpb__range_request__unpack(NULL, len, data);
        if (m == NULL)
            return MS_EMALFORMED;
        rc = conv_range(arena, m, &op->u.range);
        etcdserverpb__range_request__free_unpacked(m, NULL);
        return rc;
    }
    case MS_OP_DELETE_RANGE: {
        Etcdserverpb__DeleteRangeRequest *m =
            etcdserverpb__delete_range_request__unpack(NULL, len, data);
        if (m == NULL)
            return MS_EMALFORMED;
        rc = conv_delete(arena, m, &op->u.delete_range);
        etcdserverpb__delete_range_request__free_unpacked(m, NULL);
        return rc;
    }
    case MS_OP_TXN: {
        Etcdserverpb__TxnRequest *m =
            etcdserverpb__txn_request__unpack(NULL, len, data);
        if (m == NULL)
            return MS_EMALFORMED;
        rc = conv_txn(arena, m, 1, &op->u.txn);
        etcdserverpb__txn_request__free_unpacked(m, NULL);
        return rc;
    }
    case MS_OP_COMPACT: {
        Etcdserverpb__CompactionRequest *m =
            etcdserverpb__compaction_request__unpack(NULL, len, data);
        if (m == NULL)
            return MS_EMALFORMED;
        op->u.compact.revision = m->revision;
        op->u.compact.physical = m->physical;
        etcdserverpb__compaction_request__free_unpacked(m, NULL);
        return 0;
    }
    case MS_OP_LEASE_GRANT: {
        Etcdserverpb__LeaseGrantRequest *m =
            etcdserverpb__lease_grant_request__unpack(NULL, len, data);
        if (m == NULL)
            return MS_EMALFORMED;
        op->u.lease_grant.ttl = m->ttl;
        op->u.lease_grant.id = m->id;
        etcdserverpb__lease_grant_request__free_unpacked(m, NULL);
        return 0;
    }
    case MS_OP_LEASE_REVOKE: {
        Etcdserverpb__LeaseRevokeRequest *m =
            etcdserverpb__lease_revoke_request__unpack(NULL, len, data);
        if (m == NULL)
            return MS_EMALFORMED;
        op->u.lease_revoke.id = m->id;
        etcdserverpb__lease_revoke_request__free_unpacked(m, NULL);
        return 0;
    }
    }
    return MS_EINVAL;
}

/* --- results to responses ---------------------------------------------------
 */

/* Messages are built in an arena (no frees one by one) and packed once:
 * NEW copies a message's initializer (a compound literal) into it. */
#define NEW(a, T, init) ((T *)ms_arena_dup((a), &(T)init, sizeof(T)))

static Etcdserverpb__ResponseHeader *header(struct ms_arena *a,
                                            const struct ms_gw_header *h)
{
    Etcdserverpb__ResponseHeader *m = NEW(a, Etcdserverpb__ResponseHeader,
                                          ETCDSERVERPB__RESPONSE_HEADER__INIT);
    if (m != NULL) {
        m->cluster_id = h->cluster_id;
        m->member_id = h->member_id;
        m->revision = h->revision;
        m->raft_term = h->raft_term;
    }
    return m;
}

static Mvccpb__KeyValue **kvs(struct ms_arena *a, const struct ms_kv *in,
                              size_t n, bool *ok)
{
    Mvccpb__KeyValue **out;

    *ok = true;
    if (n == 0)
        return NULL;
    out = ms_arena_alloc(a, n * sizeof(*out));
    if (out == NULL) {
        *ok = false;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        Mvccpb__KeyValue *kv =
            NEW(a, Mvccpb__KeyValue, MVCCPB__KEY_VALUE__INIT);
        if (kv == NULL) {
            *ok = false;
            return NULL;
        }
        kv->key.data = (uint8_t *)in[i].key.data;
        kv->key.len = in[i].key.len;
        kv->value.data = (uint8_t *)in[i].value.data;
        kv->value.len = in[i].value.len;
        kv->create_revision = in[i].create_revision;
        kv->mod_revision = in[i].mod_revision;
        kv->version = in[i].version;
        kv->lease = in[i].lease;
        out[i] = kv;
    }
    return out;
}

/* The response message for r, or NULL (out of memory / unknown type). */
static ProtobufCMessage *response(struct ms_arena *a,
                                  const struct ms_gw_header *hdr,
                                  const struct ms_result *r, int depth)
{
    struct ms_gw_header h = {0, 0, 0, 0};
    Etcdserverpb__ResponseHeader *hm;
    bool ok = true;

    if (depth == 0)
        h = *hdr;
    else if (r->type != MS_OP_TXN)
        h.revision = r->revision;
    if ((hm = header(a, &h)) == NULL)
        return NULL;
    switch (r->type) {
    case MS_OP_PUT: {
        Etcdserverpb__PutResponse *m =
            NEW(a, Etcdserverpb__PutResponse, ETCDSERVERPB__PUT_RESPONSE__INIT);
        if (m == NULL)
            return NULL;
        m->header = hm;
        if (r->u.put.has_prev) {
            Mvccpb__KeyValue **kv = kvs(a, &r->u.put.prev_kv, 1, &ok);
            if (!ok)
                return NULL;
            m->prev_kv = kv[0];
        }
        return &m->base;
    }
    case MS_OP_RANGE: {
        Etcdserverpb__RangeResponse *m = NEW(
            a, Etcdserverpb__RangeResponse, ETCDSERVERPB__RANGE_RESPONSE__INIT);
        if (m == NULL)
            return NULL;
        m->header = hm;
        m->kvs = kvs(a, r->u.range.kvs, r->u.range.n_kvs, &ok);
        m->n_kvs = r->u.range.n_kvs;
        m->more = r->u.range.more;
        m->count = r->u.range.count;
        return ok ? &m->base : NULL;
    }
    case MS_OP_DELETE_RANGE: {
        Etcdserverpb__DeleteRangeResponse *m =
            NEW(a, Etcdserverpb__DeleteRangeResponse,
                ETCDSERVERPB__DELETE_RANGE_RESPONSE__INIT);
        if (m == NULL)
            return NULL;
        m->header = hm;
        m->deleted = r->u.delete_range.deleted;
        m->prev_kvs = kvs(a, r->u.delete_range.prev_kvs,
                          r->u.delete_range.n_prev_kvs, &ok);
        m->n_prev_kvs = r->u.delete_range.n_prev_kvs;
        return ok ? &m->base : NULL;
    }
    case MS_OP_TXN: {
        Etcdserverpb__TxnResponse *m =
            NEW(a, Etcdserverpb__TxnResponse, ETCDSERVERPB__TXN_RESPONSE__INIT);
        size_t n = r->u.txn.n_responses;
        if (m == NULL)
            return NULL;
        m->header = hm;
        m->succeeded = r->u.txn.succeeded;
        m->n_responses = n;
        if (n > 0 && (m->responses =
                          ms_arena_alloc(a, n * sizeof(*m->responses))) == NULL)
            return NULL;
        for (size_t i = 0; i < n; i++) {
            const struct ms_result *s = &r->u.txn.responses[i];
            Etcdserverpb__ResponseOp *o = NEW(a, Etcdserverpb__ResponseOp,
                                              ETCDSERVERPB__RESPONSE_OP__INIT);
            ProtobufCMessage *inner = response(a, hdr, s, depth + 1);
            if (o == NULL || inner == NULL)
                return NULL;
            switch (s->type) {
            case MS_OP_RANGE:
                o->response_case =
                    ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE;
                o->response_range = (Etcdserverpb__RangeResponse *)inner;
                break;
            case MS_OP_PUT:
                o->response_case =
                    ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT;
                o->response_put = (Etcdserverpb__PutResponse *)inner;
                break;
            case MS_OP_DELETE_RANGE:
                o->response_case =
                    ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE;
                o->response_delete_range =
                    (Etcdserverpb__DeleteRangeResponse *)inner;
                break;
            case MS_OP_TXN:
                o->response_case =
                    ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN;
                o->response_txn = (Etcdserverpb__TxnResponse *)inner;
                break;
            default:
                return NULL;
            }
            m->responses[i] = o;
        }
        return &m->base;
    }
    case MS_OP_COMPACT: {
        Etcdserverpb__CompactionResponse *m =
            NEW(a, Etcdserverpb__CompactionResponse,
                ETCDSERVERPB__COMPACTION_RESPONSE__INIT);
        if (m == NULL)
            return NULL;
        m->header = hm;
        return &m->base;
    }
    case MS_OP_LEASE_GRANT: {
        Etcdserverpb__LeaseGrantResponse *m =
            NEW(a, Etcdserverpb__LeaseGrantResponse,
                ETCDSERVERPB__LEASE_GRANT_RESPONSE__INIT);
        if (m == NULL)
            return NULL;
        m->header = hm;
        m->id = r->u.lease_grant.id;
        m->ttl = r->u.lease_grant.ttl;
        return &m->base;
    }
    case MS_OP_LEASE_REVOKE: {
        Etcdserverpb__LeaseRevokeResponse *m =
            NEW(a, Etcdserverpb__LeaseRevokeResponse,
                ETCDSERVERPB__LEASE_REVOKE_RESPONSE__INIT);
        if (m == NULL)
            return NULL;
        m->header = hm;
        return &m->base;
    }
    }
    return NULL;
}

int ms_pb_encode_result(const struct ms_gw_header *hdr,
                        const struct ms_result *r, struct ms_buf *out)
{
    struct ms_arena a = {.chunk_size = 4096};
    ProtobufCMessage *m;
    size_t n;
    int rc = 0;

    if (r->type < MS_OP_PUT || r->type > MS_OP_LEASE_REVOKE)
        return MS_EINVAL;
    m = response(&a, hdr, r, 0);
    if (m == NULL) {
        rc = MS_ENOMEM;
        goto out;
    }
    n = protobuf_c_message_get_packed_size(m);
    if (ms_buf_reserve(out, n) != 0) {
        rc = MS_ENOMEM;
        goto out;
    }
    out->len += protobuf_c_message_pack(m, out->data + out->len);
out:
    ms_arena_free(&a);
    return rc;
}

/* --- responses back to results (forwarding) ------------------------------- */

static int copy_kvs(struct ms_arena *a, Mvccpb__KeyValue **in, size_t n,
                    struct ms_kv **out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    *out = ms_arena_zalloc(a, n * sizeof(**out));
    if (*out == NULL)
        return MS_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct ms_kv *kv = &(*out)[i];
        if (dup_bytes(a, in[i]->key, &kv->key) != 0 ||
            dup_bytes(a, in[i]->value, &kv->value) != 0)
            return MS_ENOMEM;
        kv->create_revision = in[i]->create_revision;
        kv->mod_revision = in[i]->mod_revision;
        kv->version = in[i]->version;
        kv->lease = in[i]->lease;
    }
    return 0;
}

static int64_t rev_of(const Etcdserverpb__ResponseHeader *h)
{
    return h != NULL ? h->revision : 0;
}

static int from_txn(struct ms_arena *a, const Etcdserverpb__TxnResponse *m,
                    struct ms_result *r, int depth);

static int from_op(struct ms_arena *a, const Etcdserverpb__ResponseOp *o,
                   struct ms_result *r, int depth)
{
    switch (o->response_case) {
    case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE:
        r->type = MS_OP_RANGE;
        r->revision = rev_of(o->response_range->header);
        r->u.range.n_kvs = o->response_range->n_kvs;
        r->u.range.more = o->response_range->more;
        r->u.range.count = o->response_range->count;
        return copy_kvs(a, o->response_range->kvs, o->response_range->n_kvs,
                        &r->u.range.kvs);
    case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT:
        r->type = MS_OP_PUT;
        r->revision = rev_of(o->response_put->header);
        if (o->response_put->prev_kv != NULL) {
            struct ms_kv *kv;
            r->u.put.has_prev = true;
            if (copy_kvs(a, &o->response_put->prev_kv, 1, &kv) != 0)
                return MS_ENOMEM;
            r->u.put.prev_kv = *kv;
        }
        return 0;
    case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE:
        r->type = MS_OP_DELETE_RANGE;
        r->revision = rev_of(o->response_delete_range->header);
        r->u.delete_range.deleted = o->response_delete_range->deleted;
        r->u.delete_range.n_prev_kvs = o->response_delete_range->n_prev_kvs;
        return copy_kvs(a, o->response_delete_range->prev_kvs,
                        o->response_delete_range->n_prev_kvs,
                        &r->u.delete_range.prev_kvs);
    case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN:
        r->type = MS_OP_TXN;
        return from_txn(a, o->response_txn, r, depth + 1);
    default:
        return MS_EMALFORMED;
    }
}

static int from_txn(struct ms_arena *a, const Etcdserverpb__TxnResponse *m,
                    struct ms_result *r, int depth)
{
    int rc;

    if (depth > MS_CODEC_MAX_TXN_DEPTH)
        return MS_EMALFORMED;
    r->revision = rev_of(m->header);
    r->u.txn.succeeded = m->succeeded;
    r->u.txn.n_responses = m->n_responses;
    if (m->n_responses == 0)
        return 0;
    r->u.txn.responses =
        ms_arena_zalloc(a, m->n_responses * sizeof(*r->u.txn.responses));
    if (r->u.txn.responses == NULL)
        return MS_ENOMEM;
    for (size_t i = 0; i < m->n_responses; i++)
        if ((rc = from_op(a, m->responses[i], &r->u.txn.responses[i], depth)) !=
            0)
            return rc;
    return 0;
}

int ms_pb_decode_result(enum ms_op_type t, const uint8_t *data, size_t len,
                        struct ms_arena *arena, struct ms_result *r)
{
    int rc = 0;

    memset(r, 0, sizeof(*r));
    r->type = t;
    switch (t) {
    case MS_OP_PUT:
    case MS_OP_RANGE:
    case MS_OP_DELETE_RANGE:
    case MS_OP_TXN: {
        /* each is a ResponseOp member: unpack the message as itself */
        Etcdserverpb__ResponseOp o = ETCDSERVERPB__RESPONSE_OP__INIT;
        ProtobufCMessage *m;
        const ProtobufCMessageDescriptor *d =
            t == MS_OP_PUT     ? &etcdserverpb__put_response__descriptor
            : t == MS_OP_RANGE ? &etcdserverpb__range_response__descriptor
            : t == MS_OP_TXN   ? &etcdserverpb__txn_response__descriptor
                             : &etcdserverpb__delete_range_response__descriptor;
        m = protobuf_c_message_unpack(d, NULL, len, data);
        if (m == NULL)
            return MS_EMALFORMED;
        o.response_case =
            t == MS_OP_PUT ? ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT
            : t == MS_OP_RANGE
                ? ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE
            : t == MS_OP_TXN
                ? ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN
                : ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE;
        o.response_range = (Etcdserverpb__RangeResponse *)m; /* the union */
        rc = from_op(arena, &o, r, 0);
        if (t == MS_OP_TXN)
            r->revision = rev_of(((Etcdserverpb__TxnResponse *)m)->header);
        protobuf_c_message_free_unpacked(m, NULL);
        return rc;
    }
    case MS_OP_COMPACT:
    case MS_OP_LEASE_REVOKE: {
        /* both are {header} */
        Etcdserverpb__CompactionResponse *m =
            etcdserverpb__compaction_response__unpack(NULL, len, data);
        if (m == NULL)
            return MS_EMALFORMED;
        r->revision = rev_of(m->header);
        etcdserverpb__compaction_response__free_unpacked(m, NULL);
        return 0;
    }
    case MS_OP_LEASE_GRANT: {
        Etcdserverpb__LeaseGrantResponse *m =
            etcdserverpb__lease_grant_response__unpack(NULL, len, data);
        if (m == NULL)
            return MS_EMALFORMED;
        r->revision = rev_of(m->header);
        r->u.lease_grant.id = m->id;
        r->u.lease_grant.ttl = m->ttl;
        etcdserverpb__lease_grant_response__free_unpacked(m, NULL);
        return 0;
    }
    }
    return MS_EINVAL;
}

/* --- watch ------------------------------------------------------------------
 */

int ms_pb_encode_watch(const struct ms_gw_header *hdr, int64_t watch_id,
                       const struct ms_watch_notice *n,
                       const struct ms_store_event *const *ev, size_t n_ev,
                       bool prev_kv, struct ms_buf *out)
{
    struct ms_arena a = {.chunk_size = 4096};
    Etcdserverpb__WatchResponse m = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    bool ok = true;
    size_t len;
    int rc = MS_ENOMEM;

    if ((m.header = header(&a, hdr)) == NULL)
        goto out;
    m.watch_id = watch_id;
    if (n != NULL) {
        m.watch_id = n->watch_id;
        m.created = n->created;
        m.canceled = n->canceled;
        m.compact_revision = n->compact_revision;
        m.cancel_reason = (char *)(n->cancel_reason ? n->cancel_reason : "");
    }
    if (n_ev > 0) {
        m.events = ms_arena_alloc(&a, n_ev * sizeof(*m.events));
        if (m.events == NULL)
            goto out;
        m.n_events = n_ev;
        for (size_t i = 0; i < n_ev; i++) {
            Mvccpb__Event *e = NEW(&a, Mvccpb__Event, MVCCPB__EVENT__INIT);
            Mvccpb__KeyValue **kv;
            if (e == NULL)
                goto out;
            e->type = ev[i]->is_delete ? MVCCPB__EVENT__EVENT_TYPE__DELETE
                                       : MVCCPB__EVENT__EVENT_TYPE__PUT;
            if ((kv = kvs(&a, &ev[i]->kv, 1, &ok)) == NULL)
                goto out;
            e->kv = kv[0];
            if (prev_kv && ev[i]->has_prev) {
                if ((kv = kvs(&a, &ev[i]->prev_kv, 1, &ok)) == NULL)
                    goto out;
                e->prev_kv = kv[0];
            }
            m.events[i] = e;
        }
    }
    len = etcdserverpb__watch_response__get_packed_size(&m);
    if (ms_buf_reserve(out, len) != 0)
        goto out;
    out->len += etcdserverpb__watch_response__pack(&m, out->data + out->len);
    rc = 0;
out:
    ms_arena_free(&a);
    return rc;
}

int ms_pb_decode_watch(const uint8_t *data, size_t len, struct ms_arena *arena,
                       int *kind, struct ms_watch_spec *spec,
                       int64_t *cancel_id)
{
    Etcdserverpb__WatchRequest *m =
        etcdserverpb__watch_request__unpack(NULL, len, data);
    int rc = 0;

    *kind = 0;
    memset(spec, 0, sizeof(*spec));
    if (m == NULL)
        return MS_EMALFORMED;
    switch (m->request_union_case) {
    case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST: {
        const Etcdserverpb__WatchCreateRequest *c = m->create_request;
        *kind = 1;
        if (dup_bytes(arena, c->key, &spec->key) != 0 ||
            dup_bytes(arena, c->range_end, &spec->range_end) != 0) {
            rc = MS_ENOMEM;
            break;
        }
        spec->start_revision = c->start_revision;
        spec->watch_id = c->watch_id;
        spec->prev_kv = c->prev_kv;
        spec->progress_notify = c->progress_notify;
        for (size_t i = 0; i < c->n_filters; i++) {
            if (c->filters[i] ==
                ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NOPUT)
                spec->filters |= MS_WATCH_NOPUT;
            else if (c->filters[i] ==
                     ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NODELETE)
                spec->filters |= MS_WATCH_NODELETE;
        }
        break;
    }
    case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CANCEL_REQUEST:
        *kind = 2;
        *cancel_id = m->cancel_request->watch_id;
        break;
    case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_PROGRESS_REQUEST:
        *kind = 3;
        break;
    default:
        break;
    }
    etcdserverpb__watch_request__free_unpacked(m, NULL);
    return rc;
}
