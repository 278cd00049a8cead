/* gateway_resp.c - writes etcd v3 gateway JSON responses and errors, as
 * etcd 3.4's grpc-gateway (jsonpb, OrigName) prints them. */
#include "api/gateway.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/base64.h"
#include "util/error.h"

/* proto3 JSON as jsonpb writes it: fields in proto order, zero values
 * omitted, 64-bit integers as strings, bytes as base64. Every writer
 * returns 0 or MS_ENOMEM. */

#define TRY(x)                                                                 \
    do {                                                                       \
        int rc_ = (x);                                                         \
        if (rc_ != 0)                                                          \
            return rc_;                                                        \
    } while (0)

static int put_lit(struct ms_buf *b, const char *s)
{
    return ms_buf_append(b, s, strlen(s));
}

/* Appends v in decimal, with its sign. */
static int put_u64(struct ms_buf *b, uint64_t v, int neg)
{
    char tmp[24];
    int i = sizeof(tmp);

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    if (neg)
        tmp[--i] = '-';
    return ms_buf_append(b, tmp + i, sizeof(tmp) - (size_t)i);
}

/* Writes ,"name":"v" (sep: the ',' when not the first field). */
static int field_u64(struct ms_buf *b, int *first, const char *name, uint64_t v,
                     int neg)
{
    TRY(ms_buf_reserve(b, strlen(name) + 30));
    if (!*first)
        TRY(ms_buf_putc(b, ','));
    *first = 0;
    TRY(ms_buf_putc(b, '"'));
    TRY(put_lit(b, name));
    TRY(put_lit(b, "\":\""));
    TRY(put_u64(b, v, neg));
    return ms_buf_putc(b, '"');
}

static int opt_i64(struct ms_buf *b, int *first, const char *name, int64_t v)
{
    if (v == 0)
        return 0;
    if (v < 0)
        return field_u64(b, first, name, 0 - (uint64_t)v, 1);
    return field_u64(b, first, name, (uint64_t)v, 0);
}

static int opt_u64(struct ms_buf *b, int *first, const char *name, uint64_t v)
{
    if (v == 0)
        return 0;
    return field_u64(b, first, name, v, 0);
}

/* Writes ,"name": (the value follows). */
static int key(struct ms_buf *b, int *first, const char *name)
{
    if (!*first)
        TRY(ms_buf_putc(b, ','));
    *first = 0;
    TRY(ms_buf_putc(b, '"'));
    TRY(put_lit(b, name));
    return put_lit(b, "\":");
}

static int opt_bytes(struct ms_buf *b, int *first, const char *name,
                     struct ms_bytes v)
{
    if (v.len == 0)
        return 0;
    TRY(key(b, first, name));
    TRY(ms_buf_putc(b, '"'));
    TRY(ms_base64_encode(b, v.data, v.len));
    return ms_buf_putc(b, '"');
}

static int opt_true(struct ms_buf *b, int *first, const char *name, bool v)
{
    if (!v)
        return 0;
    TRY(key(b, first, name));
    return put_lit(b, "true");
}

static int opt_string(struct ms_buf *b, int *first, const char *name,
                      const char *s)
{
    if (s == NULL || s[0] == '\0')
        return 0;
    TRY(key(b, first, name));
    return ms_gw_write_string(b, s, strlen(s));
}

static int opt_strings(struct ms_buf *b, int *first, const char *name,
                       const char *const *v, size_t n)
{
    if (n == 0)
        return 0;
    TRY(key(b, first, name));
    TRY(ms_buf_putc(b, '['));
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            TRY(ms_buf_putc(b, ','));
        TRY(ms_gw_write_string(b, v[i], strlen(v[i])));
    }
    return ms_buf_putc(b, ']');
}

int ms_gw_write_string(struct ms_buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, start = 0;

    TRY(ms_buf_reserve(out, n + 2));
    TRY(ms_buf_putc(out, '"'));
    while (i < n) {
        unsigned c = u[i];
        char esc[8];
        size_t elen = 0, skip = 1;

        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\' && c != '<' &&
            c != '>' && c != '&') {
            i++;
            continue;
        }
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c, elen = 2;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\', esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            elen = 2;
        } else if (c < 0x80) { /* other controls and < > & */
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4], esc[5] = hex[c & 15], elen = 6;
        } else {
            /* valid UTF-8 passes, except U+2028/2029; invalid: U+FFFD */
            size_t len = 0;
            unsigned long r = 0, min = 0;
            if (c >= 0xc2 && c <= 0xdf)
                len = 2, r = c & 0x1f, min = 0x80;
            else if (c >= 0xe0 && c <= 0xef)
                len = 3, r = c & 0x0f, min = 0x800;
            else if (c >= 0xf0 && c <= 0xf4)
                len = 4, r = c & 0x07, min = 0x10000;
            if (len == 0 || n - i < len) {
                len = 0;
            } else {
                for (size_t k = 1; k < len; k++) {
                    if ((u[i + k] & 0xc0) != 0x80) {
                        len = 0;
                        break;
                    }
                    r = r << 6 | (u[i + k] & 0x3f);
                }
            }
            if (len != 0 &&
                (r < min || r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff)))
                len = 0;
            if (len == 0) {
                memcpy(esc, "\\ufffd", 6), elen = 6;
            } else if (r == 0x2028 || r == 0x2029) {
                memcpy(esc, r == 0x2028 ? "\\u2028" : "\\u2029", 6);
                elen = 6, skip = 3;
            } else {
                i += len;
                continue;
            }
        }
        TRY(ms_buf_append(out, s + start, i - start));
        TRY(ms_buf_append(out, esc, elen));
        i += skip;
        start = i;
    }
    TRY(ms_buf_append(out, s + start, i - start));
    return ms_buf_putc(out, '"');
}

