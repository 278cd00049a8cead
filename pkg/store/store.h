/* store.h - the versioned (MVCC) key-value store every node applies Raft
 * entries to, with etcd v3 semantics, over a memory or a rocksdb engine. */
#ifndef MS_STORE_STORE_H
#define MS_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/op.h"
#include "util/arena.h"

struct ms_store;

enum ms_store_backend {
    MS_BACKEND_MEMORY = 1,
    MS_BACKEND_ROCKSDB = 2,
};

/* Parses "memory" / "rocksdb"; returns 0 or MS_EINVAL. */
int ms_store_parse_backend(const char *name, enum ms_store_backend *out);
const char *ms_store_backend_name(enum ms_store_backend b);

/* Limits; a violating op gets MS_ETOOLARGE / MS_ETOOMANYOPS in its result. */
#define MS_STORE_DEFAULT_MAX_KEY (32u * 1024)
#define MS_STORE_DEFAULT_MAX_VALUE (1536u * 1024)
#define MS_STORE_DEFAULT_MAX_TXN_OPS 128 /* etcd's --max-txn-ops */

struct ms_store_options {
    enum ms_store_backend backend;
    const char *path;      /* rocksdb directory (created); unused by memory */
    size_t max_key_size;   /* 0: default */
    size_t max_value_size; /* 0: default */
    size_t max_txn_ops;    /* 0: default */
};

/* Opens a store. rocksdb reopens existing data (state and applied index).
 * Returns 0 and *out, or MS_EIO / MS_ENOMEM / MS_EINVAL with errmsg filled
 * ("rocksdb: open /x: ..."). */
int ms_store_open(const struct ms_store_options *opts, struct ms_store **out,
                  char *errmsg, size_t errmsg_size);

/* Closes and frees. NULL is fine. A view must be closed before its
 * store. */
void ms_store_close(struct ms_store *s);

/* A read-only copy of s as it is at the call (revisions, applied index,
 * every version), for a snapshot serialised on another thread while s goes
 * on applying: reads and ms_store_snapshot_save work on it, from one
 * thread at a time; applies fail. Backed by a RocksDB snapshot (the
 * rocksdb backend); the memory backend has none (MS_ENOTIMPL: fork
 * instead, util/cowdump.h). Call between applies. Returns 0 and *out
 * (close it with ms_store_close, on any thread, before s), or
 * MS_ENOTIMPL / MS_ENOMEM with errmsg. */
int ms_store_view(struct ms_store *s, struct ms_store **out, char *errmsg,
                  size_t errmsg_size);

/* A key-value with its metadata, as etcd's mvccpb.KeyValue. In results its
 * bytes point into the result set's arena. */
struct ms_kv {
    struct ms_bytes key;
    struct ms_bytes value;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease;
};

/* The result of one operation. err is 0 or the per-operation failure
 * (MS_ECOMPACTED, MS_EFUTUREREV, MS_EDUPKEY, MS_EKEYEMPTY, MS_ETOOLARGE,
 * MS_ETOOMANYOPS, MS_ELEASE, MS_ENOTFOUND, ...); revision is the store
 * revision after the op (etcd's response header revision). */
struct ms_result {
    enum ms_op_type type;
    int err;
    int64_t revision;
    union {
        struct {
            bool has_prev;
            struct ms_kv prev_kv;
        } put;
        struct {
            int64_t deleted;
            struct ms_kv *prev_kvs; /* only when prev_kv was asked */
            size_t n_prev_kvs;
        } delete_range;
        struct {
            struct ms_kv *kvs;
            size_t n_kvs;
            bool more;
            int64_t count;
        } range;
        struct {
            bool succeeded;
            struct ms_result *responses; /* one per op of the taken branch */
            size_t n_responses;
        } txn;
        struct {
            int64_t id;
            int64_t ttl;
        } lease_grant;
    } u;
};

/* Results of one apply or read: everything points into arena. */
struct ms_results {
    struct ms_result *r;
    size_t n;
    bool skipped; /* the entry was at or below the applied index */
    struct ms_arena arena;
};

/* Frees a result set and zeroes it. */
void ms_results_free(struct ms_results *rs);

/* Applies one decoded batch as the entry at Raft index `index`: one result
 * per op in out (which the caller zeroes and later frees). When index <=
 * the applied index nothing is applied and out->skipped is set, so a replay
 * never applies an entry twice. Each op that changes something advances
 * the revision by one. Per-op failures are results, not errors: the return
 * value is 0, or MS_EIO / MS_ENOMEM when the engine failed (the store
 * should then be considered unusable; errmsg says why). */
