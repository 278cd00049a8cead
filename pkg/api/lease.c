/* lease.c - /v3/lease/{keepalive,timetolive,leases} (and the /v3/kv/lease/
 * aliases), the leader's lessor wired to Raft: promotion on leadership,
 * expiry by proposed revocations, grants and revocations observed as they
 * apply. */
#include "api/server_priv.h"
#include "lease/lessor.h"
#include "util/base64.h"
#include "util/error.h"
#include "util/log.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Revocations proposed per tick at most (etcd: 1000 per second). */
#define EXPIRE_PER_TICK 64

struct ms_api_lease {
    struct ms_server *s;
    struct ms_lessor lessor;
    uint64_t keepalives_total;
    uint64_t timetolive_total;
};

/* An expiry revocation in flight. */
struct revoke_prop {
    struct ms_proposal p;
    struct ms_op op;
    struct ms_api_lease *al;
};

static uint64_t clock_ms(void *data)
{
    (void)data;
    return ms_now_ns() / 1000000;
}

static void on_revoked(struct ms_proposal *p, int status,
                       const struct ms_result *r)
{
    struct revoke_prop *rp = p->data;
    int64_t id = rp->op.u.lease_revoke.id;

    (void)r; /* applied: revoked, or already gone (MS_ELEASE) */
    ms_lessor_revoke_done(&rp->al->lessor, id, status);
    if (status != 0)
        ms_warn("lease %" PRId64 ": expiry revocation failed: %s", id,
                ms_strerror(status));
    free(rp);
}

static int propose_revoke(void *data, int64_t id)
{
    struct ms_api_lease *al = data;
    struct revoke_prop *rp = calloc(1, sizeof(*rp));
    int rc;

    if (rp == NULL)
        return MS_ENOMEM;
    rp->al = al;
    rp->op.type = MS_OP_LEASE_REVOKE;
    rp->op.u.lease_revoke.id = id;
    rp->p.data = rp;
    rp->p.cb = on_revoked;
    rc = ms_batch_submit(&al->s->bp, &rp->op, &rp->p);
    if (rc != 0)
        free(rp);
    else
        ms_debug("lease %" PRId64 ": expired; revoking", id);
    return rc;
}

/* fsm observe hook: keeps the lessor's table in step with the log. */
static void observe(void *data, const struct ms_op *op,
                    const struct ms_result *r)
{
    struct ms_api_lease *al = data;

    if (r->err != 0)
        return;
    if (op->type == MS_OP_LEASE_GRANT)
        ms_lessor_granted(&al->lessor, r->u.lease_grant.id,
                          r->u.lease_grant.ttl);
    else if (op->type == MS_OP_LEASE_REVOKE)
        ms_lessor_revoked(&al->lessor, op->u.lease_revoke.id);
}

int ms_lease_api_init(struct ms_server *s)
{
    struct ms_api_lease *al = calloc(1, sizeof(*al));
    struct ms_lessor_hooks h = {.now_ms = clock_ms, .revoke = propose_revoke};

    if (al == NULL)
        return MS_ENOMEM;
    al->s = s;
    h.data = al;
    ms_lessor_init(&al->lessor, &h);
    s->lease = al;
    s->fsm.observe = observe;
    s->fsm.observe_data = al;
    return 0;
}

void ms_lease_api_tick(struct ms_server *s)
{
    struct ms_api_lease *al = s->lease;
    bool lead;

    if (al == NULL)
        return;
    lead = !s->stopping && ms_raft_is_leader(&s->raft);
    if (lead && !al->lessor.primary) {
        char err[MS_ERRMSG_SIZE];
        if (ms_lessor_promote(&al->lessor, s->store, err, sizeof(err)) != 0)
            ms_error("lease: cannot load the lease table: %s", err);
        else
            ms_info("lease: leading; %zu leases, each with a full TTL from "
                    "now",
                    al->lessor.n);
    } else if (!lead && al->lessor.primary) {
        ms_lessor_demote(&al->lessor);
        ms_info("lease: no longer leading; expiry is the new leader's");
    }
    if (al->lessor.primary)
        ms_lessor_expire(&al->lessor, EXPIRE_PER_TICK);
}

