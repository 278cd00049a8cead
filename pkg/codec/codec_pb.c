/* codec_pb.c - the protobuf codec: batches as proto/metastore.proto's Batch,
 * one length-delimited Op record per op, closed by a count record. */
#include "codec/codec_impl.h"
#include "util/error.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "metastore.pb-c.h"

#define TAG_OPS ((1u << 3) | 2u)   /* Batch.ops: field 1, length-delimited */
#define TAG_COUNT ((2u << 3) | 0u) /* Batch.count: field 2, varint */
#define FIELD_OP_TXN 6             /* Op.txn */
#define FIELD_TXN_COMPARE 1        /* Txn.compare */
#define FIELD_TXN_SUCCESS 2        /* Txn.success */
#define FIELD_TXN_FAILURE 3        /* Txn.failure */

/* --- scratch allocator ----------------------------------------------------
 * protobuf-c allocates every sub-message and byte string it unpacks, and
 * the encoder needs a few structs for txns. The scratch hands out memory
 * from one region that is reset for each op; what does not fit goes to an
 * overflow arena, and the region grows by that much at the next reset, so
 * after the first few ops nothing is allocated at all. */
struct scratch {
    unsigned char *mem;
    size_t used;
    size_t cap;
    bool owned;           /* mem is ours (heap), not the caller's */
    bool failed;          /* an allocation failed (ENOMEM, not bad data) */
    struct ms_arena more; /* overflow */
    size_t more_bytes;
};

static void scratch_init(struct scratch *s, void *mem, size_t cap)
{
    memset(s, 0, sizeof(*s));
    s->mem = mem;
    s->cap = cap;
}

static void *scratch_alloc(void *data, size_t n)
{
    struct scratch *s = data;
    size_t want = (n + 15) & ~(size_t)15;
    void *p;

    if (want >= n && s->cap - s->used >= want) {
        p = s->mem + s->used;
        s->used += want;
        return p;
    }
    p = ms_arena_alloc(&s->more, n);
    if (p == NULL)
        s->failed = true;
    else
        s->more_bytes += want;
    return p;
}

static void scratch_nofree(void *data, void *p)
{
    (void)data;
    (void)p;
}

static void scratch_reset(struct scratch *s)
{
    if (s->more_bytes > 0) {
        size_t cap = s->cap + s->more_bytes;
        unsigned char *mem = cap > s->cap ? malloc(cap) : NULL;
        if (mem != NULL) {
            if (s->owned)
                free(s->mem);
            s->mem = mem;
            s->cap = cap;
            s->owned = true;
        }
        ms_arena_free(&s->more);
        s->more_bytes = 0;
    }
    s->used = 0;
    s->failed = false;
}

static void scratch_free(struct scratch *s)
{
    if (s->owned)
        free(s->mem);
    ms_arena_free(&s->more);
    memset(s, 0, sizeof(*s));
}

/* --- varints ---------------------------------------------------------- */

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Reads a varint from p[0..n): returns 0 and sets *v and *used, or
 * MS_ETRUNCATED (input ends inside it) or MS_EMALFORMED (over 10 bytes or
 * over 64 bits). */
static int get_varint(const uint8_t *p, size_t n, uint64_t *v, size_t *used)
{
    uint64_t r = 0;

    for (size_t i = 0; i < 10; i++) {
        if (i == n)
            return MS_ETRUNCATED;
        if (i == 9 && p[i] > 1)
            return MS_EMALFORMED;
        r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if ((p[i] & 0x80) == 0) {
            *v = r;
            *used = i + 1;
            return 0;
        }
    }
    return MS_EMALFORMED;
}

/* --- encoding --------------------------------------------------------- */

/* Storage for one Op and its sub-message. */
struct pb_node {
    Metastore__Op op;
    union {
        Metastore__Put put;
        Metastore__DeleteRange delete_range;
        Metastore__Range range;
        Metastore__Txn txn;
        Metastore__Compact compact;
        Metastore__LeaseGrant lease_grant;
        Metastore__LeaseRevoke lease_revoke;
    } m;
};

static ProtobufCBinaryData pb_bytes(struct ms_bytes b)
{
    ProtobufCBinaryData r = {b.len, (uint8_t *)b.data};
    return r;
}

static int build_op(struct scratch *s, const struct ms_op *src,
                    struct pb_node *dst);

