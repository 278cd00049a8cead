/* fuzz_gateway.c - libFuzzer target: arbitrary bytes as an etcd gateway
 * request body (first byte picks the endpoint); a parsed request must
 * encode as an operation. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "api/gateway.h"
#include "codec/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ms_arena arena = {0};
    struct ms_gw_error err;
    struct ms_op op = {0};
    enum ms_gw_endpoint ep;

    if (size < 1)
        return 0;
    ep = (enum ms_gw_endpoint)(data[0] % 7 + 1);
    if (ms_gw_parse(ep, (const char *)data + 1, size - 1, 0, &arena, &op,
                    &err) == 0) {
        struct ms_buf b = MS_BUF_INIT;
        struct ms_batch batch = {.ops = &op, .n_ops = 1};
        /* what the server does next: encode it into a Raft entry */
        if (ms_codec_encode_batch(MS_CODEC_PROTOBUF, &batch, &b) == 0) {
            struct ms_batch back = {0};
            if (ms_codec_decode_batch(b.data, b.len, &back, NULL, 0) != 0)
                abort();
            if (!ms_batch_equal(&batch, &back))
                abort();
            ms_batch_free(&back);
        }
        ms_buf_free(&b);
    } else if (err.http_status < 400 || err.http_status > 599) {
        abort(); /* every rejection carries an error status */
    }
    ms_arena_free(&arena);
    return 0;
}