void ms_lease_api_free(struct ms_server *s)
{
    if (s->lease == NULL)
        return;
    ms_lessor_free(&s->lease->lessor);
    free(s->lease);
    s->lease = NULL;
}

int64_t ms_lease_grant_ttl(const struct ms_server *s, int64_t ttl)
{
    /* etcd's minLeaseTTL: 1.5 election timeouts, rounded up to seconds */
    int64_t min = ((int64_t)s->cfg.election_ms * 3 / 2 + 999) / 1000;

    if (min < 2)
        min = 2;
    return ttl < min ? min : ttl;
}

/* --- the service (every front end) ------------------------------------ */

/* The lessor answers only where this member leads. */
static int primary(struct ms_server *s)
{
    if (!s->lease->lessor.primary)
        ms_lease_api_tick(s); /* leading since the last state callback */
    return s->lease->lessor.primary ? 0 : MS_ENOLEADER;
}

int ms_lease_keepalive(struct ms_server *s, int64_t id, int64_t *ttl)
{
    int rc = primary(s);

    if (rc != 0)
        return rc;
    if (ms_lessor_renew(&s->lease->lessor, id, ttl) != 0)
        *ttl = 0; /* unknown or expired */
    s->lease->keepalives_total++;
    return 0;
}

int ms_lease_timetolive(struct ms_server *s, int64_t id, int64_t *left,
                        int64_t *granted)
{
    int rc = primary(s);

    if (rc != 0)
        return rc;
    s->lease->timetolive_total++;
    if (ms_lessor_remaining(&s->lease->lessor, id, left, granted) != 0) {
        *left = -1;
        *granted = 0;
    }
    return 0;
}

/* --- endpoints --------------------------------------------------------------- */

static void bad_request(struct ms_call *c, int grpc, const char *msg)
{
    struct ms_gw_error e;

    ms_gw_error_set(&e, grpc, "%s", msg);
    ms_call_error(c, &e);
}

/* Reads "ID" of a request message; -1 with msg on a wrong type. */
static int msg_id(const cJSON *m, int64_t *id, char *msg, size_t size)
{
    if (ms_jint64(ms_jfield(m, "ID", NULL), id) != 0) {
        snprintf(msg, size, "ID: expected an int64 (number or string)");
        return -1;
    }
    return 0;
}

static void start_result(struct ms_server *s, struct ms_buf *b)
{
    struct ms_gw_header h = ms_server_header(s, ms_store_revision(s->store));

    ms_buf_puts(b, "{\"header\":");
    ms_gw_write_header(b, &h);
}

/* Leader: answers each message of the body, then ends. */
static void run_keepalive(struct ms_call *c)
{
    struct ms_server *s = c->srv;
    struct ms_api_lease *al = s->lease;
    struct ms_http_request *req = c->req;
    struct ms_jmsgs it = {(const char *)req->body,
                          (const char *)req->body + req->body_len,
                          (const char *)req->body};
    struct ms_buf b = MS_BUF_INIT;
    char msg[200];
    size_t count = 0;
    cJSON *m;
    int rc;

    if (!al->lessor.primary)
        ms_lease_api_tick(s); /* leading since the last state callback */
    if (!al->lessor.primary) {
        ms_call_fail(c, MS_ENOLEADER, NULL);
        return;
    }
    while ((m = ms_jmsg_next(&it, &rc, msg, sizeof(msg))) != NULL) {
        int64_t id, ttl = 0;
        if (msg_id(m, &id, msg, sizeof(msg)) != 0) {
            cJSON_Delete(m);
            rc = MS_EMALFORMED;
            break;
        }
        cJSON_Delete(m);
        ms_lease_keepalive(s, id, &ttl); /* 0: unknown, TTL omitted */
        ms_buf_puts(&b, "{\"result\":");
        start_result(s, &b);
        ms_buf_printf(&b, ",\"ID\":\"%" PRId64 "\"", id);
        if (ttl != 0)
            ms_buf_printf(&b, ",\"TTL\":\"%" PRId64 "\"", ttl);
        ms_buf_puts(&b, "}}\n");
        count++;
    }
    if (rc != 0 && count == 0) {
        /* etcd's streaming gateway: 500, code 2 */
        ms_buf_free(&b);
        bad_request(c, MS_GRPC_UNKNOWN, msg);
        return;
    }
    ms_call_respond(c, 200, "application/json", b.data, b.len);
    ms_buf_free(&b);
}

