/* grpc_codec.h - etcd's v3 protobuf messages (rpc.proto) to operations and
 * from results: the gRPC front end's codec, and the form in which a
 * follower forwards an operation's result back from the leader. */
#ifndef MS_API_GRPC_CODEC_H
#define MS_API_GRPC_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "api/gateway.h"
#include "codec/op.h"
#include "store/store.h"
#include "util/arena.h"
#include "util/buf.h"

/* This layer does no I/O. Every function is pure and borrows its inputs. */

/* Decodes the request message for an operation of type t (PUT:
 * PutRequest, RANGE: RangeRequest, DELETE_RANGE: DeleteRangeRequest, TXN:
 * TxnRequest, COMPACT: CompactionRequest, LEASE_GRANT: LeaseGrantRequest,
 * LEASE_REVOKE: LeaseRevokeRequest) from data[0..len) into *op; every
 * pointer in *op points into arena (the caller frees it). No semantic
 * checks (ms_gw_check_op does them). Returns 0, MS_EMALFORMED (not a valid
 * message), MS_ETOOLARGE (txn nested deeper than MS_CODEC_MAX_TXN_DEPTH),
 * MS_EINVAL (t has no request message) or MS_ENOMEM. */
int ms_pb_decode_op(enum ms_op_type t, const uint8_t *data, size_t len,
                    struct ms_arena *arena, struct ms_op *op);

/* Appends the response message for a successful result r (r->err == 0):
 * PutResponse, RangeResponse, ... with the header hdr (hdr->revision as
 * given; headers inside a txn carry only their result's revision, as the
 * gateway's). Returns 0, MS_EINVAL (unknown type) or MS_ENOMEM. */
int ms_pb_encode_result(const struct ms_gw_header *hdr,
                        const struct ms_result *r, struct ms_buf *out);

/* The reverse of ms_pb_encode_result for a result of type t: decodes
 * data[0..len) into *r (err 0, revision from the header), every pointer in
 * r into arena. Returns 0, MS_EMALFORMED, MS_EINVAL or MS_ENOMEM. */
int ms_pb_decode_result(enum ms_op_type t, const uint8_t *data, size_t len,
                        struct ms_arena *arena, struct ms_result *r);

#endif /* MS_API_GRPC_CODEC_H */
