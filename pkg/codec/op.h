/* op.h - the operation model: what the state machine applies, after etcd's
 * v3 KV, lease and maintenance requests. */
#ifndef MS_CODEC_OP_H
#define MS_CODEC_OP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/arena.h"

/* A byte string. Borrowed: the owner is stated where the struct is used
 * (for decoded batches, the batch's arena). data may be NULL when len is 0. */
struct ms_bytes {
    const uint8_t *data;
    size_t len;
};

enum ms_op_type {
    MS_OP_PUT = 1,
    MS_OP_DELETE_RANGE = 2,
    MS_OP_RANGE = 3,
    MS_OP_TXN = 4,
    MS_OP_COMPACT = 5,
    MS_OP_LEASE_GRANT = 6,
    MS_OP_LEASE_REVOKE = 7,
};

struct ms_put {
    struct ms_bytes key;
    struct ms_bytes value;
    int64_t lease;     /* 0: no lease */
    bool prev_kv;      /* return the previous key-value */
    bool ignore_value; /* keep the current value (etcd ignore_value) */
    bool ignore_lease; /* keep the current lease (etcd ignore_lease) */
};

/* range_end semantics as etcd: empty = the single key; "\0" = every key
 * >= key; otherwise [key, range_end). */
struct ms_delete_range {
    struct ms_bytes key;
    struct ms_bytes range_end;
    bool prev_kv;
};

enum ms_sort_order { MS_SORT_NONE = 0, MS_SORT_ASCEND = 1, MS_SORT_DESCEND = 2 };
enum ms_sort_target {
    MS_SORT_KEY = 0,
    MS_SORT_VERSION = 1,
    MS_SORT_CREATE = 2,
    MS_SORT_MOD = 3,
    MS_SORT_VALUE = 4,
};

struct ms_range {
    struct ms_bytes key;
    struct ms_bytes range_end;
    int64_t limit;    /* 0: no limit */
    int64_t revision; /* <= 0: current revision */
    enum ms_sort_order sort_order;
    enum ms_sort_target sort_target;
    bool serializable;
    bool keys_only;
    bool count_only;
    int64_t min_mod_revision; /* 0: no filter (the four filters as etcd) */
    int64_t max_mod_revision;
    int64_t min_create_revision;
    int64_t max_create_revision;
};

enum ms_compare_result {
    MS_CMP_EQUAL = 0,
    MS_CMP_GREATER = 1,
    MS_CMP_LESS = 2,
    MS_CMP_NOT_EQUAL = 3,
};

enum ms_compare_target {
    MS_CMP_VERSION = 0,
    MS_CMP_CREATE = 1,
    MS_CMP_MOD = 2,
    MS_CMP_VALUE = 3,
    MS_CMP_LEASE = 4,
};

struct ms_compare {
    enum ms_compare_result result;
    enum ms_compare_target target;
    struct ms_bytes key;
    struct ms_bytes range_end; /* compare every key in the range (etcd 3.3+) */
    int64_t number;            /* version, create/mod revision or lease */
    struct ms_bytes value;     /* for MS_CMP_VALUE */
};

struct ms_op;

struct ms_txn {
    struct ms_compare *compare;
    size_t n_compare;
    struct ms_op *success; /* ops of type PUT, DELETE_RANGE, RANGE, TXN */
    size_t n_success;
    struct ms_op *failure;
    size_t n_failure;
};

struct ms_compact {
    int64_t revision;
    bool physical;
};

struct ms_lease_grant {
    int64_t id; /* chosen by the proposer; never 0 once proposed */
    int64_t ttl; /* seconds */
};

struct ms_lease_revoke {
    int64_t id;
};

/* One operation. node_id and request_id route the result back to the
 * waiting request on the proposing node; they are 0 inside a txn. */
struct ms_op {
    enum ms_op_type type;
    uint64_t node_id;
    uint64_t request_id;
    union {
        struct ms_put put;
        struct ms_delete_range delete_range;
        struct ms_range range;
        struct ms_txn txn;
        struct ms_compact compact;
        struct ms_lease_grant lease_grant;
        struct ms_lease_revoke lease_revoke;
    } u;
};

/* A batch: the content of one Raft entry. When produced by a decoder, every
 * pointer in ops (and below) points into arena, which the batch owns;
 * ms_batch_free releases it. When built by a caller, the caller owns ops and
 * its bytes and must not call ms_batch_free unless it used the arena. */
struct ms_batch {
    struct ms_op *ops;
    size_t n_ops;
    struct ms_arena arena;
};

/* Frees everything the batch's arena holds and zeroes the batch. */
void ms_batch_free(struct ms_batch *b);

/* Returns true when a and b hold the same operations, field by field and
 * byte by byte (nested txns included). */
bool ms_op_equal(const struct ms_op *a, const struct ms_op *b);
bool ms_batch_equal(const struct ms_batch *a, const struct ms_batch *b);

/* Static name of an op type ("put", "delete_range", ...); "unknown" else. */
const char *ms_op_type_name(enum ms_op_type t);

#endif /* MS_CODEC_OP_H */