struct keys_ctx {
    struct ms_buf *b;
    size_t n;
};

static int add_key(void *ctx, const uint8_t *key, size_t len)
{
    struct keys_ctx *k = ctx;

    ms_buf_puts(k->b, k->n++ ? ",\"" : ",\"keys\":[\"");
    ms_base64_encode(k->b, key, len);
    ms_buf_putc(k->b, '"');
    return 0;
}

/* Leader: remaining TTL of a lease, with its keys on request. */
static void run_timetolive(struct ms_call *c)
{
    struct ms_server *s = c->srv;
    struct ms_api_lease *al = s->lease;
    cJSON *m = NULL;
    struct ms_jmsgs it = {(const char *)c->req->body,
                          (const char *)c->req->body + c->req->body_len,
                          (const char *)c->req->body};
    struct ms_buf b = MS_BUF_INIT;
    char msg[200], err[MS_ERRMSG_SIZE];
    int64_t id = 0, left, granted;
    bool keys = false;
    int rc;

    if (!al->lessor.primary)
        ms_lease_api_tick(s); /* leading since the last state callback */
    if (!al->lessor.primary) {
        ms_call_fail(c, MS_ENOLEADER, NULL);
        return;
    }
    m = ms_jmsg_next(&it, &rc, msg, sizeof(msg));
    if (rc != 0 || msg_id(m, &id, msg, sizeof(msg)) != 0 ||
        ms_jbool(ms_jfield(m, "keys", NULL), &keys) != 0) {
        cJSON_Delete(m);
        bad_request(c, MS_GRPC_INVALID_ARGUMENT,
                    rc != 0 ? msg : "keys: expected a bool");
        return;
    }
    cJSON_Delete(m);
    al->timetolive_total++;
    start_result(s, &b);
    ms_buf_printf(&b, ",\"ID\":\"%" PRId64 "\"", id);
    if (ms_lessor_remaining(&al->lessor, id, &left, &granted) != 0) {
        ms_buf_puts(&b, ",\"TTL\":\"-1\"}");
    } else {
        if (left != 0)
            ms_buf_printf(&b, ",\"TTL\":\"%" PRId64 "\"", left);
        ms_buf_printf(&b, ",\"grantedTTL\":\"%" PRId64 "\"", granted);
        if (keys) {
            struct keys_ctx k = {&b, 0};
            rc = ms_store_lease_keys(s->store, id, add_key, &k, err,
                                     sizeof(err));
            if (rc != 0) {
                ms_buf_free(&b);
                ms_call_fail(c, rc, err);
                return;
            }
            if (k.n > 0)
                ms_buf_putc(&b, ']');
        }
        ms_buf_putc(&b, '}');
    }
    ms_call_respond(c, 200, "application/json", b.data, b.len);
    ms_buf_free(&b);
}

struct list_ctx {
    struct ms_buf *b;
    size_t n;
};

static int add_lease(void *ctx, int64_t id, int64_t ttl)
{
    struct list_ctx *l = ctx;

    (void)ttl;
    ms_buf_printf(l->b, "%s{\"ID\":\"%" PRId64 "\"}",
                  l->n++ ? "," : ",\"leases\":[", id);
    return 0;
}

