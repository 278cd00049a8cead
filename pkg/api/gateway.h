/* gateway.h - the etcd v3 JSON gateway translation: request bodies to
 * operations, store results to response bodies, errors to etcd's shape. */
#ifndef MS_API_GATEWAY_H
#define MS_API_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/op.h"
#include "store/store.h"
#include "util/arena.h"
#include "util/buf.h"

/* This layer does no I/O: it turns what etcd 3.4's grpc-gateway accepts
 * into struct ms_op, and struct ms_result into the JSON etcd answers with,
 * byte for byte where etcd is deterministic (field names and order, proto3
 * zero omission, int64 as strings, bytes as base64, Go's string escaping). */

/* The unary /v3 endpoints this layer parses. */
enum ms_gw_endpoint {
    MS_GW_PUT = 1,          /* /v3/kv/put */
    MS_GW_RANGE = 2,        /* /v3/kv/range */
    MS_GW_DELETE_RANGE = 3, /* /v3/kv/deleterange */
    MS_GW_TXN = 4,          /* /v3/kv/txn */
    MS_GW_COMPACTION = 5,   /* /v3/kv/compaction */
    MS_GW_LEASE_GRANT = 6,  /* /v3/lease/grant, /v3/kv/lease/grant */
    MS_GW_LEASE_REVOKE = 7, /* /v3/lease/revoke, /v3/kv/lease/revoke */
};

/* gRPC status codes, as the gateway reports them in "code". */
enum {
    MS_GRPC_OK = 0,
    MS_GRPC_CANCELED = 1,
    MS_GRPC_UNKNOWN = 2,
    MS_GRPC_INVALID_ARGUMENT = 3,
    MS_GRPC_DEADLINE_EXCEEDED = 4,
    MS_GRPC_NOT_FOUND = 5,
    MS_GRPC_ALREADY_EXISTS = 6,
    MS_GRPC_PERMISSION_DENIED = 7,
    MS_GRPC_RESOURCE_EXHAUSTED = 8,
    MS_GRPC_FAILED_PRECONDITION = 9,
    MS_GRPC_ABORTED = 10,
    MS_GRPC_OUT_OF_RANGE = 11,
    MS_GRPC_UNIMPLEMENTED = 12,
    MS_GRPC_INTERNAL = 13,
    MS_GRPC_UNAVAILABLE = 14,
    MS_GRPC_DATA_LOSS = 15,
    MS_GRPC_UNAUTHENTICATED = 16,
};

/* etcd's limits that the gateway layer checks. */
#define MS_GW_DEFAULT_MAX_TXN_OPS 128    /* etcd --max-txn-ops */
#define MS_GW_MAX_LEASE_TTL 9000000000LL /* etcd lease.MaxLeaseTTL */

/* An error as the gateway reports it: HTTP status, gRPC code, and the text
 * that goes into both "error" and "message". */
struct ms_gw_error {
    int http_status;
    int grpc_code;
    char message[256];
};

/* The identity part of every response header. Fields that are 0 are
 * omitted from the JSON (proto3), e.g. revision in a member list. */
struct ms_gw_header {
    uint64_t cluster_id;
    uint64_t member_id;
    int64_t revision;
    uint64_t raft_term;
};

/* --- requests ------------------------------------------------------------ */

/* Maps a request path ("/v3/kv/put", the /v3/kv/lease/ aliases too) to an
 * endpoint. Returns 0 and *out, or MS_ENOTFOUND for any other path. */
int ms_gw_endpoint_from_path(const char *path, size_t len,
                             enum ms_gw_endpoint *out);

/* Static canonical path of an endpoint ("/v3/kv/put"), or "unknown". */
const char *ms_gw_endpoint_path(enum ms_gw_endpoint ep);

/* Parses the JSON body[0..len) of a request to endpoint ep into *out, as
 * etcd 3.4's gateway decodes it (Go jsonpb): int64 as strings or numbers,
 * enums as names or numbers, snake_case or camelCase names (camelCase wins
 * when both appear), the last of repeated keys wins, unknown fields and
 * bytes after the first JSON value ignored, an empty body or null is an
 * empty message; then runs the checks etcd's API layer makes before Raft
 * (key not provided, value/lease provided with ignore_*, too many txn
 * operations with max_txn_ops (0: 128), lease TTL too large).
 * Every pointer in *out (arrays, decoded bytes) points into arena, which
 * the caller owns and frees; body is only borrowed during the call.
 * out->node_id and request_id are 0; a lease grant without ID has id 0
 * (the caller picks one). Duplicate keys in a txn are left to the store.
 * Returns 0, or fills *err (status, gRPC code, etcd's message) and returns
 * MS_EMALFORMED (bad JSON or wrong type), MS_EBASE64, MS_EKEYEMPTY,
 * MS_EINVAL, MS_ETOOMANYOPS, MS_ETOOLARGE (txn nested deeper than
 * MS_CODEC_MAX_TXN_DEPTH), MS_ENOMEM; *out is then unspecified and the
 * arena may hold partial allocations. */
