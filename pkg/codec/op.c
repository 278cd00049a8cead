/* op.c - equality, naming and freeing of operations and batches. */
#include "codec/op.h"

#include <string.h>

void ms_batch_free(struct ms_batch *b)
{
    ms_arena_free(&b->arena);
    memset(b, 0, sizeof(*b));
}

static bool bytes_equal(struct ms_bytes a, struct ms_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

/* A compare carries its operand in number or value depending on target;
 * only the member the target selects is compared (the codecs carry only
 * that one). */
static bool compare_equal(const struct ms_compare *a,
                          const struct ms_compare *b)
{
    if (a->result != b->result || a->target != b->target ||
        !bytes_equal(a->key, b->key) ||
        !bytes_equal(a->range_end, b->range_end))
        return false;
    if (a->target == MS_CMP_VALUE)
        return bytes_equal(a->value, b->value);
    return a->number == b->number;
}

static bool ops_equal(const struct ms_op *a, size_t na, const struct ms_op *b,
                      size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        if (!ms_op_equal(&a[i], &b[i]))
            return false;
    }
    return true;
}

static bool txn_equal(const struct ms_txn *a, const struct ms_txn *b)
{
    if (a->n_compare != b->n_compare)
        return false;
    for (size_t i = 0; i < a->n_compare; i++) {
        if (!compare_equal(&a->compare[i], &b->compare[i]))
            return false;
    }
    return ops_equal(a->success, a->n_success, b->success, b->n_success) &&
           ops_equal(a->failure, a->n_failure, b->failure, b->n_failure);
}

static bool range_equal(const struct ms_range *a, const struct ms_range *b)
{
    return bytes_equal(a->key, b->key) &&
           bytes_equal(a->range_end, b->range_end) && a->limit == b->limit &&
           a->revision == b->revision && a->sort_order == b->sort_order &&
           a->sort_target == b->sort_target &&
           a->serializable == b->serializable && a->keys_only == b->keys_only &&
           a->count_only == b->count_only &&
           a->min_mod_revision == b->min_mod_revision &&
           a->max_mod_revision == b->max_mod_revision &&
           a->min_create_revision == b->min_create_revision &&
           a->max_create_revision == b->max_create_revision;
}

bool ms_op_equal(const struct ms_op *a, const struct ms_op *b)
{
    if (a->type != b->type || a->node_id != b->node_id ||
        a->request_id != b->request_id)
        return false;
    switch (a->type) {
    case MS_OP_PUT:
        return bytes_equal(a->u.put.key, b->u.put.key) &&
               bytes_equal(a->u.put.value, b->u.put.value) &&
               a->u.put.lease == b->u.put.lease &&
               a->u.put.prev_kv == b->u.put.prev_kv &&
               a->u.put.ignore_value == b->u.put.ignore_value &&
               a->u.put.ignore_lease == b->u.put.ignore_lease;
    case MS_OP_DELETE_RANGE:
        return bytes_equal(a->u.delete_range.key, b->u.delete_range.key) &&
               bytes_equal(a->u.delete_range.range_end,
                           b->u.delete_range.range_end) &&
               a->u.delete_range.prev_kv == b->u.delete_range.prev_kv;
    case MS_OP_RANGE:
        return range_equal(&a->u.range, &b->u.range);
    case MS_OP_TXN:
        return txn_equal(&a->u.txn, &b->u.txn);
    case MS_OP_COMPACT:
        return a->u.compact.revision == b->u.compact.revision &&
               a->u.compact.physical == b->u.compact.physical;
    case MS_OP_LEASE_GRANT:
        return a->u.lease_grant.id == b->u.lease_grant.id &&
               a->u.lease_grant.ttl == b->u.lease_grant.ttl;
    case MS_OP_LEASE_REVOKE:
        return a->u.lease_revoke.id == b->u.lease_revoke.id;
    }
    return false; /* unknown types are never equal, not even to themselves */
}

bool ms_batch_equal(const struct ms_batch *a, const struct ms_batch *b)
{
    return ops_equal(a->ops, a->n_ops, b->ops, b->n_ops);
}

const char *ms_op_type_name(enum ms_op_type t)
{
    switch (t) {
    case MS_OP_PUT:
        return "put";
    case MS_OP_DELETE_RANGE:
        return "delete_range";
    case MS_OP_RANGE:
        return "range";
    case MS_OP_TXN:
        return "txn";
    case MS_OP_COMPACT:
        return "compact";
    case MS_OP_LEASE_GRANT:
        return "lease_grant";
    case MS_OP_LEASE_REVOKE:
        return "lease_revoke";
    }
    return "unknown";
}
