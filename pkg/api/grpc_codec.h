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
#include "watch/hub.h"

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

/* Appends a WatchResponse: with notice n (created / canceled) when n is
 * not NULL, else with events ev[0..n_ev) (n_ev 0: a progress message) for
 * watch_id; header from hdr; prev_kv: send each event's prev_kv. Returns
 * 0 or MS_ENOMEM. */
int ms_pb_encode_watch(const struct ms_gw_header *hdr, int64_t watch_id,
                       const struct ms_watch_notice *n,
                       const struct ms_store_event *const *ev, size_t n_ev,
                       bool prev_kv, struct ms_buf *out);

/* Decodes a WatchRequest: *kind 1 create (spec filled, bytes into arena),
 * 2 cancel (*cancel_id), 3 progress, 0 none set. Returns 0, MS_EMALFORMED
 * or MS_ENOMEM. */
int ms_pb_decode_watch(const uint8_t *data, size_t len, struct ms_arena *arena,
                       int *kind, struct ms_watch_spec *spec,
                       int64_t *cancel_id);

#endif /* MS_API_GRPC_CODEC_H */