static int build_ops(struct scratch *s, const struct ms_op *src, size_t n,
                     size_t *n_out, Metastore__Op ***out)
{
    Metastore__Op **v;
    struct pb_node *nodes;

    *n_out = n;
    *out = NULL;
    if (n == 0)
        return 0;
    v = scratch_alloc(s, n * sizeof(*v));
    nodes = scratch_alloc(s, n * sizeof(*nodes));
    if (v == NULL || nodes == NULL)
        return MS_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int rc = build_op(s, &src[i], &nodes[i]);
        if (rc != 0)
            return rc;
        v[i] = &nodes[i].op;
    }
    *out = v;
    return 0;
}

static int build_txn(struct scratch *s, const struct ms_txn *t,
                     Metastore__Txn *m)
{
    metastore__txn__init(m);
    if (t->n_compare > 0) {
        Metastore__Compare **v = scratch_alloc(s, t->n_compare * sizeof(*v));
        Metastore__Compare *c = scratch_alloc(s, t->n_compare * sizeof(*c));
        if (v == NULL || c == NULL)
            return MS_ENOMEM;
        for (size_t i = 0; i < t->n_compare; i++) {
            const struct ms_compare *src = &t->compare[i];
            metastore__compare__init(&c[i]);
            c[i].result = (Metastore__Compare__CompareResult)src->result;
            c[i].target = (Metastore__Compare__CompareTarget)src->target;
            c[i].key = pb_bytes(src->key);
            c[i].range_end = pb_bytes(src->range_end);
            switch (src->target) {
            case MS_CMP_VERSION:
                c[i].target_union_case =
                    METASTORE__COMPARE__TARGET_UNION_VERSION;
                c[i].version = src->number;
                break;
            case MS_CMP_CREATE:
                c[i].target_union_case =
                    METASTORE__COMPARE__TARGET_UNION_CREATE_REVISION;
                c[i].create_revision = src->number;
                break;
            case MS_CMP_MOD:
                c[i].target_union_case =
                    METASTORE__COMPARE__TARGET_UNION_MOD_REVISION;
                c[i].mod_revision = src->number;
                break;
            case MS_CMP_VALUE:
                c[i].target_union_case = METASTORE__COMPARE__TARGET_UNION_VALUE;
                c[i].value = pb_bytes(src->value);
                break;
            case MS_CMP_LEASE:
                c[i].target_union_case = METASTORE__COMPARE__TARGET_UNION_LEASE;
                c[i].lease = src->number;
                break;
            }
            v[i] = &c[i];
        }
        m->n_compare = t->n_compare;
        m->compare = v;
    }
    if (build_ops(s, t->success, t->n_success, &m->n_success, &m->success) !=
            0 ||
        build_ops(s, t->failure, t->n_failure, &m->n_failure, &m->failure) != 0)
        return MS_ENOMEM;
    return 0;
}

/* Fills dst from src (already checked by ms_codec_check_op). Byte strings
 * are borrowed from src; txn arrays come from s. */
static int build_op(struct scratch *s, const struct ms_op *src,
                    struct pb_node *dst)
{
    Metastore__Op *op = &dst->op;

