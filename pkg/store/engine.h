/* engine.h - the ordered byte-string map the MVCC layer (store.c) runs on;
 * one implementation per backend (engine_memory.c, engine_rocksdb.c). */
#ifndef MS_STORE_ENGINE_H
#define MS_STORE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Keys are ordered by memcmp, shorter first on a common prefix.
 *
 * Writes happen inside a write transaction (begin .. commit). Reads made
 * between begin and commit see the transaction's own writes (read your
 * writes), and so do iterators created in it. commit makes the writes and
 * the given applied index durable together (rocksdb: one WriteBatch
 * including the applied-index record; memory: writes are already in place,
 * commit only records the index). There is no rollback: the MVCC layer
 * validates an operation completely before it writes.
 *
 * Every function returning int returns 0 or an MS_E code, and on failure
 * fills e->errmsg. Pointers returned by get/iter_key/iter_value are
 * borrowed and valid until the next call on the engine or iterator. */
struct ms_engine;
struct ms_engine_iter;

struct ms_engine_ops {
    /* *found = false when absent. */
    int (*get)(struct ms_engine *e, const uint8_t *k, size_t kn,
               const uint8_t **v, size_t *vn, bool *found);
    int (*begin)(struct ms_engine *e);
    int (*put)(struct ms_engine *e, const uint8_t *k, size_t kn,
               const uint8_t *v, size_t vn);
    int (*del)(struct ms_engine *e, const uint8_t *k, size_t kn);
    int (*commit)(struct ms_engine *e, uint64_t applied_index);
    /* Last committed applied index (0 for a new engine). */
    uint64_t (*applied_index)(struct ms_engine *e);
    /* Removes every key (for snapshot load); durable on return. */
    int (*clear)(struct ms_engine *e);

    /* Iterators: create, position with seek (first key >= k), then walk.
     * An iterator must be freed before the next begin/commit. */
    int (*iter_new)(struct ms_engine *e, struct ms_engine_iter **out);
    void (*iter_seek)(struct ms_engine_iter *it, const uint8_t *k, size_t kn);
    void (*iter_seek_for_prev)(struct ms_engine_iter *it, const uint8_t *k,
                               size_t kn); /* last key <= k */
    bool (*iter_valid)(struct ms_engine_iter *it);
    void (*iter_next)(struct ms_engine_iter *it);
    void (*iter_prev)(struct ms_engine_iter *it);
    const uint8_t *(*iter_key)(struct ms_engine_iter *it, size_t *kn);
    const uint8_t *(*iter_value)(struct ms_engine_iter *it, size_t *vn);
    void (*iter_free)(struct ms_engine_iter *it);

    /* Approximate size: memory, the bytes of keys and values held;
     * rocksdb, its live table files on disk plus its memtables. */
    uint64_t (*bytes)(struct ms_engine *e);
    void (*close)(struct ms_engine *e);

    /* Optional (NULL: not supported). A read-only engine showing the state
     * committed at the call, applied index included, whatever e commits
     * later. It may be used from another thread (one at a time) while e
     * goes on; its writes fail with MS_EINVAL; close releases it, before e
     * is closed. Call outside a transaction. */
    int (*view)(struct ms_engine *e, struct ms_engine **out);

    /* Optional (NULL: nothing to reclaim). Rewrites the storage so that
     * deleted and overwritten data stops taking space; blocks for as long
     * as that takes. It may run on another thread while e is used on its
     * own. */
    int (*defragment)(struct ms_engine *e);

    /* Optional (NULL: never busy). True while the engine's own background
     * work lags behind the writes (rocksdb: a full memtable waits for its
     * flush, or writes are being slowed or stopped), so that a write now
     * could block the caller. Work that can wait (the compaction sweep)
     * waits. Cheap: no I/O. */
    bool (*busy)(struct ms_engine *e);
};

/* Common head of every engine object. */
struct ms_engine {
    const struct ms_engine_ops *ops;
    char errmsg[256];
};

/* Constructors. Return 0 and *out, or an MS_E code with errmsg filled. */
int ms_engine_memory_open(struct ms_engine **out, char *errmsg,
                          size_t errmsg_size);
int ms_engine_rocksdb_open(const char *path, struct ms_engine **out,
                           char *errmsg, size_t errmsg_size);

#endif /* MS_STORE_ENGINE_H */
