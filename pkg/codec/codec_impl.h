/* codec_impl.h - internal interface between codec.c and the JSON and
 * protobuf codecs; not for use outside pkg/codec. */
#ifndef MS_CODEC_CODEC_IMPL_H
#define MS_CODEC_CODEC_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "codec/codec.h"

/* The writer functions of one codec. codec.c writes the entry header and
 * validates each op (ms_codec_check_op) before calling add, so add may
 * assume a well-formed op. Each returns 0 or MS_ENOMEM. */
int ms_codec_pb_begin(struct ms_batch_writer *w);
int ms_codec_pb_add(struct ms_batch_writer *w, const struct ms_op *op);
int ms_codec_pb_finish(struct ms_batch_writer *w);

int ms_codec_json_begin(struct ms_batch_writer *w);
int ms_codec_json_add(struct ms_batch_writer *w, const struct ms_op *op);
int ms_codec_json_finish(struct ms_batch_writer *w);

/* Decode the codec bytes (after the entry header) into out, which is zeroed
 * and whose arena receives every allocation. On failure the caller frees
 * out; errmsg (never NULL, size > 0) receives the reason. Return 0 or an
 * MS_E* code as ms_codec_decode_batch documents. */
int ms_codec_pb_decode(const uint8_t *data, size_t len, struct ms_batch *out,
                       char *errmsg, size_t errmsg_size);
int ms_codec_json_decode(const uint8_t *data, size_t len, struct ms_batch *out,
                         char *errmsg, size_t errmsg_size);

/* Returns 0 when op can be encoded by both codecs (known type and enum
 * values, only put/delete_range/range/txn inside a txn, txns nested at most
 * MS_CODEC_MAX_TXN_DEPTH deep, no NULL data with a non-zero length);
 * MS_EINVAL otherwise. depth is the number of txns op is nested in. */
int ms_codec_check_op(const struct ms_op *op, int depth);

/* Where a decoder is, for error messages: a stack of frames such as
 * ops[3] / txn / success[0] / put / key, formatted only when an error is
 * reported ("ops[3].txn.success[0].put.key"). Pushing costs two stores, so
 * decoders keep it current on the hot path. */
#define MS_CODEC_PATH_MAX 48

struct ms_codec_path {
    int n; /* frames pushed; only the first MS_CODEC_PATH_MAX are kept */
    struct {
        const char *name;
        long index; /* -1: no index */
    } f[MS_CODEC_PATH_MAX];
};

static inline void ms_codec_path_push(struct ms_codec_path *p, const char *name,
                                      long index)
{
    if (p->n < MS_CODEC_PATH_MAX) {
        p->f[p->n].name = name;
        p->f[p->n].index = index;
    }
    p->n++;
}

static inline void ms_codec_path_pop(struct ms_codec_path *p)
{
    p->n--;
}

/* Replaces the top frame (the array element being read, say). */
static inline void ms_codec_path_set(struct ms_codec_path *p, const char *name,
                                     long index)
{
    if (p->n > 0 && p->n <= MS_CODEC_PATH_MAX) {
        p->f[p->n - 1].name = name;
        p->f[p->n - 1].index = index;
    }
}

/* Formats "<path>: <fmt...>" into errmsg (size bytes, NUL-terminated) and
 * returns code. An empty path gives just the message. */
int ms_codec_path_err(const struct ms_codec_path *p, char *errmsg, size_t size,
                      int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif /* MS_CODEC_CODEC_IMPL_H */