    metastore__op__init(op);
    op->node_id = src->node_id;
    op->request_id = src->request_id;
    switch (src->type) {
    case MS_OP_PUT: {
        Metastore__Put *m = &dst->m.put;
        metastore__put__init(m);
        m->key = pb_bytes(src->u.put.key);
        m->value = pb_bytes(src->u.put.value);
        m->lease = src->u.put.lease;
        m->prev_kv = src->u.put.prev_kv;
        m->ignore_value = src->u.put.ignore_value;
        m->ignore_lease = src->u.put.ignore_lease;
        op->op_case = METASTORE__OP__OP_PUT;
        op->put = m;
        return 0;
    }
    case MS_OP_DELETE_RANGE: {
        Metastore__DeleteRange *m = &dst->m.delete_range;
        metastore__delete_range__init(m);
        m->key = pb_bytes(src->u.delete_range.key);
        m->range_end = pb_bytes(src->u.delete_range.range_end);
        m->prev_kv = src->u.delete_range.prev_kv;
        op->op_case = METASTORE__OP__OP_DELETE_RANGE;
        op->delete_range = m;
        return 0;
    }
    case MS_OP_RANGE: {
        const struct ms_range *r = &src->u.range;
        Metastore__Range *m = &dst->m.range;
        metastore__range__init(m);
        m->key = pb_bytes(r->key);
        m->range_end = pb_bytes(r->range_end);
        m->limit = r->limit;
        m->revision = r->revision;
        m->sort_order = (Metastore__Range__SortOrder)r->sort_order;
        m->sort_target = (Metastore__Range__SortTarget)r->sort_target;
        m->serializable = r->serializable;
        m->keys_only = r->keys_only;
        m->count_only = r->count_only;
        m->min_mod_revision = r->min_mod_revision;
        m->max_mod_revision = r->max_mod_revision;
        m->min_create_revision = r->min_create_revision;
        m->max_create_revision = r->max_create_revision;
        op->op_case = METASTORE__OP__OP_RANGE;
        op->range = m;
        return 0;
    }
    case MS_OP_TXN:
        op->op_case = METASTORE__OP__OP_TXN;
        op->txn = &dst->m.txn;
        return build_txn(s, &src->u.txn, &dst->m.txn);
    case MS_OP_COMPACT: {
        Metastore__Compact *m = &dst->m.compact;
        metastore__compact__init(m);
        m->revision = src->u.compact.revision;
        m->physical = src->u.compact.physical;
        op->op_case = METASTORE__OP__OP_COMPACT;
        op->compact = m;
        return 0;
    }
    case MS_OP_LEASE_GRANT: {
        Metastore__LeaseGrant *m = &dst->m.lease_grant;
        metastore__lease_grant__init(m);
        m->id = src->u.lease_grant.id;
        m->ttl = src->u.lease_grant.ttl;
        op->op_case = METASTORE__OP__OP_LEASE_GRANT;
        op->lease_grant = m;
        return 0;
    }
    case MS_OP_LEASE_REVOKE: {
        Metastore__LeaseRevoke *m = &dst->m.lease_revoke;
        metastore__lease_revoke__init(m);
        m->id = src->u.lease_revoke.id;
        op->op_case = METASTORE__OP__OP_LEASE_REVOKE;
        op->lease_revoke = m;
        return 0;
    }
    }
    return MS_EINVAL;
}

int ms_codec_pb_begin(struct ms_batch_writer *w)
{
    (void)w;
    return 0;
}

int ms_codec_pb_add(struct ms_batch_writer *w, const struct ms_op *op)
{
    _Alignas(16) unsigned char stack[2048];
    struct scratch s;
    struct pb_node node;
    struct ms_buf *b = w->buf;
    size_t size;
    int rc;

    scratch_init(&s, stack, sizeof(stack));
    rc = build_op(&s, op, &node);
    if (rc != 0)
        goto err;
    size = metastore__op__get_packed_size(&node.op);
    rc = ms_buf_reserve(b, 1 + 10 + size);
    if (rc != 0)
        goto err;
    b->data[b->len++] = TAG_OPS;
    b->len += put_varint(b->data + b->len, size);
    b->len += metastore__op__pack(&node.op, b->data + b->len);
err:
    scratch_free(&s);
    return rc;
}

int ms_codec_pb_finish(struct ms_batch_writer *w)
{
    uint8_t rec[1 + 10];
    size_t n = 0;

    rec[n++] = TAG_COUNT;
    n += put_varint(rec + n, w->n_ops);
    return ms_buf_append(w->buf, rec, n);
}

/* --- decoding --------------------------------------------------------- */

struct dec {
    struct ms_arena *arena;
    struct ms_codec_path path;
    size_t items; /* ops and compares, nested ones included */
    char *errmsg;
    size_t errsize;
};

#define DEC_ERR(d, code, ...)                                                  \
    ms_codec_path_err(&(d)->path, (d)->errmsg, (d)->errsize, (code),           \
                      __VA_ARGS__)

static int count_item(struct dec *d)
{
    if (++d->items > MS_CODEC_MAX_OPS)
        return DEC_ERR(d, MS_ETOOLARGE,
                       "more than %u ops and compares in one batch",
                       MS_CODEC_MAX_OPS);
    return 0;
}

static int scan_txn(struct dec *d, const uint8_t *p, size_t n, int depth);

/* Walks the wire fields of one Op message before protobuf-c unpacks it:
 * bounds txn nesting (protobuf-c's unpack recursion has no limit of its
 * own) and counts nested ops and compares. Anything that is not valid wire
 * data is MS_EMALFORMED: the record's length is already known to fit. */
