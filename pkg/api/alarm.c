/* alarm.c - the NOSPACE quota check, alarm changes through Raft, and
 * POST /v3/maintenance/alarm in etcd's gateway shape. */
#include "api/alarm.h"
#include "api/server_priv.h"
#include "util/error.h"
#include "util/log.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* --- the quota ------------------------------------------------------------ */

/* Bytes op would add at most: its keys and values (etcd's quota cost is
 * the same plus a fixed overhead per key). */
static uint64_t cost(const struct ms_op *op)
{
    uint64_t n = 0;

    if (op->type == MS_OP_PUT)
        return op->u.put.key.len + op->u.put.value.len;
    if (op->type != MS_OP_TXN)
        return 0;
    for (size_t i = 0; i < op->u.txn.n_success; i++)
        n += cost(&op->u.txn.success[i]);
    for (size_t i = 0; i < op->u.txn.n_failure; i++)
        n += cost(&op->u.txn.failure[i]);
    return n;
}

static uint64_t quota(const struct ms_server *s)
{
    return s->cfg.quota_backend_bytes ? s->cfg.quota_backend_bytes
                                      : MS_SERVER_DEFAULT_QUOTA_BYTES;
}

static void on_raised(struct ms_alarm_req *req, int status)
{
    struct ms_server *s = req->srv;

    s->alarm_raising = false;
    if (status != 0)
        ms_warn("quota: raising the NOSPACE alarm failed: %s",
                ms_strerror(status));
    free(req);
}

int ms_api_quota_check(struct ms_server *s, const struct ms_op *op, bool leader)
{
    struct ms_alarm_req *req;

    if (!ms_store_op_adds_data(op))
        return 0;
    if (ms_alarms_active(&s->fsm.alarms, MS_ALARM_NOSPACE))
        return MS_ENOSPACE;
    if (!leader || ms_store_bytes(s->store) + cost(op) <= quota(s))
        return 0;
    if (!s->alarm_raising && (req = calloc(1, sizeof(*req))) != NULL) {
        ms_warn("quota: %" PRIu64 " bytes of data, quota %" PRIu64
                ": raising the NOSPACE alarm",
                ms_store_bytes(s->store), quota(s));
        req->activate = true;
        req->member_id = s->member_id;
        req->type = MS_ALARM_NOSPACE;
        if (ms_api_alarm_change(s, req, on_raised) == 0)
            s->alarm_raising = true;
        else
            free(req);
    }
    return MS_ENOSPACE;
}

/* --- alarms -----------------------------------------------------------------
 */

size_t ms_api_alarm_list(const struct ms_server *s, enum ms_alarm_type type,
                         struct ms_alarm *out)
{
    const struct ms_alarms *t = &s->fsm.alarms;
    size_t n = 0;

    for (size_t i = 0; i < t->n; i++)
        if (type == MS_ALARM_NONE || t->a[i].type == type)
            out[n++] = t->a[i];
    return n;
}

static bool is_active(const struct ms_server *s, uint64_t member,
                      enum ms_alarm_type type)
{
    const struct ms_alarms *t = &s->fsm.alarms;

    for (size_t i = 0; i < t->n; i++)
        if (t->a[i].member_id == member && t->a[i].type == type)
            return true;
    return false;
}

static void on_alarm_applied(struct ms_raft_propose_req *preq, int status,
                             void *result)
{
    struct ms_alarm_req *req = preq->data;
    bool now = is_active(req->srv, req->member_id, req->type);

    (void)result;
    req->n_alarms = 0;
    if (status == 0 && (req->activate ? now : req->was_active && !now)) {
        req->alarm.member_id = req->member_id;
        req->alarm.type = req->type;
        req->n_alarms = 1;
    }
    req->cb(req, status);
}

int ms_api_alarm_change(struct ms_server *s, struct ms_alarm_req *req,
                        ms_alarm_cb cb)
{
    struct ms_buf b = MS_BUF_INIT;
    int rc;

    if (s->stopping)
        return MS_ESHUTDOWN;
    rc = ms_fsm_encode_alarm(req->activate, req->member_id, req->type, &b);
    if (rc == 0) {
        req->srv = s;
        req->cb = cb;
        req->was_active = is_active(s, req->member_id, req->type);
        req->prop.data = req;
        rc = ms_raft_propose(&s->raft, &req->prop, &b, on_alarm_applied);
    }
    ms_buf_free(&b);
    return rc;
}

/* --- POST /v3/maintenance/alarm
 * ------------------------------------------------ */

/* An AlarmRequest field: enums as names or numbers, uint64 as a string or
 * a number; absent: 0. Returns 0 or -1 with bad set to the value (etcd
 * names it in its error). */
static int enum_field(const cJSON *o, const char *name,
                      const char *const *names, size_t n, int *out,
                      const char **bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    *out = 0;
    *bad = cJSON_IsString(v) ? v->valuestring : "";
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < n &&
        v->valuedouble == (int)v->valuedouble) {
        *out = (int)v->valuedouble;
        return 0;
    }
    if (cJSON_IsString(v))
        for (size_t i = 0; i < n; i++)
            if (strcmp(v->valuestring, names[i]) == 0) {
                *out = (int)i;
                return 0;
            }
    return -1;
}