/* Any member: the leases of its local store. */
static void leases(struct ms_call *c)
{
    struct ms_server *s = c->srv;
    struct ms_buf b = MS_BUF_INIT;
    struct list_ctx l = {&b, 0};
    char err[MS_ERRMSG_SIZE];
    int rc;

    start_result(s, &b);
    rc = ms_store_lease_list(s->store, add_lease, &l, err, sizeof(err));
    if (rc != 0) {
        ms_buf_free(&b);
        ms_call_fail(c, rc, err);
        return;
    }
    if (l.n > 0)
        ms_buf_putc(&b, ']');
    ms_buf_putc(&b, '}');
    ms_call_respond(c, 200, "application/json", b.data, b.len);
    ms_buf_free(&b);
}

static bool path_is(const struct ms_http_request *req, const char *tail)
{
    size_t n = strlen(tail);
    const char *p = req->path;
    size_t len = req->path_len;

    if (len > 6 && memcmp(p, "/v3/kv", 6) == 0) { /* the alias */
        p += 6;
        len -= 6;
    } else if (len > 3 && memcmp(p, "/v3", 3) == 0) {
        p += 3;
        len -= 3;
    } else {
        return false;
    }
    return len == n && memcmp(p, tail, n) == 0;
}

bool ms_lease_v3(struct ms_call *c)
{
    struct ms_http_request *req = c->req;
    bool ka = path_is(req, "/lease/keepalive");
    bool ttl = path_is(req, "/lease/timetolive");
    bool list = path_is(req, "/lease/leases");

    if (!ka && !ttl && !list)
        return false;
    c->kind = MS_API_V3_LEASE;
    if (strcmp(req->method, "POST") != 0) {
        ms_call_respond(c, 405, "text/plain; charset=utf-8",
                        "Method Not Allowed", 18);
        return true;
    }
    if (list) {
        struct ms_jmsgs it = {(const char *)req->body,
                              (const char *)req->body + req->body_len,
                              (const char *)req->body};
        char msg[200];
        int rc;
        cJSON_Delete(ms_jmsg_next(&it, &rc, msg, sizeof(msg)));
        if (rc != 0)
            bad_request(c, MS_GRPC_INVALID_ARGUMENT, msg);
        else
            leases(c);
        return true;
    }
    /* the leader keeps the deadlines: it answers (a renewal or a look-up
     * sent twice does no harm) */
    c->retry_safe = true;
    ms_cluster_route(c, ka ? run_keepalive : run_timetolive);
    return true;
}

void ms_lease_metrics(struct ms_server *s, struct ms_buf *b)
{
    struct ms_api_lease *al = s->lease;
    struct ms_lessor_stats st = {0};
    uint64_t ka = 0, ttl = 0;

    if (al != NULL) {
        st = al->lessor.stats;
        ka = al->keepalives_total;
        ttl = al->timetolive_total;
    }
    ms_metrics_gauge(b, "metastore_lease_primary",
                     "1 when this member keeps lease deadlines (leader).",
                     al != NULL && al->lessor.primary ? 1 : 0);
    ms_metrics_gauge(b, "metastore_leases_tracked",
                     "Leases with a deadline on this member (leader only).",
                     al != NULL ? (double)al->lessor.n : 0);
    ms_metrics_counter(b, "metastore_lease_expired_total",
                       "Leases revoked because their TTL ran out.",
                       (double)st.expired_total);
    ms_metrics_counter(b, "metastore_lease_renewed_total",
                       "Successful keepalives.", (double)st.renewed_total);
    ms_metrics_counter(b, "metastore_lease_revoke_failed_total",
                       "Expiry revocations that failed (retried).",
                       (double)st.revoke_failed_total);
    ms_metrics_counter(b, "metastore_lease_keepalive_requests_total",
                       "Keepalive messages answered.", (double)ka);
    ms_metrics_counter(b, "metastore_lease_timetolive_requests_total",
                       "TimeToLive requests answered.", (double)ttl);
}
