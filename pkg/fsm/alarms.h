/* alarms.h - the replicated alarm table (etcd's NOSPACE and CORRUPT
 * alarms, per member), kept by the state machine and in snapshots. */
#ifndef MS_FSM_ALARMS_H
#define MS_FSM_ALARMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* etcd's etcdserverpb.AlarmType values. */
enum ms_alarm_type {
    MS_ALARM_NONE = 0,
    MS_ALARM_NOSPACE = 1,
    MS_ALARM_CORRUPT = 2,
};

#define MS_ALARMS_MAX 128

struct ms_alarm {
    uint64_t member_id;
    enum ms_alarm_type type;
};

/* Active alarms in activation order; a (member, type) pair at most once. */
struct ms_alarms {
    struct ms_alarm a[MS_ALARMS_MAX];
    size_t n;
};

/* Static name ("NONE", "NOSPACE", "CORRUPT"), NULL for other values. */
const char *ms_alarm_type_name(enum ms_alarm_type t);

/* Parses a name as above; returns 0 or MS_EINVAL. */
int ms_alarm_type_parse(const char *s, enum ms_alarm_type *out);

/* True when some member raised an alarm of type t. */
bool ms_alarms_active(const struct ms_alarms *t, enum ms_alarm_type type);

/* Raises (member, type). Returns 0 (also when already raised), MS_EINVAL
 * for MS_ALARM_NONE or an unknown type, MS_ETOOLARGE when the table is
 * full. */
int ms_alarms_activate(struct ms_alarms *t, uint64_t member_id,
                       enum ms_alarm_type type);

/* Clears (member, type). Returns 0 or MS_ENOTFOUND (nothing changed). */
int ms_alarms_deactivate(struct ms_alarms *t, uint64_t member_id,
                         enum ms_alarm_type type);

/* Appends the table as a JSON array [{"member_id":"N","alarm":"NOSPACE"},
 * ...] to out. Returns 0 or MS_ENOMEM. */
int ms_alarms_encode(const struct ms_alarms *t, struct ms_buf *out);

/* Replaces *t by the array in a parsed JSON value (a cJSON *; NULL gives an
 * empty table). Returns 0 or MS_EMALFORMED (t unchanged). */
int ms_alarms_decode(struct ms_alarms *t, const void *json_array);

#endif /* MS_FSM_ALARMS_H */
