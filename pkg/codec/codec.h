/* codec.h - encoding batches of operations into Raft entry payloads and back,
 * with a JSON and a protobuf codec behind one interface. */
#ifndef MS_CODEC_CODEC_H
#define MS_CODEC_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "codec/op.h"
#include "util/buf.h"

/* Entry payload layout: byte 0 = format version (MS_CODEC_FORMAT_VERSION),
 * byte 1 = codec id, then the codec's bytes for one Batch message. */
#define MS_CODEC_FORMAT_VERSION 1
#define MS_CODEC_HEADER_SIZE 2

enum ms_codec_id {
    MS_CODEC_PROTOBUF = 1,
    MS_CODEC_JSON = 2,
};

/* Limits the decoders enforce (MS_ETOOLARGE beyond them). */
#define MS_CODEC_MAX_OPS (1u << 20)        /* ops in one batch */
#define MS_CODEC_MAX_TXN_DEPTH 8           /* nested txn depth */
#define MS_CODEC_MAX_PAYLOAD (64u << 20)   /* bytes of one entry payload */

/* Parses "protobuf" / "json"; returns 0 or MS_EINVAL. */
int ms_codec_parse(const char *name, enum ms_codec_id *out);

/* Static name ("protobuf", "json"), or "unknown". */
const char *ms_codec_name(enum ms_codec_id id);

/* Incremental batch encoding: the batch proposer appends each operation
 * once, as it arrives, straight into the entry buffer (no later copy).
 *
 *   struct ms_batch_writer w;
 *   ms_batch_writer_init(&w, MS_CODEC_PROTOBUF, &buf);   writes the header
 *   ms_batch_writer_add(&w, &op);   ... once per op
 *   ms_batch_writer_finish(&w);     closes the batch; buf holds the payload
 *
 * buf is borrowed for the writer's life; the writer appends to whatever buf
 * holds (normally empty). On any error the contents of buf are unspecified
 * and the writer must not be used again. */
struct ms_batch_writer {
    enum ms_codec_id codec;
    struct ms_buf *buf;
    size_t n_ops;
    size_t start; /* offset of the header in buf */
};

/* Returns 0, MS_ECODEC (unknown codec) or MS_ENOMEM. */
int ms_batch_writer_init(struct ms_batch_writer *w, enum ms_codec_id codec,
                         struct ms_buf *buf);
/* Returns 0, MS_EINVAL (op not encodable: bad type/enum, txn too deep) or
 * MS_ENOMEM. */
int ms_batch_writer_add(struct ms_batch_writer *w, const struct ms_op *op);
/* Returns 0 or MS_ENOMEM. */
int ms_batch_writer_finish(struct ms_batch_writer *w);

/* Encodes a whole batch (header included) by appending to out.
 * Returns 0 or an error as the writer functions. */
int ms_codec_encode_batch(enum ms_codec_id codec, const struct ms_batch *b,
                          struct ms_buf *out);

/* Decodes an entry payload into out (zeroed by the caller). Strict: unknown
 * version (MS_EVERSION) or codec (MS_ECODEC), truncation (MS_ETRUNCATED),
 * trailing garbage (MS_ETRAILING), wrong JSON types or bad protobuf
 * (MS_EMALFORMED), invalid base64 (MS_EBASE64), sizes beyond the limits
 * above (MS_ETOOLARGE). On success out owns its memory (ms_batch_free); on
 * failure out is left empty and errmsg (may be NULL) says what was wrong
 * and where. Never returns a partial result. */
int ms_codec_decode_batch(const uint8_t *data, size_t len,
                          struct ms_batch *out, char *errmsg,
                          size_t errmsg_size);

/* Reads the header only: returns 0 and sets *codec, or MS_ETRUNCATED /
 * MS_EVERSION / MS_ECODEC. */
int ms_codec_peek(const uint8_t *data, size_t len, enum ms_codec_id *codec);

#endif /* MS_CODEC_CODEC_H */