int ms_gw_write_header(struct ms_buf *out, const struct ms_gw_header *hdr)
{
    int first = 1;

    TRY(ms_buf_putc(out, '{'));
    TRY(opt_u64(out, &first, "cluster_id", hdr->cluster_id));
    TRY(opt_u64(out, &first, "member_id", hdr->member_id));
    TRY(opt_i64(out, &first, "revision", hdr->revision));
    TRY(opt_u64(out, &first, "raft_term", hdr->raft_term));
    return ms_buf_putc(out, '}');
}

int ms_gw_write_kv(struct ms_buf *out, const struct ms_kv *kv)
{
    int first = 1;

    TRY(ms_buf_putc(out, '{'));
    TRY(opt_bytes(out, &first, "key", kv->key));
    TRY(opt_i64(out, &first, "create_revision", kv->create_revision));
    TRY(opt_i64(out, &first, "mod_revision", kv->mod_revision));
    TRY(opt_i64(out, &first, "version", kv->version));
    TRY(opt_bytes(out, &first, "value", kv->value));
    TRY(opt_i64(out, &first, "lease", kv->lease));
    return ms_buf_putc(out, '}');
}

static int kvs(struct ms_buf *b, int *first, const char *name,
               const struct ms_kv *v, size_t n)
{
    if (n == 0)
        return 0;
    TRY(key(b, first, name));
    TRY(ms_buf_putc(b, '['));
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            TRY(ms_buf_putc(b, ','));
        TRY(ms_gw_write_kv(b, &v[i]));
    }
    return ms_buf_putc(b, ']');
}

/* depth 0: the top-level response, with hdr; inside a txn, the header
 * holds only the result's revision, and a nested txn's header nothing. */
static int write_result(struct ms_buf *b, const struct ms_gw_header *hdr,
                        const struct ms_result *r, int depth)
{
    static const char *const inner[] = {
        [MS_OP_PUT] = "response_put",
        [MS_OP_DELETE_RANGE] = "response_delete_range",
        [MS_OP_RANGE] = "response_range",
        [MS_OP_TXN] = "response_txn",
    };
    struct ms_gw_header h = {0, 0, 0, 0};
    int first = 0;

    if (depth == 0)
        h = *hdr;
    else if (r->type != MS_OP_TXN)
        h.revision = r->revision;
    TRY(put_lit(b, "{\"header\":"));
    TRY(ms_gw_write_header(b, &h));
    switch (r->type) {
    case MS_OP_PUT:
        if (r->u.put.has_prev) {
            TRY(key(b, &first, "prev_kv"));
            TRY(ms_gw_write_kv(b, &r->u.put.prev_kv));
        }
        break;
    case MS_OP_RANGE:
        TRY(kvs(b, &first, "kvs", r->u.range.kvs, r->u.range.n_kvs));
        TRY(opt_true(b, &first, "more", r->u.range.more));
        TRY(opt_i64(b, &first, "count", r->u.range.count));
        break;
    case MS_OP_DELETE_RANGE:
        TRY(opt_i64(b, &first, "deleted", r->u.delete_range.deleted));
        TRY(kvs(b, &first, "prev_kvs", r->u.delete_range.prev_kvs,
                r->u.delete_range.n_prev_kvs));
        break;
    case MS_OP_TXN:
        TRY(opt_true(b, &first, "succeeded", r->u.txn.succeeded));
        if (r->u.txn.n_responses == 0)
            break;
        TRY(key(b, &first, "responses"));
        TRY(ms_buf_putc(b, '['));
        for (size_t i = 0; i < r->u.txn.n_responses; i++) {
            const struct ms_result *s = &r->u.txn.responses[i];
            if (s->type < MS_OP_PUT || s->type > MS_OP_TXN || s->err != 0)
                return MS_EINVAL;
            if (i > 0)
                TRY(ms_buf_putc(b, ','));
            TRY(put_lit(b, "{\""));
            TRY(put_lit(b, inner[s->type]));
            TRY(put_lit(b, "\":"));
            TRY(write_result(b, NULL, s, depth + 1));
            TRY(ms_buf_putc(b, '}'));
        }
        TRY(ms_buf_putc(b, ']'));
        break;
    case MS_OP_LEASE_GRANT:
        TRY(opt_i64(b, &first, "ID", r->u.lease_grant.id));
        TRY(opt_i64(b, &first, "TTL", r->u.lease_grant.ttl));
        break;
    case MS_OP_COMPACT:
    case MS_OP_LEASE_REVOKE:
        break;
    }
    return ms_buf_putc(b, '}');
}

