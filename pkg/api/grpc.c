/* grpc.c - the gRPC front end: etcd 3.4's v3 services over pkg/grpc. A
 * thin codec: each call becomes a struct ms_call whose operation runs
 * through the same path as the JSON gateway's (router.c, cluster.c); its
 * result comes back here to be encoded as etcd's protobuf response. */
#include "api/grpc_codec.h"
#include "api/alarm.h"
#include "api/server_priv.h"
#include "store/snaptool.h"
#include "util/error.h"
#include "util/log.h"

#include <inttypes.h>
#include <zlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd/etcdserver/etcdserverpb/rpc.pb-c.h"

#define NCODES 17

/* How a method is served. */
enum how {
    H_OP,        /* a KV or lease operation (ms_call_execute) */
    H_STATUS,    /* Maintenance.Status */
    H_MEMBERS,   /* Cluster.MemberList */
    H_LEADER,    /* a protobuf request run by the leader (run_on_leader) */
    H_KEEPALIVE, /* LeaseKeepAlive: each request as an H_LEADER call */
    H_LEASES,    /* LeaseLeases, from this member's store */
    H_MEMBER,    /* MemberAdd/Remove/Promote: cluster.c's member code, on the
                    leader (run_on_leader) */
    H_WATCH,     /* watch.c */
    H_SNAPSHOT,  /* Maintenance.Snapshot: our snapshot in etcd's envelope */
    H_MAINT,     /* Defragment, HashKV, MoveLeader (maintenance()) */
    H_AUTH,      /* auth_api.c; changes run on the leader */
    H_TODO,      /* not implemented yet */
};

struct method {
    const char *path;
    enum how how;
    enum ms_op_type op; /* H_OP */
    bool stream;        /* client streaming (Watch, LeaseKeepAlive) */
};

static const struct method methods[] = {
    {"/etcdserverpb.KV/Range", H_OP, MS_OP_RANGE, false},
    {"/etcdserverpb.KV/Put", H_OP, MS_OP_PUT, false},
    {"/etcdserverpb.KV/DeleteRange", H_OP, MS_OP_DELETE_RANGE, false},
    {"/etcdserverpb.KV/Txn", H_OP, MS_OP_TXN, false},
    {"/etcdserverpb.KV/Compact", H_OP, MS_OP_COMPACT, false},
    {"/etcdserverpb.Watch/Watch", H_WATCH, 0, true},
    {"/etcdserverpb.Lease/LeaseGrant", H_OP, MS_OP_LEASE_GRANT, false},
    {"/etcdserverpb.Lease/LeaseRevoke", H_OP, MS_OP_LEASE_REVOKE, false},
    {"/etcdserverpb.Lease/LeaseKeepAlive", H_KEEPALIVE, 0, true},
    {"/etcdserverpb.Lease/LeaseTimeToLive", H_LEADER, 0, false},
    {"/etcdserverpb.Lease/LeaseLeases", H_LEASES, 0, false},
    {"/etcdserverpb.Cluster/MemberAdd", H_MEMBER, 0, false},
    {"/etcdserverpb.Cluster/MemberRemove", H_MEMBER, 0, false},
    {"/etcdserverpb.Cluster/MemberUpdate", H_TODO, 0, false},
    {"/etcdserverpb.Cluster/MemberList", H_MEMBERS, 0, false},
    {"/etcdserverpb.Cluster/MemberPromote", H_MEMBER, 0, false},
    {"/etcdserverpb.Maintenance/Alarm", H_LEADER, 0, false},
    {"/etcdserverpb.Maintenance/Status", H_STATUS, 0, false},
    {"/etcdserverpb.Maintenance/Defragment", H_MAINT, 0, false},
    {"/etcdserverpb.Maintenance/Hash", H_MAINT, 0, false},
    {"/etcdserverpb.Maintenance/HashKV", H_MAINT, 0, false},
    {"/etcdserverpb.Maintenance/Snapshot", H_SNAPSHOT, 0, false},
    {"/etcdserverpb.Maintenance/MoveLeader", H_MAINT, 0, false},
    {"/etcdserverpb.Auth/AuthEnable", H_AUTH, 0, false},
    {"/etcdserverpb.Auth/AuthDisable", H_AUTH, 0, false},
    {"/etcdserverpb.Auth/Authenticate", H_AUTH, 0, false},
    {"/etcdserverpb.Auth/UserAdd", H_AUTH, 0, false},
    {"/etcdserverpb.Auth/UserGet", H_AUTH, 0, false},
    {"/etcdserverpb.Auth/UserList", H_AUTH, 0, false},
    {"/etcdserverpb.Auth/UserDelete", H_AUTH, 0, false},
    {"/etcdserverpb.Auth/UserChangePassword", H_AUTH, 0, false},
    {"/etcdserverpb.Auth/UserGrantRole", H_AUTH, 0, false},
    {"/etcdserverpb.Auth/UserRevokeRole", H_AUTH, 0, false},
    {"/etcdserverpb.Auth/RoleAdd", H_AUTH, 0, false},
    {"/etcdserverpb.Auth/RoleGet", H_AUTH, 0, false},
    {"/etcdserverpb.Auth/RoleList", H_AUTH, 0, false},
    {"/etcdserverpb.Auth/RoleDelete", H_AUTH, 0, false},
    {"/etcdserverpb.Auth/RoleGrantPermission", H_AUTH, 0, false},
    {"/etcdserverpb.Auth/RoleRevokePermission", H_AUTH, 0, false},
};

#define NMETHODS (sizeof(methods) / sizeof(methods[0]))
static const char methods_alarm[] = "/etcdserverpb.Maintenance/Alarm";
#define M_UNKNOWN NMETHODS /* counted under "unknown" */

struct ms_api_grpc {
    uint64_t calls[NMETHODS + 1][NCODES];
    void (*stopped)(struct ms_server *s);
};

/* --- ending calls ------------------------------------------------------------
 */

static void child_done(struct ms_call *c, int code, const char *message);

