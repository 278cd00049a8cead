/* fuzz_codec.h - the check both codec fuzz targets run: decode the input
 * as a payload of one codec; whatever decodes must re-encode to a payload
 * that decodes to the same batch, in both codecs, and re-encode stably. */
#ifndef MS_FUZZ_CODEC_H
#define MS_FUZZ_CODEC_H

#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "util/error.h"

static void fuzz_reencode(const struct ms_batch *b, enum ms_codec_id codec)
{
    struct ms_buf once = MS_BUF_INIT, twice = MS_BUF_INIT;
    struct ms_batch again;
    char err[MS_ERRMSG_SIZE];

    memset(&again, 0, sizeof(again));
    if (ms_codec_encode_batch(codec, b, &once) != 0)
        abort();
    if (ms_codec_decode_batch(once.data, once.len, &again, err, sizeof(err)) !=
        0)
        abort();
    if (!ms_batch_equal(b, &again))
        abort();
    if (ms_codec_encode_batch(codec, &again, &twice) != 0)
        abort();
    if (once.len != twice.len || memcmp(once.data, twice.data, once.len) != 0)
        abort();
    ms_batch_free(&again);
    ms_buf_free(&once);
    ms_buf_free(&twice);
}

static int fuzz_codec(const uint8_t *data, size_t size, enum ms_codec_id codec)
{
    uint8_t *p = malloc(size + MS_CODEC_HEADER_SIZE);
    struct ms_batch b;
    char err[MS_ERRMSG_SIZE];
    int rc;

    if (p == NULL)
        return 0;
    p[0] = MS_CODEC_FORMAT_VERSION;
    p[1] = (uint8_t)codec;
    if (size > 0)
        memcpy(p + MS_CODEC_HEADER_SIZE, data, size);
    memset(&b, 0, sizeof(b));
    rc = ms_codec_decode_batch(p, size + MS_CODEC_HEADER_SIZE, &b, err,
                               sizeof(err));
    if (rc == 0) {
        fuzz_reencode(&b, MS_CODEC_PROTOBUF);
        fuzz_reencode(&b, MS_CODEC_JSON);
        ms_batch_free(&b);
    } else if (b.ops != NULL || b.n_ops != 0 || b.arena.head != NULL ||
               err[0] == '\0') {
        abort(); /* a failure must leave the batch empty and say why */
    }
    free(p);
    return 0;
}

#endif /* MS_FUZZ_CODEC_H */