static int scan_msg(struct dec *d, const uint8_t *p, size_t n, int depth,
                    bool is_op)
{
    size_t pos = 0, used;
    uint64_t tag, v;

    while (pos < n) {
        if (get_varint(p + pos, n - pos, &tag, &used) != 0)
            return DEC_ERR(d, MS_EMALFORMED, "bad field tag");
        pos += used;
        if ((tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
            return DEC_ERR(d, MS_EMALFORMED, "bad field number");
        switch (tag & 7) {
        case 0:
            if (get_varint(p + pos, n - pos, &v, &used) != 0)
                return DEC_ERR(d, MS_EMALFORMED, "bad varint");
            pos += used;
            break;
        case 1:
        case 5: {
            size_t w = (tag & 7) == 1 ? 8 : 4;
            if (n - pos < w)
                return DEC_ERR(d, MS_EMALFORMED, "fixed field past the end");
            pos += w;
            break;
        }
        case 2: {
            uint64_t field = tag >> 3;
            int rc;
            if (get_varint(p + pos, n - pos, &v, &used) != 0)
                return DEC_ERR(d, MS_EMALFORMED, "bad length");
            pos += used;
            if (v > n - pos)
                return DEC_ERR(d, MS_EMALFORMED,
                               "field %u: length %llu past the end",
                               (unsigned)field, (unsigned long long)v);
            rc = 0;
            if (is_op && field == FIELD_OP_TXN)
                rc = scan_txn(d, p + pos, (size_t)v, depth + 1);
            else if (!is_op &&
                     (field == FIELD_TXN_SUCCESS || field == FIELD_TXN_FAILURE))
                rc = scan_msg(d, p + pos, (size_t)v, depth, true);
            else if (!is_op && field == FIELD_TXN_COMPARE)
                rc = count_item(d);
            if (rc != 0)
                return rc;
            pos += (size_t)v;
            break;
        }
        default:
            return DEC_ERR(d, MS_EMALFORMED, "bad wire type %u",
                           (unsigned)(tag & 7));
        }
    }
    return is_op ? count_item(d) : 0;
}

static int scan_txn(struct dec *d, const uint8_t *p, size_t n, int depth)
{
    if (depth > MS_CODEC_MAX_TXN_DEPTH)
        return DEC_ERR(d, MS_ETOOLARGE, "txns nested more than %d deep",
                       MS_CODEC_MAX_TXN_DEPTH);
    return scan_msg(d, p, n, depth, false);
}

static int no_unknown(struct dec *d, const ProtobufCMessage *m)
{
    if (m->n_unknown_fields > 0)
        return DEC_ERR(d, MS_EMALFORMED, "unknown field %u",
                       (unsigned)m->unknown_fields[0].tag);
    return 0;
}

static int copy_bytes(struct dec *d, const ProtobufCBinaryData *b,
                      struct ms_bytes *out)
{
    out->data = NULL;
    out->len = 0;
    if (b->len == 0)
        return 0;
    out->data = ms_arena_dup(d->arena, b->data, b->len);
    if (out->data == NULL)
        return DEC_ERR(d, MS_ENOMEM, "out of memory");
    out->len = b->len;
    return 0;
}

static int conv_op(struct dec *d, const Metastore__Op *m, struct ms_op *o,
                   int depth, bool in_txn);

static int conv_ops(struct dec *d, const char *name, Metastore__Op **v,
                    size_t n, struct ms_op **out, size_t *n_out, int depth)
{
    struct ms_op *ops = NULL;

    if (n > 0) {
        ops = ms_arena_zalloc(d->arena, n * sizeof(*ops));
        if (ops == NULL)
            return DEC_ERR(d, MS_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        int rc;
        ms_codec_path_push(&d->path, name, (long)i);
        rc = conv_op(d, v[i], &ops[i], depth, true);
        if (rc != 0)
            return rc;
        ms_codec_path_pop(&d->path);
    }
    *out = ops;
    *n_out = n;
    return 0;
}

static int conv_compare(struct dec *d, const Metastore__Compare *m,
                        struct ms_compare *c)
{
    static const Metastore__Compare__TargetUnionCase want[] = {
        [MS_CMP_VERSION] = METASTORE__COMPARE__TARGET_UNION_VERSION,
        [MS_CMP_CREATE] = METASTORE__COMPARE__TARGET_UNION_CREATE_REVISION,
        [MS_CMP_MOD] = METASTORE__COMPARE__TARGET_UNION_MOD_REVISION,
        [MS_CMP_VALUE] = METASTORE__COMPARE__TARGET_UNION_VALUE,
        [MS_CMP_LEASE] = METASTORE__COMPARE__TARGET_UNION_LEASE,
    };
    int rc;

    if ((rc = no_unknown(d, &m->base)) != 0)
        return rc;
    if ((unsigned)m->result > MS_CMP_NOT_EQUAL)
        return DEC_ERR(d, MS_EMALFORMED, "result: bad value %d",
                       (int)m->result);
    if ((unsigned)m->target > MS_CMP_LEASE)
        return DEC_ERR(d, MS_EMALFORMED, "target: bad value %d",
                       (int)m->target);
    if (m->target_union_case != want[m->target])
        return DEC_ERR(
            d, MS_EMALFORMED, "target %d needs target_union field %d, has %d",
            (int)m->target, (int)want[m->target], (int)m->target_union_case);
    c->result = (enum ms_compare_result)m->result;
    c->target = (enum ms_compare_target)m->target;
    if ((rc = copy_bytes(d, &m->key, &c->key)) != 0 ||
        (rc = copy_bytes(d, &m->range_end, &c->range_end)) != 0)
        return rc;
    switch (c->target) {
    case MS_CMP_VERSION:
        c->number = m->version;
        break;
    case MS_CMP_CREATE:
        c->number = m->create_revision;
        break;
    case MS_CMP_MOD:
        c->number = m->mod_revision;
        break;
    case MS_CMP_LEASE:
        c->number = m->lease;
        break;
    case MS_CMP_VALUE:
        return copy_bytes(d, &m->value, &c->value);
    }
    return 0;
}

static int conv_txn(struct dec *d, const Metastore__Txn *m, struct ms_txn *t,
                    int depth)
{
    int rc;

    if (depth > MS_CODEC_MAX_TXN_DEPTH)
        return DEC_ERR(d, MS_ETOOLARGE, "txns nested more than %d deep",
                       MS_CODEC_MAX_TXN_DEPTH);
    if ((rc = no_unknown(d, &m->base)) != 0)
        return rc;
    if (m->n_compare > 0) {
        t->compare =
            ms_arena_zalloc(d->arena, m->n_compare * sizeof(*t->compare));
        if (t->compare == NULL)
            return DEC_ERR(d, MS_ENOMEM, "out of memory");
        t->n_compare = m->n_compare;
    }
    for (size_t i = 0; i < m->n_compare; i++) {
        ms_codec_path_push(&d->path, "compare", (long)i);
        rc = conv_compare(d, m->compare[i], &t->compare[i]);
        if (rc != 0)
            return rc;
        ms_codec_path_pop(&d->path);
    }
    rc = conv_ops(d, "success", m->success, m->n_success, &t->success,
                  &t->n_success, depth);
    if (rc == 0)
        rc = conv_ops(d, "failure", m->failure, m->n_failure, &t->failure,
                      &t->n_failure, depth);
    return rc;
}

static int conv_body(struct dec *d, const Metastore__Op *m, struct ms_op *o,
                     int depth)
{
    int rc;

    switch (m->op_case) {
    case METASTORE__OP__OP_PUT: {
        const Metastore__Put *p = m->put;
        o->type = MS_OP_PUT;
        if ((rc = no_unknown(d, &p->base)) != 0 ||
            (rc = copy_bytes(d, &p->key, &o->u.put.key)) != 0 ||
            (rc = copy_bytes(d, &p->value, &o->u.put.value)) != 0)
            return rc;
        o->u.put.lease = p->lease;
        o->u.put.prev_kv = p->prev_kv;
        o->u.put.ignore_value = p->ignore_value;
        o->u.put.ignore_lease = p->ignore_lease;
        return 0;
    }
    case METASTORE__OP__OP_DELETE_RANGE: {
        const Metastore__DeleteRange *p = m->delete_range;
        o->type = MS_OP_DELETE_RANGE;
        if ((rc = no_unknown(d, &p->base)) != 0 ||
            (rc = copy_bytes(d, &p->key, &o->u.delete_range.key)) != 0 ||
            (rc = copy_bytes(d, &p->range_end, &o->u.delete_range.range_end)) !=
                0)
            return rc;
        o->u.delete_range.prev_kv = p->prev_kv;
        return 0;
    }
    case METASTORE__OP__OP_RANGE: {
        const Metastore__Range *p = m->range;
        struct ms_range *r = &o->u.range;
        o->type = MS_OP_RANGE;
        if ((rc = no_unknown(d, &p->base)) != 0)
            return rc;
        if ((unsigned)p->sort_order > MS_SORT_DESCEND)
            return DEC_ERR(d, MS_EMALFORMED, "sort_order: bad value %d",
                           (int)p->sort_order);
        if ((unsigned)p->sort_target > MS_SORT_VALUE)
            return DEC_ERR(d, MS_EMALFORMED, "sort_target: bad value %d",
                           (int)p->sort_target);
        if ((rc = copy_bytes(d, &p->key, &r->key)) != 0 ||
            (rc = copy_bytes(d, &p->range_end, &r->range_end)) != 0)
            return rc;
        r->limit = p->limit;
        r->revision = p->revision;
        r->sort_order = (enum ms_sort_order)p->sort_order;
        r->sort_target = (enum ms_sort_target)p->sort_target;
        r->serializable = p->serializable;
        r->keys_only = p->keys_only;
        r->count_only = p->count_only;
        r->min_mod_revision = p->min_mod_revision;
        r->max_mod_revision = p->max_mod_revision;
        r->min_create_revision = p->min_create_revision;
        r->max_create_revision = p->max_create_revision;
        return 0;
    }
    case METASTORE__OP__OP_TXN:
        o->type = MS_OP_TXN;
        return conv_txn(d, m->txn, &o->u.txn, depth + 1);
    case METASTORE__OP__OP_COMPACT:
        o->type = MS_OP_COMPACT;
        if ((rc = no_unknown(d, &m->compact->base)) != 0)
            return rc;
        o->u.compact.revision = m->compact->revision;
        o->u.compact.physical = m->compact->physical;
        return 0;
    case METASTORE__OP__OP_LEASE_GRANT:
        o->type = MS_OP_LEASE_GRANT;
        if ((rc = no_unknown(d, &m->lease_grant->base)) != 0)
            return rc;
        o->u.lease_grant.id = m->lease_grant->id;
        o->u.lease_grant.ttl = m->lease_grant->ttl;
        return 0;
    case METASTORE__OP__OP_LEASE_REVOKE:
        o->type = MS_OP_LEASE_REVOKE;
        if ((rc = no_unknown(d, &m->lease_revoke->base)) != 0)
            return rc;
        o->u.lease_revoke.id = m->lease_revoke->id;
        return 0;
    default:
        break;
    }
    return DEC_ERR(d, MS_EMALFORMED, "no operation set");
}

static const char *op_case_name(Metastore__Op__OpCase c)
{
    switch (c) {
    case METASTORE__OP__OP_PUT:
        return "put";
    case METASTORE__OP__OP_DELETE_RANGE:
        return "delete_range";
    case METASTORE__OP__OP_RANGE:
        return "range";
    case METASTORE__OP__OP_TXN:
        return "txn";
    case METASTORE__OP__OP_COMPACT:
        return "compact";
    case METASTORE__OP__OP_LEASE_GRANT:
        return "lease_grant";
    case METASTORE__OP__OP_LEASE_REVOKE:
        return "lease_revoke";
    default:
        return "?";
    }
}

static int conv_op(struct dec *d, const Metastore__Op *m, struct ms_op *o,
                   int depth, bool in_txn)
{
    int rc;

    if ((rc = no_unknown(d, &m->base)) != 0)
        return rc;
    if (m->op_case == METASTORE__OP__OP__NOT_SET)
        return DEC_ERR(d, MS_EMALFORMED, "no operation set");
    if (in_txn && m->op_case != METASTORE__OP__OP_PUT &&
        m->op_case != METASTORE__OP__OP_DELETE_RANGE &&
        m->op_case != METASTORE__OP__OP_RANGE &&
        m->op_case != METASTORE__OP__OP_TXN)
        return DEC_ERR(d, MS_EMALFORMED,
                       "only put, delete_range, range and txn may be in a "
                       "txn (field %d)",
                       (int)m->op_case);
    o->node_id = m->node_id;
    o->request_id = m->request_id;
    ms_codec_path_push(&d->path, op_case_name(m->op_case), -1);
    rc = conv_body(d, m, o, depth);
    if (rc == 0)
        ms_codec_path_pop(&d->path);
    return rc;
}

/* The top-level records of a Batch: returns 0 and the number of op records,
 * having checked their framing, the count record and the nesting inside
 * each op. */
static int frame_batch(struct dec *d, const uint8_t *data, size_t len,
                       size_t *n_ops)
{
    size_t pos = 0, n = 0, used;
    uint64_t tag, v;
    int rc;

    while (pos < len) {
        ms_codec_path_push(&d->path, "ops", (long)n);
        rc = get_varint(data + pos, len - pos, &tag, &used);
        if (rc != 0)
            return DEC_ERR(d, rc, "bad record tag at offset %zu", pos);
        pos += used;
        if (tag == TAG_COUNT) {
            ms_codec_path_pop(&d->path);
            rc = get_varint(data + pos, len - pos, &v, &used);
            if (rc != 0)
                return DEC_ERR(d, rc, "bad count record at offset %zu", pos);
            pos += used;
            if (pos != len)
                return DEC_ERR(d, MS_ETRAILING,
                               "%zu bytes after the count record", len - pos);
            if (v != n)
                return DEC_ERR(d, MS_EMALFORMED,
                               "count record says %llu ops, batch has %zu",
                               (unsigned long long)v, n);
            *n_ops = n;
            return 0;
        }
        if (tag != TAG_OPS)
            return DEC_ERR(d, MS_EMALFORMED,
                           "unexpected field %llu wire type %u at offset %zu",
                           (unsigned long long)(tag >> 3), (unsigned)(tag & 7),
                           pos - used);
        rc = get_varint(data + pos, len - pos, &v, &used);
        if (rc != 0)
            return DEC_ERR(d, rc, "bad record length at offset %zu", pos);
        pos += used;
        if (v > len - pos)
            return DEC_ERR(d, MS_ETRUNCATED, "record of %llu bytes, %zu left",
                           (unsigned long long)v, len - pos);
        rc = scan_msg(d, data + pos, (size_t)v, 0, true);
        if (rc != 0)
            return rc;
        pos += (size_t)v;
        n++;
        ms_codec_path_pop(&d->path);
    }
    return DEC_ERR(d, MS_ETRUNCATED,
                   "batch of %zu ops ends without its count record", n);
}

int ms_codec_pb_decode(const uint8_t *data, size_t len, struct ms_batch *out,
                       char *errmsg, size_t errmsg_size)
{
    _Alignas(16) unsigned char stack[8192];
    struct scratch s;
    ProtobufCAllocator alloc = {scratch_alloc, scratch_nofree, &s};
    struct dec d;
    size_t n_ops = 0, pos = 0, used;
    uint64_t v;
    int rc;

    d.arena = &out->arena;
    d.path.n = 0;
    d.items = 0;
    d.errmsg = errmsg;
    d.errsize = errmsg_size;
    scratch_init(&s, stack, sizeof(stack));

    rc = frame_batch(&d, data, len, &n_ops);
    if (rc != 0)
        goto err;
    if (n_ops > 0) {
        if (out->arena.chunk_size == 0)
            out->arena.chunk_size = 16384;
        out->ops = ms_arena_zalloc(&out->arena, n_ops * sizeof(*out->ops));
        if (out->ops == NULL) {
            rc = DEC_ERR(&d, MS_ENOMEM, "out of memory");
            goto err;
        }
    }
    /* framing is known good: each op record is tag, length, Op */
    for (size_t i = 0; i < n_ops; i++) {
        Metastore__Op *m;

        get_varint(data + pos, len - pos, &v, &used); /* the tag */
        pos += used;
        get_varint(data + pos, len - pos, &v, &used);
        pos += used;
        ms_codec_path_push(&d.path, "ops", (long)i);
        m = metastore__op__unpack(&alloc, (size_t)v, data + pos);
        if (m == NULL) {
            rc = s.failed ? DEC_ERR(&d, MS_ENOMEM, "out of memory")
                          : DEC_ERR(&d, MS_EMALFORMED, "invalid Op message");
            goto err;
        }
        rc = conv_op(&d, m, &out->ops[i], 0, false);
        if (rc != 0)
            goto err;
        ms_codec_path_pop(&d.path);
        pos += (size_t)v;
        scratch_reset(&s);
    }
    out->n_ops = n_ops;
    scratch_free(&s);
    return 0;
err:
    scratch_free(&s);
    return rc;
}
