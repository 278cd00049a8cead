/* fuzz_snapshot.c - libFuzzer target: arbitrary bytes as a snapshot file
 * (verified as `metastore-snapshot verify` does, then loaded into a memory
 * store as a restoring member does) and as a member table. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fsm/members.h"
#include "store/snapshot.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct reader {
    const uint8_t *p;
    size_t left;
};

static int mem_read(void *ctx, void *p, size_t n, size_t *got)
{
    struct reader *r = ctx;
    size_t k = n < r->left ? n : r->left;
    memcpy(p, r->p, k);
    r->p += k;
    r->left -= k;
    *got = k;
    return 0;
}

static struct ms_store *store;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct reader r = {data, size};
    struct ms_snapshot_info info;
    struct ms_snapshot_extra extra = {0};
    struct ms_members *t;
    int verified;

    if (store == NULL) {
        struct ms_store_options o = {.backend = MS_BACKEND_MEMORY};
        if (ms_store_open(&o, &store, NULL, 0) != 0)
            abort();
    }
    verified = ms_snapshot_verify(mem_read, &r, &info, NULL, 0) == 0;
    r = (struct reader){data, size};
    if ((ms_store_snapshot_load(store, mem_read, &r, &extra, NULL, 0) == 0) !=
        verified)
        abort(); /* the loader and the verifier must agree */
    free(extra.members);

    t = malloc(sizeof(*t));
    if (t != NULL) {
        memset(t, 0, sizeof(*t));
        ms_members_decode(t, data, size);
        free(t);
    }
    return 0;
}
