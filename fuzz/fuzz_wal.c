/* fuzz_wal.c - libFuzzer target: arbitrary bytes as C-Raft on-disk files
 * (a segment, a metadata file, a snapshot .meta, a configuration), as
 * metastore-walinspect reads them. */
#include <stddef.h>
#include <stdint.h>

#include "codec/codec.h"
#include "raft/node.h"
#include "raft/wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_entry(void *arg, const struct ms_wal_entry *e)
{
    size_t n;
    (void)arg;
    /* command entries: unframe and decode as the inspector does */
    if (ms_raft_unframe(e->data, e->len, &n) == 0) {
        struct ms_batch b = {0};
        if (ms_codec_decode_batch(e->data, n, &b, NULL, 0) == 0)
            ms_batch_free(&b);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ms_wal_segment_result res;
    struct ms_wal_metadata md;
    struct ms_wal_snapshot_meta sm;
    struct ms_wal_config cfg;

    if (size < 1)
        return 0;
    switch (data[0] % 5) {
    case 0:
    case 1:
        ms_wal_segment_scan(data + 1, size - 1, data[0] % 5 == 1, on_entry,
                            NULL, &res);
        break;
    case 2:
        ms_wal_metadata_parse(data + 1, size - 1, &md, NULL, 0);
        break;
    case 3:
        sm = (struct ms_wal_snapshot_meta){0};
        if (ms_wal_snapshot_meta_parse(data + 1, size - 1, &sm, NULL, 0) == 0)
            ms_wal_config_free(&sm.conf);
        break;
    default:
        cfg = (struct ms_wal_config){0};
        if (ms_wal_config_decode(data + 1, size - 1, &cfg, NULL, 0) == 0)
            ms_wal_config_free(&cfg);
        break;
    }
    return 0;
}