int ms_store_apply(struct ms_store *s, const struct ms_batch *b, uint64_t index,
                   struct ms_results *out, char *errmsg, size_t errmsg_size);

/* While nospace is set (the cluster's NOSPACE alarm is raised), applying
 * an op that may add data (ms_store_op_adds_data) changes nothing and
 * gives MS_ENOSPACE in its result; deletes, compactions, revocations and
 * reads go on. The state machine sets it from its replicated alarm table,
 * so every member refuses the same ops. */
void ms_store_set_nospace(struct ms_store *s, bool nospace);

/* True for a put, a lease grant, and a txn with a put in either branch
 * (nested txns included): etcd's ops of non-zero quota cost. */
bool ms_store_op_adds_data(const struct ms_op *op);

/* Serves a read (MS_OP_RANGE) locally, at once, into out (one result).
 * Returns 0 (the per-op error, e.g. MS_ECOMPACTED, is in out->r[0].err) or
 * MS_EINVAL for an op that is not a range, MS_EIO / MS_ENOMEM. */
int ms_store_read(struct ms_store *s, const struct ms_range *r,
                  struct ms_results *out, char *errmsg, size_t errmsg_size);

/* --- compaction in steps ------------------------------------------------
 *
 * Applying a compaction at C (MS_OP_COMPACT) takes effect at once: reads
 * and change walks below C fail with MS_ECOMPACTED from then on. Removing
 * the versions it made unreachable is left to ms_store_compact_step, which
 * the owner calls between other work until it reports nothing more to do;
 * until then they take memory or disk but are never seen (snapshots leave
 * them out). A store reopened mid-sweep (rocksdb) starts the sweep over. */

/* Looks at up to max_records records of the sweep under way (deleting the
 * unreachable ones) in one engine transaction; *more says whether work is
 * left. Cheap when nothing is pending. Call outside ms_store_apply.
 * Returns 0 or MS_EIO / MS_ENOMEM / MS_ECORRUPT with errmsg (the store
 * should then be considered unusable, as for ms_store_apply). */
int ms_store_compact_step(struct ms_store *s, size_t max_records, bool *more,
                          char *errmsg, size_t errmsg_size);

/* True while a sweep is under way. */
bool ms_store_compact_pending(const struct ms_store *s);

/* True while the engine's background work lags behind the writes (rocksdb:
 * a memtable waits for its flush, or writes are slowed or stopped): a step
 * now could block in its commit and would add to the backlog, so the
 * caller should let the sweep wait. Always false for memory. */
bool ms_store_compact_should_wait(struct ms_store *s);

/* Runs the sweep to its end, in steps (tools and tests). Same returns. */
int ms_store_compact_finish(struct ms_store *s, char *errmsg,
                            size_t errmsg_size);

/* Makes the space of removed versions free again (etcd's defragment):
 * rocksdb compacts all its files (seconds for gigabytes); memory has
 * nothing to do. Blocks: call it on a worker thread; it may run while the
 * store is used on its own thread. Returns 0 or MS_EIO with errmsg. */
int ms_store_defragment(struct ms_store *s, char *errmsg, size_t errmsg_size);

/* Current state (cheap). */
int64_t ms_store_revision(const struct ms_store *s);
int64_t ms_store_compact_revision(const struct ms_store *s);
uint64_t ms_store_applied_index(const struct ms_store *s);
uint64_t ms_store_key_count(const struct ms_store *s); /* live keys */
uint64_t ms_store_bytes(const struct ms_store *s);     /* approx. data bytes */
enum ms_store_backend ms_store_backend(const struct ms_store *s);

/* Lease table reads (for lease expiry and /v3/lease/timetolive|leases).
 * Call them outside ms_store_apply. ms_store_lease_ttl returns 0 and the
 * granted TTL, MS_ELEASE for an unknown lease, or MS_EIO. The walks call
 * fn for every lease (ascending id, compared as unsigned) or for every key
 * attached to lease id (ascending); a non-zero return from fn stops the
 * walk and is returned. The key bytes are borrowed for the call. */
typedef int (*ms_lease_fn)(void *ctx, int64_t id, int64_t ttl);
typedef int (*ms_lease_key_fn)(void *ctx, const uint8_t *key, size_t len);
int ms_store_lease_ttl(struct ms_store *s, int64_t id, int64_t *ttl,
                       char *errmsg, size_t errmsg_size);
