/* codec.c - the codec-independent part: names, the entry header, the
 * batch writer's dispatch and op validation, decode dispatch. */
#include "codec/codec.h"
#include "codec/codec_impl.h"
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ms_codec_parse(const char *name, enum ms_codec_id *out)
{
    if (strcmp(name, "protobuf") == 0) {
        *out = MS_CODEC_PROTOBUF;
        return 0;
    }
    if (strcmp(name, "json") == 0) {
        *out = MS_CODEC_JSON;
        return 0;
    }
    return MS_EINVAL;
}

const char *ms_codec_name(enum ms_codec_id id)
{
    switch (id) {
    case MS_CODEC_PROTOBUF:
        return "protobuf";
    case MS_CODEC_JSON:
        return "json";
    }
    return "unknown";
}

static int bytes_ok(struct ms_bytes b)
{
    return b.len == 0 || b.data != NULL;
}

static int check_ops(const struct ms_op *ops, size_t n, int depth)
{
    if (n > 0 && ops == NULL)
        return MS_EINVAL;
    for (size_t i = 0; i < n; i++) {
        switch (ops[i].type) {
        case MS_OP_PUT:
        case MS_OP_DELETE_RANGE:
        case MS_OP_RANGE:
        case MS_OP_TXN:
            break;
        default:
            return MS_EINVAL;
        }
        if (ms_codec_check_op(&ops[i], depth) != 0)
            return MS_EINVAL;
    }
    return 0;
}

static int check_txn(const struct ms_txn *t, int depth)
{
    if (depth > MS_CODEC_MAX_TXN_DEPTH)
        return MS_EINVAL;
    if (t->n_compare > 0 && t->compare == NULL)
        return MS_EINVAL;
    for (size_t i = 0; i < t->n_compare; i++) {
        const struct ms_compare *c = &t->compare[i];
        if ((unsigned)c->result > MS_CMP_NOT_EQUAL ||
            (unsigned)c->target > MS_CMP_LEASE || !bytes_ok(c->key) ||
            !bytes_ok(c->range_end) ||
            (c->target == MS_CMP_VALUE && !bytes_ok(c->value)))
            return MS_EINVAL;
    }
    if (check_ops(t->success, t->n_success, depth) != 0 ||
        check_ops(t->failure, t->n_failure, depth) != 0)
        return MS_EINVAL;
    return 0;
}

/* 0 when both byte strings are usable, else MS_EINVAL */
static int check_bytes(struct ms_bytes a, struct ms_bytes b)
{
    return bytes_ok(a) && bytes_ok(b) ? 0 : MS_EINVAL;
}

int ms_codec_check_op(const struct ms_op *op, int depth)
{
    switch (op->type) {
    case MS_OP_PUT:
        return check_bytes(op->u.put.key, op->u.put.value);
    case MS_OP_DELETE_RANGE:
        return check_bytes(op->u.delete_range.key,
                           op->u.delete_range.range_end);
    case MS_OP_RANGE:
        if ((unsigned)op->u.range.sort_order > MS_SORT_DESCEND ||
            (unsigned)op->u.range.sort_target > MS_SORT_VALUE)
            return MS_EINVAL;
        return check_bytes(op->u.range.key, op->u.range.range_end);
    case MS_OP_TXN:
        return check_txn(&op->u.txn, depth + 1);
    case MS_OP_COMPACT:
    case MS_OP_LEASE_GRANT:
    case MS_OP_LEASE_REVOKE:
        return 0;
    }
    return MS_EINVAL;
}

int ms_batch_writer_init(struct ms_batch_writer *w, enum ms_codec_id codec,
                         struct ms_buf *buf)
{
    uint8_t hdr[MS_CODEC_HEADER_SIZE] = {MS_CODEC_FORMAT_VERSION,
                                         (uint8_t)codec};
    int rc;

    if (codec != MS_CODEC_PROTOBUF && codec != MS_CODEC_JSON)
        return MS_ECODEC;
    w->codec = codec;
    w->buf = buf;
    w->n_ops = 0;
    w->start = buf->len;
    rc = ms_buf_append(buf, hdr, sizeof(hdr));
    if (rc != 0)
        return rc;
    rc = codec == MS_CODEC_JSON ? ms_codec_json_begin(w) : ms_codec_pb_begin(w);
    if (rc != 0)
        buf->len = w->start;
    return rc;
}