int ms_gw_parse(enum ms_gw_endpoint ep, const char *body, size_t len,
                size_t max_txn_ops, struct ms_arena *arena, struct ms_op *out,
                struct ms_gw_error *err);

/* The checks of ms_gw_parse after decoding, on an operation any front end
 * decoded (the gRPC one): key not provided, value/lease provided with
 * ignore_*, too many txn operations (max_txn_ops 0: 128), lease TTL too
 * large. Returns 0, or MS_EKEYEMPTY / MS_EINVAL / MS_ETOOMANYOPS with *err
 * filled. op is borrowed. */
int ms_gw_check_op(const struct ms_op *op, size_t max_txn_ops,
                   struct ms_gw_error *err);

/* --- responses ----------------------------------------------------------- */

/* Appends the response body for a successful result r (r->err == 0) of
 * type put, range, delete_range, txn, compact, lease grant or lease revoke:
 * {"header":H,...} with H from hdr (hdr->revision as given; headers inside
 * a txn carry only their result's revision, a nested txn's header is {}).
 * Returns 0, MS_EINVAL (r->err set or unknown type; out unchanged) or
 * MS_ENOMEM (out holds a partial body). r and hdr are borrowed. */
int ms_gw_write_result(struct ms_buf *out, const struct ms_gw_header *hdr,
                       const struct ms_result *r);

/* Appends a key-value object ({"key":..,"create_revision":..}) to out.
 * Returns 0 or MS_ENOMEM. For the watch and other writers. */
int ms_gw_write_kv(struct ms_buf *out, const struct ms_kv *kv);

/* Appends a header object {"cluster_id":..,...} (zero fields omitted).
 * Returns 0 or MS_ENOMEM. */
int ms_gw_write_header(struct ms_buf *out, const struct ms_gw_header *hdr);

/* Appends s[0..n) as a JSON string literal, escaped as Go's encoding/json
 * does (\u003c for <, \ufffd for invalid UTF-8, ...). Returns 0 or
 * MS_ENOMEM. */
int ms_gw_write_string(struct ms_buf *out, const char *s, size_t n);

/* What /v3/maintenance/status reports besides the header. Strings are
 * borrowed; errors may be NULL when n_errors is 0. */
struct ms_gw_status {
    const char *version; /* "3.4.23"-style server version */
    int64_t db_size;
    uint64_t leader;
    uint64_t raft_index;
    uint64_t raft_term;
    uint64_t raft_applied_index;
    const char *const *errors;
    size_t n_errors;
    int64_t db_size_in_use;
    bool is_learner;
};

/* Appends the /v3/maintenance/status response body. Returns 0 or
 * MS_ENOMEM. */
int ms_gw_write_status(struct ms_buf *out, const struct ms_gw_header *hdr,
                       const struct ms_gw_status *st);

/* One member of /v3/cluster/member/list (strings borrowed; name NULL or
 * "" for a member that has not started yet). */
struct ms_gw_member {
    uint64_t id;
    const char *name;
    const char *const *peer_urls;
    size_t n_peer_urls;
    const char *const *client_urls;
    size_t n_client_urls;
    bool is_learner;
};

/* Appends the /v3/cluster/member/list response body (etcd's header there
 * has no revision: pass hdr->revision 0). Returns 0 or MS_ENOMEM. */
int ms_gw_write_member_list(struct ms_buf *out, const struct ms_gw_header *hdr,
                            const struct ms_gw_member *members, size_t n);

/* --- errors -------------------------------------------------------------- */

/* HTTP status grpc-gateway (v1, as in etcd 3.4) gives a gRPC code. */
int ms_gw_http_status(int grpc_code);

/* Fills *err with grpc_code, its HTTP status and a printf-formatted
 * message (truncated to fit). */
void ms_gw_error_set(struct ms_gw_error *err, int grpc_code, const char *fmt,
                     ...) __attribute__((format(printf, 3, 4)));

/* Maps an MS_E* code to etcd's message, gRPC code and HTTP status (for KV
 * and lease requests; e.g. MS_ECOMPACTED -> "etcdserver: mvcc: required
 * revision has been compacted", 11, 400). detail, when not NULL, replaces
 * the message (for codes whose text depends on the case, such as
 * MS_EMALFORMED). Codes etcd has no equivalent for become 2/500 with
 * detail or ms_strerror(). Returns ms_code. */
int ms_gw_error_from_code(int ms_code, const char *detail,
                          struct ms_gw_error *err);

/* Like ms_gw_error_from_code for r->err, with the result's operation as
 * context: MS_ENOTFOUND of a lease operation is "requested lease not
 * found" (404), of a put with ignore_value "key not found" (400). */
int ms_gw_error_from_result(const struct ms_result *r, struct ms_gw_error *err);

/* Appends {"error":M,"message":M,"code":C} (etcd's key order). Returns 0
 * or MS_ENOMEM. */
int ms_gw_error_json(const struct ms_gw_error *err, struct ms_buf *out);

#endif /* MS_API_GATEWAY_H */