static int u64_field(const cJSON *o, const char *name, const char *alt,
                     uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    char *end;

    if (v == NULL)
        v = cJSON_GetObjectItemCaseSensitive(o, alt);
    *out = 0;
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 9e15) {
        *out = (uint64_t)v->valuedouble;
        return 0;
    }
    if (!cJSON_IsString(v) || v->valuestring[0] < '0' ||
        v->valuestring[0] > '9')
        return -1;
    *out = strtoull(v->valuestring, &end, 10);
    return *end == '\0' ? 0 : -1;
}

/* {"alarms":[{"memberID":"N","alarm":"NOSPACE"},..]}: etcd 3.4 fills no
 * header in an AlarmResponse, so its gateway answers "{}" when there is no
 * alarm. */
static void answer(struct ms_call *c, const struct ms_alarm *a, size_t n)
{
    struct ms_buf *b = &c->srv->scratch;
    int rc = 0;

    ms_buf_reset(b);
    rc |= ms_buf_putc(b, '{');
    if (n > 0) {
        rc |= ms_buf_printf(b, "\"alarms\":[");
        for (size_t i = 0; i < n; i++) {
            rc |= ms_buf_printf(b, "%s{", i ? "," : "");
            if (a[i].member_id != 0)
                rc |= ms_buf_printf(b, "\"memberID\":\"%" PRIu64 "\"%s",
                                    a[i].member_id,
                                    a[i].type != MS_ALARM_NONE ? "," : "");
            if (a[i].type != MS_ALARM_NONE)
                rc |= ms_buf_printf(b, "\"alarm\":\"%s\"",
                                    ms_alarm_type_name(a[i].type));
            rc |= ms_buf_putc(b, '}');
        }
        rc |= ms_buf_putc(b, ']');
    }
    rc |= ms_buf_putc(b, '}');
    if (rc != 0) {
        ms_call_fail(c, MS_ENOMEM, NULL);
        return;
    }
    ms_call_respond(c, 200, "application/json", b->data, b->len);
}

struct alarm_call {
    struct ms_alarm_req req;
    struct ms_call *c;
};

static void on_changed(struct ms_alarm_req *req, int status)
{
    struct alarm_call *ac = req->data;
    struct ms_call *c = ac->c;

    if (status != 0)
        ms_call_fail(c, status, NULL);
    else
        answer(c, &req->alarm, req->n_alarms);
    free(ac);
}

static void run_alarm(struct ms_call *c)
{
    static const char *const actions[] = {"GET", "ACTIVATE", "DEACTIVATE"};
    static const char *const types[] = {"NONE", "NOSPACE", "CORRUPT"};
    struct ms_server *s = c->srv;
    cJSON *o = NULL;
    int action, type, rc = -1;
    uint64_t member;
    const char *bad;
    struct ms_gw_error e;

    if (c->req->body_len > 0) {
        o = cJSON_ParseWithLength((const char *)c->req->body, c->req->body_len);
        if (o == NULL || !cJSON_IsObject(o)) {
            cJSON_Delete(o);
            ms_gw_error_set(&e, MS_GRPC_INVALID_ARGUMENT,
                            "invalid character in alarm request");
            ms_call_error(c, &e);
            return;
        }
    }
    if (enum_field(o, "action", actions, 3, &action, &bad) != 0)
        ms_gw_error_set(&e, MS_GRPC_INVALID_ARGUMENT,
                        "unknown value \"%.64s\" for enum "
                        "etcdserverpb.AlarmRequest_AlarmAction",
                        bad);
    else if (enum_field(o, "alarm", types, 3, &type, &bad) != 0)
        ms_gw_error_set(&e, MS_GRPC_INVALID_ARGUMENT,
                        "unknown value \"%.64s\" for enum "
                        "etcdserverpb.AlarmType",
                        bad);
    else if (u64_field(o, "memberID", "member_id", &member) != 0)
        ms_gw_error_set(&e, MS_GRPC_INVALID_ARGUMENT,
                        "invalid value for uint64 field memberID");
    else
        rc = 0;
    cJSON_Delete(o);
    if (rc != 0) {
        ms_call_error(c, &e);
        return;
    }
    if (action == 0) {
        struct ms_alarm list[MS_ALARMS_MAX];
        answer(c, list, ms_api_alarm_list(s, (enum ms_alarm_type)type, list));
        return;
    }
    if (type == MS_ALARM_NONE) {
        /* etcd 3.4 answers an ACTIVATE of NONE with the pair (and keeps it
         * in its list, which we do not); a DEACTIVATE finds nothing */
        struct ms_alarm none = {.member_id = member, .type = MS_ALARM_NONE};
        answer(c, &none, action == 1 ? 1 : 0);
        return;
    }
    struct alarm_call *ac = calloc(1, sizeof(*ac));
    if (ac == NULL) {
        ms_call_fail(c, MS_ENOMEM, NULL);
        return;
    }
    ac->c = c;
    ac->req.data = ac;
    ac->req.activate = action == 1;
    ac->req.member_id = member;
    ac->req.type = (enum ms_alarm_type)type;
    rc = ms_api_alarm_change(s, &ac->req, on_changed);
    if (rc != 0) {
        free(ac);
        ms_call_fail(c, rc, NULL);
    }
}

void ms_alarm_v3(struct ms_call *c)
{
    c->kind = MS_API_V3_MAINTENANCE;
    if (strcmp(c->req->method, "POST") != 0) {
        ms_call_respond(c, 405, "text/plain; charset=utf-8",
                        "Method Not Allowed", 18);
        return;
    }
    ms_cluster_route(c, run_alarm);
}