int ms_batch_writer_add(struct ms_batch_writer *w, const struct ms_op *op)
{
    size_t len = w->buf->len;
    int rc;

    if (ms_codec_check_op(op, 0) != 0)
        return MS_EINVAL;
    rc = w->codec == MS_CODEC_JSON ? ms_codec_json_add(w, op)
                                   : ms_codec_pb_add(w, op);
    if (rc != 0) {
        w->buf->len = len; /* leave buf as it was before this op */
        return rc;
    }
    w->n_ops++;
    return 0;
}

int ms_batch_writer_finish(struct ms_batch_writer *w)
{
    return w->codec == MS_CODEC_JSON ? ms_codec_json_finish(w)
                                     : ms_codec_pb_finish(w);
}

int ms_codec_encode_batch(enum ms_codec_id codec, const struct ms_batch *b,
                          struct ms_buf *out)
{
    struct ms_batch_writer w;
    size_t start = out->len;
    int rc;

    rc = ms_batch_writer_init(&w, codec, out);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < b->n_ops; i++) {
        rc = ms_batch_writer_add(&w, &b->ops[i]);
        if (rc != 0)
            goto err;
    }
    rc = ms_batch_writer_finish(&w);
    if (rc != 0)
        goto err;
    return 0;
err:
    out->len = start;
    return rc;
}

int ms_codec_peek(const uint8_t *data, size_t len, enum ms_codec_id *codec)
{
    if (len == 0)
        return MS_ETRUNCATED;
    if (data[0] != MS_CODEC_FORMAT_VERSION)
        return MS_EVERSION;
    if (len < MS_CODEC_HEADER_SIZE)
        return MS_ETRUNCATED;
    if (data[1] != MS_CODEC_PROTOBUF && data[1] != MS_CODEC_JSON)
        return MS_ECODEC;
    *codec = (enum ms_codec_id)data[1];
    return 0;
}

int ms_codec_decode_batch(const uint8_t *data, size_t len, struct ms_batch *out,
                          char *errmsg, size_t errmsg_size)
{
    char local[MS_ERRMSG_SIZE];
    enum ms_codec_id codec;
    int rc;

    if (errmsg == NULL || errmsg_size == 0) {
        errmsg = local;
        errmsg_size = sizeof(local);
    }
    errmsg[0] = '\0';
    memset(out, 0, sizeof(*out));
    rc = ms_codec_peek(data, len, &codec);
    if (rc == MS_ETRUNCATED)
        return ms_seterr(errmsg, errmsg_size, rc,
                         "payload of %zu bytes has no complete header", len);
    if (rc == MS_EVERSION)
        return ms_seterr(errmsg, errmsg_size, rc,
                         "unsupported format version %u", data[0]);
    if (rc == MS_ECODEC)
        return ms_seterr(errmsg, errmsg_size, rc, "unknown codec id %u",
                         data[1]);
    if (len > MS_CODEC_MAX_PAYLOAD)
        return ms_seterr(errmsg, errmsg_size, MS_ETOOLARGE,
                         "payload of %zu bytes exceeds the limit of %u", len,
                         MS_CODEC_MAX_PAYLOAD);
    data += MS_CODEC_HEADER_SIZE;
    len -= MS_CODEC_HEADER_SIZE;
    if (codec == MS_CODEC_JSON)
        rc = ms_codec_json_decode(data, len, out, errmsg, errmsg_size);
    else
        rc = ms_codec_pb_decode(data, len, out, errmsg, errmsg_size);
    if (rc != 0)
        ms_batch_free(out);
    return rc;
}

int ms_codec_path_err(const struct ms_codec_path *p, char *errmsg, size_t size,
                      int code, const char *fmt, ...)
{
    size_t off = 0;
    int n = p->n < MS_CODEC_PATH_MAX ? p->n : MS_CODEC_PATH_MAX;
    va_list ap;

    if (size == 0)
        return code;
    errmsg[0] = '\0';
    for (int i = 0; i < n && off < size; i++) {
        int w;
        if (p->f[i].index >= 0)
            w = snprintf(errmsg + off, size - off, "%s%s[%ld]",
                         i > 0 ? "." : "", p->f[i].name, p->f[i].index);
        else
            w = snprintf(errmsg + off, size - off, "%s%s", i > 0 ? "." : "",
                         p->f[i].name);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    if (p->n > MS_CODEC_PATH_MAX && off < size)
        off += (size_t)snprintf(errmsg + off, size - off, "...");
    if (off > 0 && off < size)
        off += (size_t)snprintf(errmsg + off, size - off, ": ");
    if (off < size) {
        va_start(ap, fmt);
        vsnprintf(errmsg + off, size - off, fmt, ap);
        va_end(ap);
    }
    return code;
}