/* Ends a LeaseKeepAlive stream; frees it once no request is in flight. */
static void stream_end(struct ms_call *p, int code, const char *message)
{
    if (p->gc != NULL) {
        p->srv->gapi->calls[p->gmethod][code]++;
        ms_grpc_finish(p->gc, code, message);
        p->gc = NULL;
    }
    if (p->nchildren == 0)
        ms_call_free(p);
}

void ms_grpc_api_end(struct ms_call *c, int code, const char *message)
{
    if (code < 0 || code >= NCODES)
        code = MS_GRPC_UNKNOWN;
    if (c->parent != NULL) {
        child_done(c, code, message);
        return;
    }
    if (c->nchildren > 0 || c->half_closed) {
        stream_end(c, code, message);
        return;
    }
    c->srv->gapi->calls[c->gmethod][code]++;
    ms_grpc_finish(c->gc, code, message);
    c->gc = NULL;
    ms_call_free(c);
}

/* Answers c with a packed response message: its gRPC call, the stream of
 * its parent, or (forwarded to us) its HTTP request. */
static void answer_raw(struct ms_call *c, const void *pb, size_t len)
{
    if (c->parent != NULL) {
        if (c->parent->gc != NULL)
            ms_grpc_send(c->parent->gc, pb, len);
        child_done(c, MS_GRPC_OK, "");
        return;
    }
    if (c->req != NULL) {
        ms_call_respond(c, 200, "application/x-protobuf", pb, len);
        return;
    }
    if (ms_grpc_send(c->gc, pb, len) == MS_ENOMEM) {
        ms_grpc_api_end(c, MS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    ms_grpc_api_end(c, MS_GRPC_OK, "");
}

/* Sends one packed message and ends the call OK. */
static void reply(struct ms_call *c, const ProtobufCMessage *m)
{
    struct ms_buf *b = &c->srv->scratch;
    size_t n = protobuf_c_message_get_packed_size(m);

    ms_buf_reset(b);
    if (ms_buf_reserve(b, n) != 0) {
        ms_call_fail(c, MS_ENOMEM, NULL);
        return;
    }
    b->len = protobuf_c_message_pack(m, b->data);
    answer_raw(c, b->data, b->len);
    if (b->cap > 64 * 1024)
        ms_buf_free(b);
}

static void header_of(const struct ms_gw_header *h,
                      Etcdserverpb__ResponseHeader *m)
{
    m->cluster_id = h->cluster_id;
    m->member_id = h->member_id;
    m->revision = h->revision;
    m->raft_term = h->raft_term;
}

/* --- operations -------------------------------------------------------------
 */

static void render_pb(struct ms_call *c, int status, const struct ms_result *r)
{
    struct ms_gw_error e;
    struct ms_gw_header hdr;
    struct ms_buf *b = &c->srv->scratch;

    if (status != 0) {
        ms_call_fail(c, status, NULL);
        return;
    }
    if (r->err != 0) {
        ms_gw_error_from_result(r, &e);
        ms_call_error(c, &e);
        return;
    }
    hdr = ms_server_header(c->srv, r->revision);
    ms_buf_reset(b);
    if (ms_pb_encode_result(&hdr, r, b) != 0 ||
        ms_grpc_send(c->gc, b->data, b->len) == MS_ENOMEM) {
        ms_grpc_api_end(c, MS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    if (b->cap > 64 * 1024)
        ms_buf_free(b);
    ms_grpc_api_end(c, MS_GRPC_OK, "");
}

static void run_op(struct ms_call *c, enum ms_op_type t, const uint8_t *msg,
                   size_t len)
{
    struct ms_server *s = c->srv;
    struct ms_gw_error e;
    int rc;

    if (t != MS_OP_RANGE && len > s->cfg.max_request_bytes) {
        ms_call_fail(c, MS_ETOOLARGE, NULL);
        return;
    }
    rc = ms_pb_decode_op(t, msg, len, &c->arena, &c->op);
    if (rc == MS_ENOMEM) {
        ms_grpc_api_end(c, MS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    if (rc != 0) {
        /* what grpc-go answers a message it cannot unmarshal */
        ms_grpc_api_end(c, MS_GRPC_INTERNAL,
                        "grpc: error unmarshalling request: proto: bad "
                        "wiretype or truncated message");
        return;
    }
    if (ms_gw_check_op(&c->op, 0, &e) != 0) {
        ms_call_error(c, &e);
        return;
    }
    if (t == MS_OP_LEASE_GRANT) {
        if (c->op.u.lease_grant.id == 0)
            c->op.u.lease_grant.id = ms_v3_new_lease_id(s);
        c->op.u.lease_grant.ttl =
            ms_lease_grant_ttl(s, c->op.u.lease_grant.ttl);
    }
    c->render = render_pb;
    ms_call_execute(c);
}

/* --- Maintenance.Status, Cluster.MemberList
 * ------------------------------------ */

static void status(struct ms_call *c)
{
    struct ms_server *s = c->srv;
    struct ms_gw_status gs;
    struct ms_gw_header hdr = ms_server_header(s, ms_store_revision(s->store));
    Etcdserverpb__StatusResponse m = ETCDSERVERPB__STATUS_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;

    ms_server_status(s, &gs);
    header_of(&hdr, &h);
    m.header = &h;
    m.version = (char *)gs.version;
    m.dbsize = gs.db_size;
    m.leader = gs.leader;
    m.raftindex = gs.raft_index;
    m.raftterm = gs.raft_term;
    m.raftappliedindex = gs.raft_applied_index;
    m.dbsizeinuse = gs.db_size_in_use;
    m.islearner = gs.is_learner;
    m.errors = (char **)gs.errors;
    m.n_errors = gs.n_errors;
    reply(c, &m.base);
}

static void member_list(struct ms_call *c)
{
    struct ms_server *s = c->srv;
    struct ms_member_view v;
    struct ms_gw_header hdr = ms_server_header(s, 0);
    Etcdserverpb__MemberListResponse m =
        ETCDSERVERPB__MEMBER_LIST_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    Etcdserverpb__Member *mem = NULL, **ptrs = NULL;
    int rc;

    if ((rc = ms_member_view_get(s, &v)) != 0) {
        ms_call_fail(c, rc, NULL);
        return;
    }
    mem = calloc(v.n + 1, sizeof(*mem));
    ptrs = calloc(v.n + 1, sizeof(*ptrs));
    if (mem == NULL || ptrs == NULL) {
        ms_grpc_api_end(c, MS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < v.n; i++) {
        const struct ms_gw_member *g = &v.m[i];
        etcdserverpb__member__init(&mem[i]);
        mem[i].id = g->id;
        mem[i].name = (char *)(g->name ? g->name : "");
        mem[i].n_peerurls = g->n_peer_urls;
        mem[i].peerurls = (char **)g->peer_urls;
        mem[i].n_clienturls = g->n_client_urls;
        mem[i].clienturls = (char **)g->client_urls;
        mem[i].islearner = g->is_learner;
        ptrs[i] = &mem[i];
    }
    header_of(&hdr, &h);
    m.header = &h;
    m.n_members = v.n;
    m.members = ptrs;
    reply(c, &m.base);
out:
    free(mem);
    free(ptrs);
    ms_member_view_free(&v);
}

/* --- leases
 * ----------------------------------------------------------------------- */

struct lease_keys {
    ProtobufCBinaryData *k;
    size_t n, cap;
};

static int add_key(void *ctx, const uint8_t *key, size_t len)
{
    struct lease_keys *lk = ctx;
    uint8_t *copy;

    if (lk->n == lk->cap) {
        size_t cap = lk->cap ? lk->cap * 2 : 8;
        ProtobufCBinaryData *k = realloc(lk->k, cap * sizeof(*k));
        if (k == NULL)
            return MS_ENOMEM;
        lk->k = k;
        lk->cap = cap;
    }
    if ((copy = malloc(len + 1)) == NULL)
        return MS_ENOMEM;
    memcpy(copy, key, len);
    lk->k[lk->n].data = copy;
    lk->k[lk->n++].len = len;
    return 0;
}

static void time_to_live(struct ms_call *c)
{
    struct ms_server *s = c->srv;
    Etcdserverpb__LeaseTimeToLiveRequest *q =
        etcdserverpb__lease_time_to_live_request__unpack(NULL, c->msg_len,
                                                         c->msg);
    Etcdserverpb__LeaseTimeToLiveResponse m =
        ETCDSERVERPB__LEASE_TIME_TO_LIVE_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    struct ms_gw_header hdr = ms_server_header(s, ms_store_revision(s->store));
    struct lease_keys lk = {0};
    char err[MS_ERRMSG_SIZE];
    int rc;

    if (q == NULL) {
        ms_call_fail(c, MS_EMALFORMED, "grpc: error unmarshalling request");
        return;
    }
    m.id = q->id;
    rc = ms_lease_timetolive(s, q->id, &m.ttl, &m.grantedttl);
    if (rc == 0 && q->keys && m.ttl >= 0)
        rc = ms_store_lease_keys(s->store, q->id, add_key, &lk, err,
                                 sizeof(err));
    if (rc != 0) {
        ms_call_fail(c, rc, rc == MS_ENOLEADER ? NULL : err);
    } else {
        header_of(&hdr, &h);
        m.header = &h;
        m.keys = lk.k;
        m.n_keys = lk.n;
        reply(c, &m.base);
    }
    for (size_t i = 0; i < lk.n; i++)
        free(lk.k[i].data);
    free(lk.k);
    etcdserverpb__lease_time_to_live_request__free_unpacked(q, NULL);
}

static void keep_alive(struct ms_call *c)
{
    struct ms_server *s = c->srv;
    Etcdserverpb__LeaseKeepAliveRequest *q =
        etcdserverpb__lease_keep_alive_request__unpack(NULL, c->msg_len,
                                                       c->msg);
    Etcdserverpb__LeaseKeepAliveResponse m =
        ETCDSERVERPB__LEASE_KEEP_ALIVE_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    struct ms_gw_header hdr = ms_server_header(s, ms_store_revision(s->store));
    int rc;

    if (q == NULL) {
        ms_call_fail(c, MS_EMALFORMED, "grpc: error unmarshalling request");
        return;
    }
    m.id = q->id;
    etcdserverpb__lease_keep_alive_request__free_unpacked(q, NULL);
    rc = ms_lease_keepalive(s, m.id, &m.ttl);
    if (rc != 0) {
        ms_call_fail(c, rc, NULL);
        return;
    }
    header_of(&hdr, &h);
    m.header = &h;
    reply(c, &m.base);
}

static int add_lease(void *ctx, int64_t id, int64_t ttl)
{
    struct ms_buf *ids = ctx;
    (void)ttl;
    return ms_buf_append(ids, &id, sizeof(id));
}

static void leases(struct ms_call *c)
{
    struct ms_server *s = c->srv;
    Etcdserverpb__LeaseLeasesResponse m =
        ETCDSERVERPB__LEASE_LEASES_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    struct ms_gw_header hdr = ms_server_header(s, ms_store_revision(s->store));
    struct ms_buf ids = MS_BUF_INIT;
    Etcdserverpb__LeaseStatus *st = NULL, **ptrs = NULL;
    char err[MS_ERRMSG_SIZE];
    size_t n;
    int rc;

    rc = ms_store_lease_list(s->store, add_lease, &ids, err, sizeof(err));
    n = ids.len / sizeof(int64_t);
    if (rc == 0 && ((st = calloc(n + 1, sizeof(*st))) == NULL ||
                    (ptrs = calloc(n + 1, sizeof(*ptrs))) == NULL))
        rc = MS_ENOMEM;
    if (rc != 0) {
        ms_call_fail(c, rc, rc == MS_ENOMEM ? NULL : err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        etcdserverpb__lease_status__init(&st[i]);
        memcpy(&st[i].id, ids.data + i * sizeof(int64_t), sizeof(int64_t));
        ptrs[i] = &st[i];
    }
    header_of(&hdr, &h);
    m.header = &h;
    m.leases = ptrs;
    m.n_leases = n;
    reply(c, &m.base);
out:
    free(st);
    free(ptrs);
    ms_buf_free(&ids);
}

/* MemberAdd/Remove/Promote: the request as the JSON arguments cluster.c's
 * member code takes from the gateway, then that code. */
static void member_op(struct ms_call *c)
{
    const char *name = strrchr(c->method_path, '/') + 1;
    struct ms_buf j = MS_BUF_INIT;
    int ok = 1;

    if (strcmp(name, "MemberAdd") == 0) {
        Etcdserverpb__MemberAddRequest *q =
            etcdserverpb__member_add_request__unpack(NULL, c->msg_len, c->msg);
        if ((ok = q != NULL)) {
            ms_buf_puts(&j, "{\"peerURLs\":[");
            for (size_t i = 0; i < q->n_peerurls; i++) {
                ms_buf_puts(&j, i ? "," : "");
                ms_gw_write_string(&j, q->peerurls[i], strlen(q->peerurls[i]));
            }
            ms_buf_printf(&j, "],\"isLearner\":%s}",
                          q->islearner ? "true" : "false");
            etcdserverpb__member_add_request__free_unpacked(q, NULL);
        }
        c->member_verb = "add";
    } else {
        /* MemberRemoveRequest and MemberPromoteRequest are both {ID = 1} */
        Etcdserverpb__MemberRemoveRequest *q =
            etcdserverpb__member_remove_request__unpack(NULL, c->msg_len,
                                                        c->msg);
        if ((ok = q != NULL)) {
            ms_buf_printf(&j, "{\"ID\":\"%" PRIu64 "\"}", q->id);
            etcdserverpb__member_remove_request__free_unpacked(q, NULL);
        }
        c->member_verb =
            strcmp(name, "MemberRemove") == 0 ? "remove" : "promote";
    }
    ms_buf_putc(&j, 0);
    c->member_json = ok ? ms_arena_dup(&c->arena, j.data, j.len) : NULL;
    ms_buf_free(&j);
    if (!ok) {
        c->member_verb = NULL;
        ms_call_fail(c, MS_EMALFORMED, "grpc: error unmarshalling request");
        return;
    }
    if (c->member_json == NULL) {
        c->member_verb = NULL;
        ms_call_fail(c, MS_ENOMEM, NULL);
        return;
    }
    c->kind = MS_API_V3_CLUSTER;
    ms_cluster_member_run(c);
}

static Etcdserverpb__Member *member_pb(struct ms_arena *a,
                                       const struct ms_gw_member *g)
{
    Etcdserverpb__Member *m = ms_arena_zalloc(a, sizeof(*m));

    if (m == NULL)
        return NULL;
    etcdserverpb__member__init(m);
    m->id = g->id;
    m->name = (char *)(g->name ? g->name : "");
    m->n_peerurls = g->n_peer_urls;
    m->peerurls = (char **)g->peer_urls;
    m->n_clienturls = g->n_client_urls;
    m->clienturls = (char **)g->client_urls;
    m->islearner = g->is_learner;
    return m;
}

void ms_grpc_api_members(struct ms_call *c, const struct ms_member *added)
{
    struct ms_server *s = c->srv;
    const char *name = strrchr(c->method_path, '/') + 1;
    struct ms_member_view v;
    struct ms_gw_header hdr = ms_server_header(s, 0);
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    struct ms_arena a = {.chunk_size = 1024};
    Etcdserverpb__Member **list;
    int rc;

    if ((rc = ms_member_view_get(s, &v)) != 0) {
        ms_call_fail(c, rc, NULL);
        return;
    }
    header_of(&hdr, &h);
    list = ms_arena_zalloc(&a, (v.n + 1) * sizeof(*list));
    for (size_t i = 0; list != NULL && i < v.n; i++)
        if ((list[i] = member_pb(&a, &v.m[i])) == NULL)
            list = NULL;
    if (list == NULL) {
        ms_call_fail(c, MS_ENOMEM, NULL);
    } else if (strcmp(name, "MemberAdd") == 0) {
        Etcdserverpb__MemberAddResponse m =
            ETCDSERVERPB__MEMBER_ADD_RESPONSE__INIT;
        const char *peer = added ? added->peer_url : "";
        struct ms_gw_member g = {.id = added ? added->id : 0,
                                 .peer_urls = &peer,
                                 .n_peer_urls = 1,
                                 .is_learner = added && added->learner};
        m.header = &h;
        m.member = member_pb(&a, &g);
        m.n_members = v.n;
        m.members = list;
        reply(c, &m.base);
    } else {
        /* MemberRemoveResponse and MemberPromoteResponse: {header,
         * members} with the same field numbers */
        Etcdserverpb__MemberRemoveResponse m =
            ETCDSERVERPB__MEMBER_REMOVE_RESPONSE__INIT;
        m.header = &h;
        m.n_members = v.n;
        m.members = list;
        reply(c, &m.base);
    }
    ms_arena_free(&a);
    ms_member_view_free(&v);
}

/* --- Maintenance.Alarm: the replicated alarm table (alarm.h) ---------- */

struct alarm_call {
    struct ms_alarm_req req;
    struct ms_call *c;
};

/* Answers with alarms[0..n) (etcd's Alarm responses carry no header) and,
 * for a GET, this member's own disk-space alarm (space.c), which it raises
 * and clears by itself. */
static void alarm_answer(struct ms_call *c, const struct ms_alarm *alarms,
                         size_t n, bool with_disk)
{
    Etcdserverpb__AlarmResponse m = ETCDSERVERPB__ALARM_RESPONSE__INIT;
    Etcdserverpb__AlarmMember am[MS_ALARMS_MAX + 1];
    Etcdserverpb__AlarmMember *list[MS_ALARMS_MAX + 1];
    size_t k = 0;

    for (size_t i = 0; i < n && k < MS_ALARMS_MAX; i++, k++) {
        etcdserverpb__alarm_member__init(&am[k]);
        am[k].memberid = alarms[i].member_id;
        am[k].alarm = (Etcdserverpb__AlarmType)alarms[i].type;
        list[k] = &am[k];
    }
    if (with_disk && c->srv->nospace) {
        etcdserverpb__alarm_member__init(&am[k]);
        am[k].memberid = c->srv->member_id;
        am[k].alarm = ETCDSERVERPB__ALARM_TYPE__NOSPACE;
        list[k] = &am[k];
        k++;
    }
    m.alarms = k > 0 ? list : NULL;
    m.n_alarms = k;
    reply(c, &m.base);
}

static void on_alarm_changed(struct ms_alarm_req *req, int status)
{
    struct alarm_call *ac = req->data;
    struct ms_call *c = ac->c;

    if (status != 0)
        ms_call_fail(c, status, NULL);
    else
        alarm_answer(c, &req->alarm, req->n_alarms, false);
    free(ac);
}

/* On the leader: GET lists, ACTIVATE/DEACTIVATE go through Raft. */
static void alarm_call_run(struct ms_call *c)
{
    struct ms_server *s = c->srv;
    Etcdserverpb__AlarmRequest *q =
        etcdserverpb__alarm_request__unpack(NULL, c->msg_len, c->msg);
    struct alarm_call *ac;
    int rc;

    if (q == NULL) {
        ms_call_fail(c, MS_EMALFORMED, "grpc: error unmarshalling request");
        return;
    }
    if (q->action == ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET) {
        struct ms_alarm list[MS_ALARMS_MAX];
        size_t n = ms_api_alarm_list(s, (enum ms_alarm_type)q->alarm, list);
        etcdserverpb__alarm_request__free_unpacked(q, NULL);
        alarm_answer(c, list, n, true);
        return;
    }
    if (q->alarm != ETCDSERVERPB__ALARM_TYPE__NOSPACE &&
        q->alarm != ETCDSERVERPB__ALARM_TYPE__CORRUPT) {
        etcdserverpb__alarm_request__free_unpacked(q, NULL);
        alarm_answer(c, NULL, 0, false); /* etcd: no alarm, no error */
        return;
    }
    ac = calloc(1, sizeof(*ac));
    if (ac == NULL) {
        etcdserverpb__alarm_request__free_unpacked(q, NULL);
        ms_call_fail(c, MS_ENOMEM, NULL);
        return;
    }
    ac->c = c;
    ac->req.data = ac;
    ac->req.activate =
        q->action == ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE;
    ac->req.member_id = q->memberid;
    ac->req.type = (enum ms_alarm_type)q->alarm;
    etcdserverpb__alarm_request__free_unpacked(q, NULL);
    rc = ms_api_alarm_change(s, &ac->req, on_alarm_changed);
    if (rc != 0) {
        free(ac);
        ms_call_fail(c, rc, NULL);
    }
}

/* Runs c's protobuf request here, on the leader. */
static void run_on_leader(struct ms_call *c)
{
    if (strcmp(c->method_path, "/etcdserverpb.Maintenance/Alarm") == 0)
        alarm_call_run(c);
    else if (strcmp(c->method_path, "/etcdserverpb.Lease/LeaseTimeToLive") == 0)
        time_to_live(c);
    else if (strcmp(c->method_path, "/etcdserverpb.Lease/LeaseKeepAlive") == 0)
        keep_alive(c);
    else
        member_op(c);
}

/* A forwarded answer comes back as r->type 0 with the packed response in
 * c->msg (see cluster.c's forward_msg). */
static void render_raw(struct ms_call *c, int status, const struct ms_result *r)
{
    (void)r;
    if (status != 0) {
        ms_call_fail(c, status, NULL);
        return;
    }
    answer_raw(c, c->msg, c->msg_len);
}

static void route_to_leader(struct ms_call *c, const uint8_t *msg, size_t len)
{
    c->msg = ms_arena_dup(&c->arena, msg, len ? len : 1);
    c->msg_len = len;
    if (c->msg == NULL) {
        ms_call_fail(c, MS_ENOMEM, NULL);
        return;
    }
    c->render = render_raw;
    /* a lease renewal or look-up sent twice does no harm (lease.c) */
    c->retry_safe = strncmp(c->method_path, "/etcdserverpb.Lease/", 20) == 0;
    ms_cluster_route(c, run_on_leader);
}

void ms_grpc_api_internal(struct ms_call *c)
{
    const char *path = c->req->path + strlen("/internal/grpc");
    size_t len = c->req->path_len - strlen("/internal/grpc"), i;

    for (i = 0; i < NMETHODS; i++)
        if (strlen(methods[i].path) == len &&
            memcmp(methods[i].path, path, len) == 0)
            break;
    if (strcmp(c->req->method, "POST") != 0 ||
        ms_http_request_header(c->req, "X-Metastore-Forwarded") == NULL ||
        i == NMETHODS ||
        !(methods[i].how == H_LEADER || methods[i].how == H_KEEPALIVE ||
          methods[i].how == H_MEMBER)) {
        ms_call_respond(c, 404, "text/plain; charset=utf-8", "Not Found", 9);
        return;
    }
    if (methods[i].how == H_MEMBER && c->srv->fsm.auth.enabled) {
        int rc = ms_auth_api_root(c); /* the forwarding member's word */
        if (rc != 0) {
            ms_auth_api_fail(c, rc);
            return;
        }
    }
    c->kind = MS_API_V3_LEASE;
    c->method_path = methods[i].path;
    route_to_leader(c, c->req->body, c->req->body_len);
}

/* LeaseKeepAlive: each request is a call of its own on the leader; the
 * answers go out on the stream in the order they come. */
static void child_done(struct ms_call *c, int code, const char *message)
{
    struct ms_call *p = c->parent;

    ms_call_free(c);
    p->nchildren--;
    if (code != MS_GRPC_OK)
        stream_end(p, code, message); /* etcd ends the stream on errors */
    else if (p->gc == NULL || (p->half_closed && p->nchildren == 0))
        stream_end(p, MS_GRPC_OK, "");
}

static void on_keepalive_message(struct ms_grpc_call *gc, const uint8_t *msg,
                                 size_t len)
{
    struct ms_call *p = gc->data, *c;

    if (msg == NULL) {
        /* half-close: end with OK once the requests in flight are
         * answered (python-etcd3's refresh waits for that) */
        p->half_closed = true;
        if (p->nchildren == 0)
            stream_end(p, MS_GRPC_OK, "");
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        stream_end(p, MS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    c->srv = p->srv;
    c->parent = p;
    c->gmethod = p->gmethod;
    c->start_ns = ms_now_ns();
    c->kind = MS_API_V3_LEASE;
    c->arena.chunk_size = 256;
    c->method_path = methods[p->gmethod].path;
    p->nchildren++;
    route_to_leader(c, msg, len);
}

static void on_keepalive_cancel(struct ms_grpc_call *gc)
{
    struct ms_call *p = gc->data;

    stream_end(p, MS_GRPC_CANCELED, "context canceled");
}

/* --- maintenance
 * -------------------------------------------------------------------- */

/* HashKV: CRC-32 of every key-value version at or below the revision (key,
 * value, revisions, version, lease), from this member's store. Members
 * with the same history agree; the value is not etcd's (bbolt) hash. */
static void hash_kv(struct ms_call *c, int64_t revision, bool kv)
{
    struct ms_server *s = c->srv;
    struct ms_range r = {0};
    struct ms_results rs = {0};
    static const uint8_t zero = 0;
    char err[MS_ERRMSG_SIZE];
    Etcdserverpb__HashKVResponse m = ETCDSERVERPB__HASH_KVRESPONSE__INIT;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    struct ms_gw_header hdr;
    uLong crc = crc32(0, NULL, 0);
    int rc;

    r.key = (struct ms_bytes){&zero, 1};
    r.range_end = (struct ms_bytes){&zero, 1};
    r.revision = revision;
    rc = ms_store_read(s->store, &r, &rs, err, sizeof(err));
    if (rc == 0 && rs.r[0].err != 0) {
        struct ms_gw_error e;
        ms_gw_error_from_result(&rs.r[0], &e);
        ms_results_free(&rs);
        ms_call_error(c, &e);
        return;
    }
    if (rc != 0) {
        ms_results_free(&rs);
        ms_call_fail(c, rc, err);
        return;
    }
    for (size_t i = 0; i < rs.r[0].u.range.n_kvs; i++) {
        const struct ms_kv *kv = &rs.r[0].u.range.kvs[i];
        int64_t nums[4] = {kv->create_revision, kv->mod_revision, kv->version,
                           kv->lease};
        crc = crc32(crc, kv->key.data, (uInt)kv->key.len);
        if (kv->value.len > 0)
            crc = crc32(crc, kv->value.data, (uInt)kv->value.len);
        crc = crc32(crc, (const Bytef *)nums, sizeof(nums));
    }
    hdr = ms_server_header(s, rs.r[0].revision);
    ms_results_free(&rs);
    header_of(&hdr, &h);
    if (!kv) { /* Hash: the same value, in HashResponse */
        Etcdserverpb__HashResponse hm = ETCDSERVERPB__HASH_RESPONSE__INIT;
        hm.header = &h;
        hm.hash = (uint32_t)crc;
        reply(c, &hm.base);
        return;
    }
    m.header = &h;
    m.hash = (uint32_t)crc;
    m.compact_revision = ms_store_compact_revision(s->store);
    reply(c, &m.base);
}

struct transfer {
    struct ms_raft_change_req req;
    struct ms_call *c;
};

static void on_transferred(struct ms_raft_change_req *req, int status)
{
    struct transfer *t = req->data;
    struct ms_call *c = t->c;
    Etcdserverpb__MoveLeaderResponse m =
        ETCDSERVERPB__MOVE_LEADER_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    struct ms_gw_header hdr =
        ms_server_header(c->srv, ms_store_revision(c->srv->store));

    free(t);
    if (status != 0) {
        ms_call_fail(c, status, NULL);
        return;
    }
    header_of(&hdr, &h);
    m.header = &h;
    reply(c, &m.base);
}

static void move_leader(struct ms_call *c, uint64_t target)
{
    struct ms_server *s = c->srv;
    struct transfer *t;
    int rc;

    /* as etcd: the client sends it to the leader (etcdctl finds it) */
    if (!ms_raft_is_leader(&s->raft)) {
        ms_grpc_api_end(c, MS_GRPC_FAILED_PRECONDITION,
                        "etcdserver: not leader");
        return;
    }
    if (target == 0 || target == s->member_id) {
        ms_grpc_api_end(c, MS_GRPC_FAILED_PRECONDITION,
                        "etcdserver: bad leader transferee");
        return;
    }
    if ((t = calloc(1, sizeof(*t))) == NULL) {
        ms_call_fail(c, MS_ENOMEM, NULL);
        return;
    }
    t->req.data = t;
    t->c = c;
    rc = ms_raft_transfer(&s->raft, &t->req, target, on_transferred);
    if (rc != 0) {
        free(t);
        if (rc == MS_ENOTFOUND)
            ms_grpc_api_end(c, MS_GRPC_FAILED_PRECONDITION,
                            "etcdserver: bad leader transferee");
        else
            ms_call_fail(c, rc, NULL);
    }
}

/* Maintenance.Snapshot: this member's snapshot file (pkg/store/snapshot.h)
 * in the envelope etcdctl checks (ms_snaptool_envelope_tail): the bytes of
 * snap, pad zeros, then tail, as 32 KiB blobs queued while the client
 * takes them (on_drained), so the stream holds the snapshot once. */
struct snap_stream {
    struct ms_buf snap;
    size_t pad;
    uint8_t tail[MS_SNAPTOOL_ENVELOPE_TAIL];
    uint64_t off, total;
};

#define SNAP_BLOB 32768

static void snapshot_free(struct ms_call *c)
{
    struct snap_stream *st = c->stream;

    c->gc->on_drained = NULL;
    c->gc->on_cancel = NULL;
    ms_buf_free(&st->snap);
    free(st);
    c->stream = NULL;
}

/* Copies bytes [off, off + n) of the enveloped file into out. */
static void snapshot_read(const struct snap_stream *st, uint64_t off,
                          uint8_t *out, size_t n)
{
    uint64_t len = st->snap.len, zend = len + st->pad;

    for (size_t i = 0; i < n; i++, off++)
        out[i] = off < len    ? st->snap.data[off]
                 : off < zend ? 0
                              : st->tail[off - zend];
}

static void snapshot_more(struct ms_grpc_call *gc)
{
    struct ms_call *c = gc->data;
    struct snap_stream *st = c->stream;
    struct ms_gw_header hdr =
        ms_server_header(c->srv, ms_store_revision(c->srv->store));
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    uint8_t blob[SNAP_BLOB], pb[SNAP_BLOB + 256];

    header_of(&hdr, &h);
    while (st->off < st->total && ms_grpc_queued(gc) < 4 * SNAP_BLOB) {
        Etcdserverpb__SnapshotResponse m =
            ETCDSERVERPB__SNAPSHOT_RESPONSE__INIT;
        size_t n = st->total - st->off < SNAP_BLOB
                       ? (size_t)(st->total - st->off)
                       : SNAP_BLOB;
        snapshot_read(st, st->off, blob, n);
        st->off += n;
        m.header = &h;
        m.blob.data = blob;
        m.blob.len = n;
        m.remaining_bytes = st->total - st->off;
        if (ms_grpc_send(gc, pb, protobuf_c_message_pack(&m.base, pb)) ==
            MS_ENOMEM) {
            snapshot_free(c);
            ms_grpc_api_end(c, MS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
    }
    if (st->off == st->total) {
        snapshot_free(c);
        ms_grpc_api_end(c, MS_GRPC_OK, "");
    }
}

static void snapshot_cancel(struct ms_grpc_call *gc)
{
    struct ms_call *c = gc->data;

    snapshot_free(c);
    ms_grpc_api_end(c, MS_GRPC_CANCELED, "context canceled");
}

static void snapshot(struct ms_call *c)
{
    struct ms_server *s = c->srv;
    struct snap_stream *st = calloc(1, sizeof(*st));
    int rc;

    if (st == NULL) {
        ms_call_fail(c, MS_ENOMEM, NULL);
        return;
    }
    rc = ms_fsm_snapshot(&s->fsm, &st->snap);
    if (rc != 0) {
        ms_buf_free(&st->snap);
        free(st);
        ms_call_fail(c, rc, s->fsm.errmsg[0] ? s->fsm.errmsg : NULL);
        return;
    }
    st->pad = ms_snaptool_envelope_tail(st->snap.data, st->snap.len, st->tail);
    st->total = st->snap.len + st->pad + MS_SNAPTOOL_ENVELOPE_TAIL;
    c->stream = st;
    c->gc->on_cancel = snapshot_cancel;
    c->gc->on_drained = snapshot_more;
    snapshot_more(c->gc);
}

static void maintenance(struct ms_call *c, const uint8_t *msg, size_t len)
{
    struct ms_server *s = c->srv;
    const char *name = strrchr(methods[c->gmethod].path, '/') + 1;
    struct ms_gw_header hdr = ms_server_header(s, ms_store_revision(s->store));
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;

    header_of(&hdr, &h);
    if (strcmp(name, "Defragment") == 0) {
        /* nothing to defragment: the stores compact themselves */
        Etcdserverpb__DefragmentResponse m =
            ETCDSERVERPB__DEFRAGMENT_RESPONSE__INIT;
        m.header = &h;
        reply(c, &m.base);
    } else if (strcmp(name, "HashKV") == 0) {
        Etcdserverpb__HashKVRequest *q =
            etcdserverpb__hash_kvrequest__unpack(NULL, len, msg);
        if (q == NULL) {
            ms_call_fail(c, MS_EMALFORMED, "grpc: error unmarshalling request");
            return;
        }
        int64_t rev = q->revision;
        etcdserverpb__hash_kvrequest__free_unpacked(q, NULL);
        hash_kv(c, rev, true);
    } else if (strcmp(name, "Hash") == 0) {
        hash_kv(c, 0, false); /* of the current revision */
    } else {
        Etcdserverpb__MoveLeaderRequest *q =
            etcdserverpb__move_leader_request__unpack(NULL, len, msg);
        uint64_t target;
        if (q == NULL) {
            ms_call_fail(c, MS_EMALFORMED, "grpc: error unmarshalling request");
            return;
        }
        target = q->targetid;
        etcdserverpb__move_leader_request__free_unpacked(q, NULL);
        move_leader(c, target);
    }
}

/* --- calls
 * ----------------------------------------------------------------------- */

static void on_unary_message(struct ms_grpc_call *gc, const uint8_t *msg,
                             size_t len)
{
    struct ms_call *c = gc->data;
    const struct method *m = &methods[c->gmethod];

    if (c->started)
        return; /* a unary call takes the first message */
    c->started = true;
    if (msg == NULL) {
        ms_grpc_api_end(c, MS_GRPC_UNKNOWN, "EOF");
        return;
    }
    if (c->srv->fsm.auth.enabled &&
        (m->how == H_MEMBER || m->how == H_SNAPSHOT ||
         (m->how == H_MAINT && strcmp(m->path, methods_alarm) != 0))) {
        /* member and maintenance calls are root's, as etcd (Status,
         * MemberList and Alarm are anyone's) */
        int rc = ms_auth_api_root(c);
        if (rc != 0) {
            ms_auth_api_fail(c, rc);
            return;
        }
    }
    switch (m->how) {
    case H_AUTH:
        c->method_path = m->path;
        ms_auth_api_grpc(c, msg, len);
        return;
    case H_OP:
        run_op(c, m->op, msg, len);
        return;
    case H_STATUS:
        status(c);
        return;
    case H_MEMBERS:
        member_list(c);
        return;
    case H_LEASES:
        leases(c);
        return;
    case H_MAINT:
        maintenance(c, msg, len);
        return;
    case H_SNAPSHOT:
        snapshot(c);
        return;
    case H_LEADER:
    case H_MEMBER:
        c->method_path = m->path;
        route_to_leader(c, msg, len);
        return;
    default:
        ms_grpc_api_end(c, MS_GRPC_UNIMPLEMENTED, "not implemented");
        return;
    }
}

/* Reset or deadline before the request arrived: nothing runs, end it.
 * Once started, the call ends when its result comes (answer dropped). */
static void on_unary_cancel(struct ms_grpc_call *gc)
{
    struct ms_call *c = gc->data;

    if (!c->started)
        ms_grpc_api_end(c, MS_GRPC_CANCELED, "context canceled");
}

static const char *service_end(const char *path)
{
    const char *p = strchr(path + 1, '/');
    return p != NULL ? p : path + strlen(path);
}

static void on_call(struct ms_grpc_call *gc, void *data)
{
    struct ms_server *s = data;
    struct ms_call *c;
    size_t i;
    char msg[256];

    for (i = 0; i < NMETHODS; i++)
        if (strcmp(methods[i].path, gc->path) == 0)
            break;
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        ms_grpc_finish(gc, MS_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    c->srv = s;
    c->gc = gc;
    c->gmethod = (int)i;
    c->start_ns = ms_now_ns();
    c->kind = MS_API_OTHER;
    c->arena.chunk_size = 1024;
    gc->data = c;
    if (i == NMETHODS) {
        /* grpc-go's texts for an unknown service or method */
        const char *se = service_end(gc->path);
        int svc = (int)(se - gc->path - 1);
        bool known = false;
        for (size_t k = 0; k < NMETHODS && !known; k++)
            known = strncmp(methods[k].path, gc->path,
                            (size_t)(se - gc->path)) == 0 &&
                    methods[k].path[se - gc->path] == '/';
        if (known)
            snprintf(msg, sizeof(msg), "unknown method %s for service %.*s",
                     *se ? se + 1 : "", svc, gc->path + 1);
        else
            snprintf(msg, sizeof(msg), "unknown service %.*s", svc,
                     gc->path + 1);
        ms_grpc_api_end(c, MS_GRPC_UNIMPLEMENTED, msg);
        return;
    }
    switch (methods[i].how) {
    case H_TODO:
        snprintf(msg, sizeof(msg), "metastore: %s is not implemented",
                 gc->path + 1);
        ms_grpc_api_end(c, MS_GRPC_UNIMPLEMENTED, msg);
        return;
    case H_WATCH:
    case H_KEEPALIVE:
        /* clientv3 marks these streams "hasleader": etcd refuses them
         * while it knows no leader, and clientv3 tries another member */
        if (gc->leader_required && ms_raft_leader(&s->raft, NULL, 0) == 0) {
            ms_grpc_api_end(c, MS_GRPC_UNAVAILABLE, "etcdserver: no leader");
            return;
        }
        break;
    default:
        break;
    }
    switch (methods[i].how) {
    case H_WATCH:
        ms_watch_grpc(c);
        return;
    case H_KEEPALIVE:
        gc->on_message = on_keepalive_message;
        gc->on_cancel = on_keepalive_cancel;
        return;
    default:
        break;
    }
    gc->on_message = on_unary_message;
    gc->on_cancel = on_unary_cancel;
}

/* --- setup
 * ------------------------------------------------------------------------ */

static void on_h2(uv_os_sock_t fd, struct ms_tls *tls, const void *data,
                  size_t len, const char *remote, void *arg)
{
    struct ms_server *s = arg;

    if (ms_grpc_server_adopt(&s->grpc, fd, tls, data, len, remote) != 0)
        ms_debug("grpc: connection from %s refused", remote);
}

int ms_grpc_api_init(struct ms_server *s, struct ms_http_server_config *hc)
{
    struct ms_grpc_config gcfg = {0};

    s->gapi = calloc(1, sizeof(*s->gapi));
    if (s->gapi == NULL)
        return MS_ENOMEM;
    /* etcd: --max-request-bytes plus 512 KiB of gRPC overhead */
    gcfg.max_recv_bytes = s->cfg.max_request_bytes + 512 * 1024;
    gcfg.max_connections = s->cfg.max_connections;
    if (ms_grpc_server_init(&s->grpc, &s->loop, &gcfg, on_call) != 0)
        return MS_ENOMEM;
    s->grpc.data = s;
    s->grpc_started = true;
    hc->on_h2 = on_h2;
    return 0;
}

static void on_grpc_closed(struct ms_grpc_server *g)
{
    struct ms_server *s = g->data;

    s->grpc_closed = true;
    if (s->gapi->stopped != NULL)
        s->gapi->stopped(s);
}

void ms_grpc_api_stop(struct ms_server *s, void (*cb)(struct ms_server *s))
{
    if (!s->grpc_started) {
        s->grpc_closed = true;
        cb(s);
        return;
    }
    s->gapi->stopped = cb;
    ms_grpc_server_stop(&s->grpc, on_grpc_closed);
}

void ms_grpc_api_free(struct ms_server *s)
{
    free(s->gapi);
    s->gapi = NULL;
}

void ms_grpc_api_metrics(struct ms_server *s, struct ms_buf *b)
{
    static const char *const codes[NCODES] = {"OK",
                                              "Canceled",
                                              "Unknown",
                                              "InvalidArgument",
                                              "DeadlineExceeded",
                                              "NotFound",
                                              "AlreadyExists",
                                              "PermissionDenied",
                                              "ResourceExhausted",
                                              "FailedPrecondition",
                                              "Aborted",
                                              "OutOfRange",
                                              "Unimplemented",
                                              "Internal",
                                              "Unavailable",
                                              "DataLoss",
                                              "Unauthenticated"};

    if (s->gapi == NULL)
        return;
    ms_buf_puts(b, "# HELP metastore_grpc_handled_total gRPC calls ended, by "
                   "method and code.\n"
                   "# TYPE metastore_grpc_handled_total counter\n");
    for (size_t i = 0; i <= NMETHODS; i++) {
        for (int k = 0; k < NCODES; k++) {
            const char *p = i < NMETHODS ? methods[i].path : "/unknown/unknown";
            const char *se;
            if (s->gapi->calls[i][k] == 0)
                continue;
            se = service_end(p);
            ms_buf_printf(b,
                          "metastore_grpc_handled_total{grpc_service=\"%.*s\","
                          "grpc_method=\"%s\",grpc_code=\"%s\"} %" PRIu64 "\n",
                          (int)(se - p - 1), p + 1, *se ? se + 1 : "", codes[k],
                          s->gapi->calls[i][k]);
        }
    }
    ms_buf_printf(b,
                  "# HELP metastore_grpc_connections Open gRPC connections.\n"
                  "# TYPE metastore_grpc_connections gauge\n"
                  "metastore_grpc_connections %u\n",
                  ms_grpc_server_connections(&s->grpc));
}