/* Rejects what cannot be written before anything is appended. */
static int writable(const struct ms_result *r, int depth)
{
    if (r->err != 0 || r->type < MS_OP_PUT || r->type > MS_OP_LEASE_REVOKE)
        return 0;
    if (depth > 0 && r->type > MS_OP_TXN)
        return 0;
    if (r->type == MS_OP_TXN)
        for (size_t i = 0; i < r->u.txn.n_responses; i++)
            if (!writable(&r->u.txn.responses[i], depth + 1))
                return 0;
    return 1;
}

int ms_gw_write_result(struct ms_buf *out, const struct ms_gw_header *hdr,
                       const struct ms_result *r)
{
    if (!writable(r, 0))
        return MS_EINVAL;
    return write_result(out, hdr, r, 0);
}

int ms_gw_write_status(struct ms_buf *out, const struct ms_gw_header *hdr,
                       const struct ms_gw_status *st)
{
    int first = 0;

    TRY(put_lit(out, "{\"header\":"));
    TRY(ms_gw_write_header(out, hdr));
    TRY(opt_string(out, &first, "version", st->version));
    TRY(opt_i64(out, &first, "dbSize", st->db_size));
    TRY(opt_u64(out, &first, "leader", st->leader));
    TRY(opt_u64(out, &first, "raftIndex", st->raft_index));
    TRY(opt_u64(out, &first, "raftTerm", st->raft_term));
    TRY(opt_u64(out, &first, "raftAppliedIndex", st->raft_applied_index));
    TRY(opt_strings(out, &first, "errors", st->errors, st->n_errors));
    TRY(opt_i64(out, &first, "dbSizeInUse", st->db_size_in_use));
    TRY(opt_true(out, &first, "isLearner", st->is_learner));
    return ms_buf_putc(out, '}');
}

int ms_gw_write_member_list(struct ms_buf *out, const struct ms_gw_header *hdr,
                            const struct ms_gw_member *members, size_t n)
{
    TRY(put_lit(out, "{\"header\":"));
    TRY(ms_gw_write_header(out, hdr));
    if (n > 0) {
        TRY(put_lit(out, ",\"members\":["));
        for (size_t i = 0; i < n; i++) {
            const struct ms_gw_member *m = &members[i];
            int first = 1;
            if (i > 0)
                TRY(ms_buf_putc(out, ','));
            TRY(ms_buf_putc(out, '{'));
            TRY(opt_u64(out, &first, "ID", m->id));
            TRY(opt_string(out, &first, "name", m->name));
            TRY(opt_strings(out, &first, "peerURLs", m->peer_urls,
                            m->n_peer_urls));
            TRY(opt_strings(out, &first, "clientURLs", m->client_urls,
                            m->n_client_urls));
            TRY(opt_true(out, &first, "isLearner", m->is_learner));
            TRY(ms_buf_putc(out, '}'));
        }
        TRY(ms_buf_putc(out, ']'));
    }
    return ms_buf_putc(out, '}');
}

/* --- errors -------------------------------------------------------------- */

int ms_gw_http_status(int grpc_code)
{
    switch (grpc_code) {
    case MS_GRPC_OK:
        return 200;
    case MS_GRPC_CANCELED:
        return 408;
    case MS_GRPC_INVALID_ARGUMENT:
        return 400;
    case MS_GRPC_DEADLINE_EXCEEDED:
        return 504;
    case MS_GRPC_NOT_FOUND:
        return 404;
    case MS_GRPC_ALREADY_EXISTS:
        return 409;
    case MS_GRPC_PERMISSION_DENIED:
        return 403;
    case MS_GRPC_UNAUTHENTICATED:
        return 401;
    case MS_GRPC_RESOURCE_EXHAUSTED:
        return 429;
    case MS_GRPC_FAILED_PRECONDITION:
        return 412;
    case MS_GRPC_ABORTED:
        return 409;
    case MS_GRPC_OUT_OF_RANGE:
        return 400;
    case MS_GRPC_UNIMPLEMENTED:
        return 501;
    case MS_GRPC_UNAVAILABLE:
        return 503;
    default:
        return 500; /* Unknown, Internal, DataLoss */
    }
}

