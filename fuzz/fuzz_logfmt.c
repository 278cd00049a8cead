/* fuzz_logfmt.c - libFuzzer target: arbitrary bytes as files of metastore's
 * raft format (logfmt.h): a segment through the scanner walinspect uses,
 * a meta file, a snapshot header, a configuration, a record stream
 * through ms_logfmt_rec_next directly, and a segment built from the bytes
 * with valid checksums (which random bytes hardly ever have), so that the
 * index and term checks and the payload decoders are reached. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "raft/logfmt.h"
#include "raft/node.h"
#include "raft/wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_entry(void *arg, const struct ms_wal_entry *e)
{
    struct ms_wal_config c = {0};
    size_t n;

    (void)arg;
    /* as the inspector does: commands unframed and decoded, configuration
     * entries in C-Raft's encoding */
    if (e->type == MS_WAL_CHANGE) {
        if (ms_wal_config_decode(e->data, e->len, &c, NULL, 0) == 0)
            ms_wal_config_free(&c);
    } else if (ms_raft_unframe(e->data, e->len, &n) == 0) {
        struct ms_batch b = {0};
        if (ms_codec_decode_batch(e->data, n, &b, NULL, 0) == 0)
            ms_batch_free(&b);
    }
    return 0;
}

/* Every record of buf, checked against what the decoder promises. */
static void records(const uint8_t *buf, size_t size)
{
    struct ms_logfmt_rec r;
    char why[128];
    size_t off = 0;

    for (;;) {
        size_t before = off;
        int rc = ms_logfmt_rec_next(buf, size, &off, &r, why, sizeof why);

        if (rc != MS_LOGFMT_REC) {
            if (off != before)
                __builtin_trap();
            return;
        }
        if (r.offset != before || off != before + r.size || off > size ||
            r.size != ms_logfmt_rec_size(r.len) || r.type < 1 || r.type > 3)
            __builtin_trap();
    }
}

static void config(const uint8_t *buf, size_t size)
{
    struct ms_wal_config c;
    struct ms_logfmt_server s;
    unsigned count;
    size_t off = 4;

    if (ms_logfmt_conf_check(buf, size, &count, NULL, 0) == 0) {
        for (unsigned i = 0; i < count; i++)
            ms_logfmt_conf_server(buf, &off, &s);
        if (off != size)
            __builtin_trap();
    }
    if (ms_wal_logfmt_config_decode(buf, size, &c, NULL, 0) == 0)
        ms_wal_config_free(&c);
}

/* Builds a segment from buf: byte 0 the first index, then records of
 * (u8 type, u8 term, u8 index skip, u8 length, payload), checksummed, and
 * scans it. */
static void built(const uint8_t *buf, size_t size)
{
    struct ms_wal_segment_result res;
    /* each record: 4 + len bytes of buf, at most 32 + len + 7 bytes */
    uint8_t *seg = malloc(MS_LOGFMT_SEG_HEADER_SIZE + 16 * size + 64);
    size_t off = MS_LOGFMT_SEG_HEADER_SIZE, i = 1;
    uint64_t index;

    if (seg == NULL || size < 1) {
        free(seg);
        return;
    }
    index = buf[0] + 1;
    ms_logfmt_seg_header_encode(seg, 1, index);
    while (i + 4 <= size) {
        uint8_t type = buf[i], term = buf[i + 1], skip = buf[i + 2];
        size_t len = buf[i + 3];

        i += 4;
        if (len > size - i)
            len = size - i;
        ms_logfmt_rec_encode(seg + off, index, term, type, buf + i,
                             (uint32_t)len);
        off += ms_logfmt_rec_size(len);
        i += len;
        index += 1 + (skip == 0xff);
    }
    memset(seg + off, 0, 32);
    ms_wal_logfmt_segment_scan(seg, off + 32, on_entry, NULL, &res);
    free(seg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ms_wal_segment_result res;
    struct ms_logfmt_meta m;
    struct ms_logfmt_snap s;
    uint64_t seq, first;

    if (size < 1)
        return 0;
    switch (data[0] % 6) {
    case 0:
        ms_wal_logfmt_segment_scan(data + 1, size - 1, on_entry, NULL, &res);
        if (res.end > size - 1)
            __builtin_trap();
        break;
    case 1:
        records(data + 1, size - 1);
        break;
    case 2:
        ms_logfmt_meta_decode(data + 1, size - 1, &m, NULL, 0);
        ms_logfmt_seg_header_decode(data + 1, size - 1, &seq, &first, NULL, 0);
        break;
    case 3:
        /* a snapshot file: header, then its configuration */
        if (ms_logfmt_snap_header_decode(data + 1, size - 1, &s, NULL, 0) ==
                0 &&
            size - 1 - MS_LOGFMT_SNAP_HEADER_SIZE >= s.conf_len)
            config(data + 1 + MS_LOGFMT_SNAP_HEADER_SIZE, (size_t)s.conf_len);
        break;
    case 4:
        config(data + 1, size - 1);
        break;
    default:
        built(data + 1, size - 1);
        break;
    }
    return 0;
}
