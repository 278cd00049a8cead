/* alarm.h - etcd's Maintenance.Alarm and the backend quota, for every
 * front end (the JSON gateway here, gRPC later). */
#ifndef MS_API_ALARM_H
#define MS_API_ALARM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/op.h"
#include "fsm/alarms.h"
#include "raft/node.h"

struct ms_server;

/*
 * The alarm table is replicated state (pkg/fsm/alarms.h): raising and
 * clearing an alarm are Raft entries, so every member holds the same table.
 * While a NOSPACE alarm is raised every member's state machine refuses the
 * ops that add data (puts, lease grants, txns with a put) with MS_ENOSPACE
 * ("etcdserver: mvcc: database space exceeded"); reads, deletes,
 * compactions and revocations go on. Clearing it (a disarm) once
 * compaction has made room lets writes in again. All functions run on the
 * loop thread.
 */

/* The quota check a front end makes before it proposes op (on the leader;
 * on a follower it only looks at the alarm). Returns 0 when op may go on,
 * or MS_ENOSPACE: a NOSPACE alarm is raised, or op would take the store
 * over --quota-backend-bytes, in which case this member (the leader)
 * raises the NOSPACE alarm for itself through Raft, as etcd does. */
int ms_api_quota_check(struct ms_server *s, const struct ms_op *op,
                       bool leader);

/* Copies the active alarms of type (MS_ALARM_NONE: all) into out (room for
 * MS_ALARMS_MAX) and returns their count. The answer to etcd's GET. */
size_t ms_api_alarm_list(const struct ms_server *s, enum ms_alarm_type type,
                         struct ms_alarm *out);

struct ms_alarm_req;
/* status: 0 (applied here; req->alarms holds the answer), MS_ENOTLEADER,
 * MS_ESHUTDOWN, MS_ENOMEM, ... */
typedef void (*ms_alarm_cb)(struct ms_alarm_req *req, int status);

/* An ACTIVATE or DEACTIVATE of (member_id, type); caller-allocated, valid
 * until cb. */
struct ms_alarm_req {
    void *data; /* the caller's; never touched */
    bool activate;
    uint64_t member_id;
    enum ms_alarm_type type;
    /* the answer, as etcd's AlarmResponse.alarms: the alarm raised, or
     * the alarm cleared (none when it was not raised) */
    struct ms_alarm alarm;
    size_t n_alarms;
    /* private */
    struct ms_raft_propose_req prop;
    struct ms_server *srv;
    ms_alarm_cb cb;
    bool was_active;
};

/* Proposes req on this member, which must lead (a front end routes the
 * request to the leader first). Returns 0 (cb follows) or MS_ENOTLEADER /
 * MS_ESHUTDOWN / MS_ENOMEM / MS_EINVAL (type MS_ALARM_NONE or unknown: etcd
 * answers such a request with no alarm, and front ends do the same without
 * calling this); cb is then never called. */
int ms_api_alarm_change(struct ms_server *s, struct ms_alarm_req *req,
                        ms_alarm_cb cb);

#endif /* MS_API_ALARM_H */