int ms_store_lease_list(struct ms_store *s, ms_lease_fn fn, void *ctx,
                        char *errmsg, size_t errmsg_size);
int ms_store_lease_keys(struct ms_store *s, int64_t id, ms_lease_key_fn fn,
                        void *ctx, char *errmsg, size_t errmsg_size);

/* --- change events (watch) --------------------------------------------- */

/* One change to one key: a put (kv is the new version) or a delete (kv
 * holds only key and mod_revision). prev_kv is the version the change
 * replaced, when that one was live (has_prev). Bytes are borrowed. */
struct ms_store_event {
    bool is_delete;
    struct ms_kv kv;
    bool has_prev;
    struct ms_kv prev_kv;
};

/* Receives one event (borrowed for the call). For ms_store_changes a
 * non-zero return stops the walk; the hook's return value is ignored. */
typedef int (*ms_store_event_fn)(void *ctx, const struct ms_store_event *ev);

/* Sets (or, with fn NULL, clears) the hook called for every change
 * ms_store_apply makes, in the order made (revisions ascending), from
 * inside ms_store_apply before the batch is committed. The hook must not
 * call into the store. Not called for snapshot loads. */
void ms_store_set_event_hook(struct ms_store *s, ms_store_event_fn fn,
                             void *ctx);

/* Replays history: calls fn for every change to the keys of [key,
 * range_end) (range_end as in struct ms_range) whose revision is in
 * [from, to] (to is capped at the current revision), ordered by revision,
 * then key, with prev_kv when with_prev and the version before is held.
 * Returns 0, fn's non-zero value, MS_ECOMPACTED when from is below the
 * compact revision (fn never called), or MS_EIO / MS_ENOMEM / MS_ECORRUPT
 * with errmsg. Memory grows with the number of changes in the window:
 * callers bound to - from. Call outside ms_store_apply. */
int ms_store_changes(struct ms_store *s, struct ms_bytes key,
                     struct ms_bytes range_end, int64_t from, int64_t to,
                     bool with_prev, ms_store_event_fn fn, void *ctx,
                     char *errmsg, size_t errmsg_size);

/* Sets the applied index without a batch (for entries that carry no
 * operations, e.g. barriers and configuration changes). Same skip rule. */
int ms_store_set_applied(struct ms_store *s, uint64_t index, char *errmsg,
                         size_t errmsg_size);

/* --- snapshots (format in snapshot.h) ----------------------------------- */

/* Sink and source for streaming snapshots. write returns 0 or an MS_E code;
 * read fills up to n bytes, sets *got (0 at end of stream) and returns 0 or
 * an MS_E code. */
typedef int (*ms_write_fn)(void *ctx, const void *p, size_t n);
typedef int (*ms_read_fn)(void *ctx, void *p, size_t n, size_t *got);

/* Opaque sections other layers keep in a snapshot (the member table). The
 * bytes are borrowed for save; on load they are malloc'd and owned by the
 * caller (free(extra->members)). */
struct ms_snapshot_extra {
    uint8_t *members;
    size_t members_len;
    uint8_t codec; /* codec id the cluster proposes with (informational) */
};

/* Streams the whole state (every retained version, leases, revisions,
 * applied index, extra) to write, ending with a checksum trailer. Returns 0,
 * the writer's error, MS_EIO or MS_ENOMEM. */
int ms_store_snapshot_save(struct ms_store *s,
                           const struct ms_snapshot_extra *extra,
                           ms_write_fn write, void *ctx, char *errmsg,
                           size_t errmsg_size);

/* Replaces the whole state with the snapshot read from read. The snapshot
 * is verified as it is read; on MS_ECORRUPT / MS_ECHECKSUM / MS_ETRUNCATED
 * / MS_EVERSION errmsg names the byte offset and what was wrong, and the
 * store is left empty (never a mix of old and new state): revision 1, no
 * keys, no leases, applied index 0. The old state is cleared before the
 * load starts; a process that dies during a load leaves part of the new
 * state with applied index 0, to be loaded again. */
int ms_store_snapshot_load(struct ms_store *s, ms_read_fn read, void *ctx,
                           struct ms_snapshot_extra *extra, char *errmsg,
                           size_t errmsg_size);

#endif /* MS_STORE_STORE_H */