void ms_gw_error_set(struct ms_gw_error *err, int grpc_code, const char *fmt,
                     ...)
{
    va_list ap;

    err->grpc_code = grpc_code;
    err->http_status = ms_gw_http_status(grpc_code);
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

/* etcd's text and gRPC code for each of our codes that etcd has. */
static const struct {
    int grpc_code;
    const char *message;
} etcd_errors[MS_E_MAX] = {
    [MS_EINVAL] = {MS_GRPC_INVALID_ARGUMENT, NULL},
    [MS_EMALFORMED] = {MS_GRPC_INVALID_ARGUMENT, NULL},
    [MS_EBASE64] = {MS_GRPC_INVALID_ARGUMENT, NULL},
    [MS_ETRUNCATED] = {MS_GRPC_INVALID_ARGUMENT, "unexpected EOF"},
    [MS_ETOOLARGE] = {MS_GRPC_INVALID_ARGUMENT,
                      "etcdserver: request is too large"},
    [MS_ENOTFOUND] = {MS_GRPC_INVALID_ARGUMENT, "etcdserver: key not found"},
    [MS_ECOMPACTED] = {MS_GRPC_OUT_OF_RANGE,
                       "etcdserver: mvcc: required revision has been "
                       "compacted"},
    [MS_EFUTUREREV] = {MS_GRPC_OUT_OF_RANGE,
                       "etcdserver: mvcc: required revision is a future "
                       "revision"},
    [MS_EDUPKEY] = {MS_GRPC_INVALID_ARGUMENT,
                    "etcdserver: duplicate key given in txn request"},
    [MS_EKEYEMPTY] = {MS_GRPC_INVALID_ARGUMENT,
                      "etcdserver: key is not provided"},
    [MS_EEXISTS] = {MS_GRPC_FAILED_PRECONDITION,
                    "etcdserver: lease already exists"},
    [MS_ENOLEADER] = {MS_GRPC_UNAVAILABLE, "etcdserver: no leader"},
    [MS_ENOTLEADER] = {MS_GRPC_UNAVAILABLE, "etcdserver: not leader"},
    [MS_ESHUTDOWN] = {MS_GRPC_UNAVAILABLE, "etcdserver: server stopped"},
    [MS_ENOSPACE] = {MS_GRPC_RESOURCE_EXHAUSTED,
                     "etcdserver: mvcc: database space exceeded"},
    [MS_ENOTIMPL] = {MS_GRPC_UNIMPLEMENTED, NULL},
    [MS_ETIMEOUT] = {MS_GRPC_UNAVAILABLE, "etcdserver: request timed out"},
    [MS_ETOOMANYOPS] = {MS_GRPC_INVALID_ARGUMENT,
                        "etcdserver: too many operations in txn request"},
    [MS_ELEASE] = {MS_GRPC_NOT_FOUND, "etcdserver: requested lease not found"},
    [MS_ECANCELED] = {MS_GRPC_CANCELED, "context canceled"},
};

int ms_gw_error_from_code(int ms_code, const char *detail,
                          struct ms_gw_error *err)
{
    int grpc = MS_GRPC_UNKNOWN;
    const char *msg = NULL;

    if (ms_code > 0 && ms_code < MS_E_MAX && etcd_errors[ms_code].grpc_code) {
        grpc = etcd_errors[ms_code].grpc_code;
        msg = etcd_errors[ms_code].message;
    }
    if (detail != NULL)
        msg = detail;
    if (msg == NULL)
        msg = ms_strerror(ms_code);
    ms_gw_error_set(err, grpc, "%s", msg);
    return ms_code;
}

int ms_gw_error_from_result(const struct ms_result *r, struct ms_gw_error *err)
{
    if (r->err == MS_ENOTFOUND &&
        (r->type == MS_OP_LEASE_GRANT || r->type == MS_OP_LEASE_REVOKE)) {
        ms_gw_error_from_code(MS_ELEASE, NULL, err);
        return r->err;
    }
    return ms_gw_error_from_code(r->err, NULL, err);
}

int ms_gw_error_json(const struct ms_gw_error *err, struct ms_buf *out)
{
    size_t n = strnlen(err->message, sizeof(err->message));

    TRY(put_lit(out, "{\"error\":"));
    TRY(ms_gw_write_string(out, err->message, n));
    TRY(put_lit(out, ",\"message\":"));
    TRY(ms_gw_write_string(out, err->message, n));
    TRY(put_lit(out, ",\"code\":"));
    TRY(put_u64(
        out, (uint64_t)(err->grpc_code < 0 ? -err->grpc_code : err->grpc_code),
        err->grpc_code < 0));
    return ms_buf_putc(out, '}');
}
