/* cluster.c - what makes any member serve any request: forwarding to the
 * leader, waiting (bounded) for a leader, publishing this member's name and
 * client URL, and runtime membership (member add/remove/promote). */
#include "api/grpc_codec.h"
#include "api/server_priv.h"
#include "codec/codec.h"
#include "http/client.h"
#include "util/error.h"
#include "util/log.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORWARDED_HEADER "X-Metastore-Forwarded"

/* --- leader lookup ---------------------------------------------------------- */

/* The leader's client address "IP:port", or NULL while unknown (no leader,
 * or the leader has not published its client URL yet). */
static const char *leader_client(struct ms_server *s)
{
    struct ms_member *m;
    uint64_t id = ms_raft_leader(&s->raft, NULL, 0);

    if (id == 0 || id == s->member_id)
        return NULL;
    m = ms_members_find(&s->fsm.members, id);
    if (m == NULL || m->client_url[0] == '\0')
        return NULL;
    if (strcmp(s->leader_url, m->client_url) != 0) {
        char err[MS_ERRMSG_SIZE];
        if (ms_raft_normalize_address(m->client_url, s->leader_addr,
                                      sizeof(s->leader_addr), err) != 0) {
            ms_warn("leader client URL %s: %s", m->client_url, err);
            return NULL;
        }
        snprintf(s->leader_url, sizeof(s->leader_url), "%s", m->client_url);
    }
    return s->leader_addr;
}

static void on_client_closed(struct ms_http_client *cl)
{
    free(cl);
}

/* The keep-alive client connected to the leader (replaced when the leader
 * changes). NULL on failure. */
static struct ms_http_client *leader_conn(struct ms_server *s,
                                          const char *addr)
{
    struct ms_http_client_config cfg = {.connect_timeout_ms = 2000,
                                        .request_timeout_ms =
                                            s->cfg.request_timeout_ms,
                                        .probe_idle = 1};

    if (strncmp(s->leader_url, "https://", 8) == 0) {
        if (s->fwd_tls == NULL) {
            ms_warn("forward: leader %s has client TLS, this member has "
                    "no --cert-file",
                    s->leader_url);
            return NULL;
        }
        cfg.tls = s->fwd_tls;
    }

    if (s->fwd != NULL && strcmp(s->fwd_addr, addr) == 0)
        return s->fwd;
    if (s->fwd != NULL) {
        ms_http_client_close(s->fwd, on_client_closed);
        s->fwd = NULL;
    }
    s->fwd = calloc(1, sizeof(*s->fwd));
    if (s->fwd == NULL)
        return NULL;
    if (ms_http_client_init(s->fwd, &s->loop, addr, &cfg) != 0) {
        ms_warn("forward: %s: %s", addr, s->fwd->errmsg);
        free(s->fwd);
        s->fwd = NULL;
        return NULL;
    }
    snprintf(s->fwd_addr, sizeof(s->fwd_addr), "%s", addr);
    return s->fwd;
}

/* --- forwarding ----------------------------------------------------------------- */

struct fwd {
    struct ms_http_client_req creq;
    struct ms_call *c;
};

static void park(struct ms_call *c);

/* The leader did not answer a forwarded call (it died, or the connection
 * failed or timed out). A call that cannot have reached it, or whose repeat
 * is harmless (a read), waits for a leader again and is retried within its
 * --request-timeout; a write that may have reached it has an unknown
 * outcome, which the client learns as etcd says it: sending it again could
 * apply it twice. */
static void forward_failed(struct ms_call *c, int status, int sent)
{
    struct ms_server *s = c->srv;
    uint64_t now = ms_now_ns();
    bool retry = !s->stopping && (!sent || c->retry_safe);

    if (now - s->fwd_warned_ns >= 1000000000ull) { /* a line a second */
        s->fwd_warned_ns = now;
        ms_warn("forward to leader %s failed: %s; %s", s->fwd_addr,
                s->fwd != NULL ? s->fwd->errmsg : ms_strerror(status),
                retry ? "waiting for a leader to retry"
                      : "a write may have reached it: outcome unknown");
    }
    if (retry)
        park(c);
    else
        ms_call_fail(c, status == MS_ETIMEOUT ? MS_ETIMEOUT : MS_ENOTLEADER,
                     NULL);
}

static void on_forwarded(struct ms_http_client_req *creq, int status,
                         const struct ms_http_response *resp)
{
    struct fwd *f = creq->data;
    struct ms_call *c = f->c;
    int sent = creq->sent; /* creq lives in f */
    const char *ctype;

    free(f);
    if (status != 0) {
        forward_failed(c, status, sent);
        return;
    }
    for (size_t i = 0; i < ms_http_resp_header_count(resp); i++) {
        const char *name, *value;
        ms_http_resp_header_at(resp, i, &name, &value);
        if (strncasecmp(name, "X-Metastore-", 12) == 0)
            ms_http_response_header(c->req, name, value);
    }
    ctype = ms_http_resp_header(resp, "Content-Type");
    ms_call_respond(c, resp->status, ctype, resp->body, resp->body_len);
}

static void forward(struct ms_call *c, const char *addr)
{
    struct ms_server *s = c->srv;
    struct ms_http_client *cl = leader_conn(s, addr);
    struct ms_http_header h[7];
    size_t n = 0;
    static const char *pass[] = {"Content-Type", "If-Match", "If-None-Match"};
    struct fwd *f;
    int rc;

    if (cl == NULL || (f = calloc(1, sizeof(*f))) == NULL) {
        park(c);
        return;
    }
    for (size_t i = 0; i < sizeof(pass) / sizeof(pass[0]); i++) {
        const char *v = ms_http_request_header(c->req, pass[i]);
        if (v != NULL)
            h[n++] = (struct ms_http_header){pass[i], v};
    }
    h[n++] = (struct ms_http_header){FORWARDED_HEADER, "1"};
    n += ms_auth_api_sign(c, c->req->body, c->req->body_len, h + n);
    f->creq.data = f;
    f->c = c;
    s->forwarded++;
    rc = ms_http_client_request(cl, &f->creq, c->req->method, c->req->target,
                                h, n, c->req->body, c->req->body_len,
                                on_forwarded);
    if (rc != 0) {
        free(f);
        forward_failed(c, rc, 0);
    }
}

/* --- forwarding an operation -------------------------------------------
 *
 * A call that runs an operation (ms_call_execute) is forwarded as the
 * operation, whatever front end it came from: the op in the protobuf codec
 * of Raft entries (a batch of one) to the leader's POST /internal/op; the
 * leader runs it through the same path and answers etcd's protobuf
 * response for the result, or the gateway's JSON error. The result comes
 * back here as a struct ms_result that c->render turns into the client's
 * answer (JSON, REST or gRPC). */

static void on_op_forwarded(struct ms_http_client_req *creq, int status,
                            const struct ms_http_response *resp)
{
    struct fwd *f = creq->data;
    struct ms_call *c = f->c;
    int sent = creq->sent; /* creq lives in f */
    struct ms_result r;
    struct ms_gw_error e;
    cJSON *o;

    free(f);
    if (status != 0) {
        forward_failed(c, status, sent);
        return;
    }
    if (resp->status == 200) {
        if (ms_pb_decode_result(c->op.type, resp->body, resp->body_len,
                                &c->arena, &r) != 0) {
            ms_call_fail(c, MS_EMALFORMED, "forward: bad result from leader");
            return;
        }
        c->render(c, 0, &r);
        return;
    }
    /* {"error":M,"message":M,"code":C} */
    o = cJSON_ParseWithLength((const char *)resp->body, resp->body_len);
    {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(o, "code");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(o, "message");
        if (cJSON_IsNumber(code) && cJSON_IsString(msg))
            ms_gw_error_set(&e, code->valueint, "%s", msg->valuestring);
        else
            ms_gw_error_set(&e, MS_GRPC_UNKNOWN, "forward: leader answered %d",
                            resp->status);
        e.http_status = resp->status;
    }
    cJSON_Delete(o);
    ms_call_error(c, &e);
}

static void forward_op(struct ms_call *c, const char *addr)
{
    struct ms_server *s = c->srv;
    struct ms_http_client *cl = leader_conn(s, addr);
    struct ms_http_header h[4] = {{"Content-Type", "application/x-protobuf"},
                                  {FORWARDED_HEADER, "1"}};
    size_t nh = 2;
    struct ms_batch b = {.ops = &c->op, .n_ops = 1};
    struct ms_buf body = MS_BUF_INIT;
    struct fwd *f;
    int rc;

    if (cl == NULL || (f = calloc(1, sizeof(*f))) == NULL) {
        park(c);
        return;
    }
    rc = ms_codec_encode_batch(MS_CODEC_PROTOBUF, &b, &body);
    if (rc != 0) {
        free(f);
        ms_buf_free(&body);
        ms_call_fail(c, rc, NULL);
        return;
    }
    nh += ms_auth_api_sign(c, body.data, body.len, h + nh);
    f->creq.data = f;
    f->c = c;
    s->forwarded++;
    rc = ms_http_client_request(cl, &f->creq, "POST", "/internal/op", h, nh,
                                body.data, body.len, on_op_forwarded);
    ms_buf_free(&body);
    if (rc != 0) {
        free(f);
        forward_failed(c, rc, 0);
    }
}

/* A gRPC request that is not an op (lease keep-alive, time-to-live): the
 * request message goes to the leader's /internal/grpc<path>, whose
 * protobuf answer is the client's. */
static void on_msg_forwarded(struct ms_http_client_req *creq, int status,
                             const struct ms_http_response *resp)
{
    struct fwd *f = creq->data;
    struct ms_call *c = f->c;
    int sent = creq->sent; /* creq lives in f */
    struct ms_result r = {0};

    if (status != 0 || resp->status == 200) {
        free(f);
        if (status != 0) {
            forward_failed(c, status, sent);
            return;
        }
        /* the raw answer: render it as is (grpc.c knows the shape) */
        r.type = 0;
        c->msg = resp->body;
        c->msg_len = resp->body_len;
        c->render(c, 0, &r);
        return;
    }
    on_op_forwarded(creq, status, resp); /* the JSON error */
}

static void forward_msg(struct ms_call *c, const char *addr)
{
    struct ms_server *s = c->srv;
    struct ms_http_client *cl = leader_conn(s, addr);
    struct ms_http_header h[4] = {{"Content-Type", "application/x-protobuf"},
                                  {FORWARDED_HEADER, "1"}};
    size_t nh = 2 + ms_auth_api_sign(c, c->msg, c->msg_len, h + 2);
    char target[160];
    struct fwd *f;

    if (cl == NULL || (f = calloc(1, sizeof(*f))) == NULL) {
        park(c);
        return;
    }
    if (c->fwd_path != NULL)
        snprintf(target, sizeof(target), "%s", c->fwd_path);
    else
        snprintf(target, sizeof(target), "/internal/grpc%s", c->method_path);
    f->creq.data = f;
    f->c = c;
    s->forwarded++;
    if (ms_http_client_request(cl, &f->creq, "POST", target, h, nh, c->msg,
                               c->msg_len, on_msg_forwarded) != 0) {
        free(f);
        forward_failed(c, MS_EIO, 0);
    }
}

/* Leader side: the result as etcd's protobuf response. */
static void render_forwarded(struct ms_call *c, int status,
                             const struct ms_result *r)
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
    if (ms_pb_encode_result(&hdr, r, b) != 0) {
        ms_call_fail(c, MS_ENOMEM, NULL);
        return;
    }
    ms_call_respond(c, 200, "application/x-protobuf", b->data, b->len);
}

void ms_cluster_serve_op(struct ms_call *c)
{
    char err[MS_ERRMSG_SIZE];

    if (strcmp(c->req->method, "POST") != 0 ||
        ms_http_request_header(c->req, FORWARDED_HEADER) == NULL) {
        ms_call_respond(c, 404, "text/plain; charset=utf-8", "Not Found", 9);
        return;
    }
    if (c->srv->fsm.auth.enabled) {
        /* only a member's signed forward gets this far */
        int rc = ms_auth_api_identify(c);
        if (rc != 0) {
            ms_auth_api_fail(c, rc);
            return;
        }
    }
    if (ms_codec_decode_batch(c->req->body, c->req->body_len, &c->fwd, err,
                              sizeof(err)) != 0 ||
        c->fwd.n_ops != 1) {
        ms_call_fail(c, MS_EMALFORMED, "forwarded op: malformed");
        return;
    }
    c->op = c->fwd.ops[0];
    c->render = render_forwarded;
    ms_call_execute(c);
}

/* --- waiting for a leader --------------------------------------------------------- */

static void dispatch(struct ms_call *c);

/* Waits for a leader: ms_cluster_kick (every tick and on each Raft state
 * change) retries it. */
static void park(struct ms_call *c)
{
    struct ms_server *s = c->srv;

    c->wait_next = NULL;
    if (c->deadline_ns <= 1) /* first park: bounded from the call's start */
        c->deadline_ns =
            c->start_ns + (uint64_t)s->cfg.request_timeout_ms * 1000000;
    if (s->waiting_tail != NULL)
        s->waiting_tail->wait_next = c;
    else
        s->waiting = c;
    s->waiting_tail = c;
}

/* Retries parked calls (a leader may be known now); fails the expired. */
void ms_cluster_kick(struct ms_server *s)
{
    struct ms_call *c = s->waiting;
    uint64_t now = ms_now_ns();

    s->waiting = s->waiting_tail = NULL;
    while (c != NULL) {
        struct ms_call *next = c->wait_next;
        if (s->stopping)
            ms_call_fail(c, MS_ESHUTDOWN, NULL);
        else if (now >= c->deadline_ns)
            ms_call_fail(c, MS_ENOLEADER, NULL);
        else
            dispatch(c);
        c = next;
    }
}

/* Leader: run it here. Follower: forward it. Nobody: park it. */
static void dispatch(struct ms_call *c)
{
    struct ms_server *s = c->srv;
    const char *addr;

    if (ms_raft_is_leader(&s->raft)) {
        c->run(c);
        return;
    }
    if (c->req != NULL &&
        ms_http_request_header(c->req, FORWARDED_HEADER) != NULL &&
        !c->reforward) {
        /* forwarded to us, but we are not the leader (any more): the
         * sender retries after its next leader lookup */
        ms_call_fail(c, MS_ENOLEADER, NULL);
        return;
    }
    addr = leader_client(s);
    if (addr != NULL && c->op_call)
        forward_op(c, addr);
    else if (addr != NULL && (c->req == NULL || c->fwd_path != NULL))
        forward_msg(c, addr);
    else if (addr != NULL)
        forward(c, addr);
    else
        park(c);
}

void ms_cluster_route(struct ms_call *c, void (*run)(struct ms_call *c))
{
    if (c->deadline_ns == 0)
        c->deadline_ns = 1; /* first attempt */
    c->run = run;
    dispatch(c);
}

/* --- publishing this member ------------------------------------------------------ */

struct member_prop {
    struct ms_raft_propose_req req;
    struct ms_server *s;
    struct ms_call *c; /* answered when done, or NULL */
    void (*done)(struct member_prop *mp, int status);
    uint64_t id;
    bool learner;
};

static void self_record(struct ms_server *s, struct ms_member *m)
{
    const char *peer = s->cfg.initial_advertise_peer_url
                           ? s->cfg.initial_advertise_peer_url
                           : s->cfg.listen_peer_url;
    const char *client = s->cfg.advertise_client_url
                             ? s->cfg.advertise_client_url
                             : s->cfg.listen_client_url;
    struct ms_member *cur = ms_members_find(&s->fsm.members, s->member_id);

    memset(m, 0, sizeof(*m));
    m->id = s->member_id;
    snprintf(m->name, sizeof(m->name), "%s", s->cfg.name);
    snprintf(m->peer_url, sizeof(m->peer_url), "%s", peer);
    snprintf(m->client_url, sizeof(m->client_url), "%s", client);
    m->learner = cur != NULL ? cur->learner : false;
}

static bool published(struct ms_server *s)
{
    struct ms_member self;
    struct ms_member *cur = ms_members_find(&s->fsm.members, s->member_id);

    self_record(s, &self);
    return cur != NULL && strcmp(cur->name, self.name) == 0 &&
           strcmp(cur->client_url, self.client_url) == 0 &&
           strcmp(cur->peer_url, self.peer_url) == 0;
}

static void on_publish_applied(struct ms_raft_propose_req *req, int status,
                               void *result)
{
    struct member_prop *mp = req->data;
    (void)result;
    mp->s->publishing = false;
    if (status != 0)
        ms_warn("publish: %s", ms_strerror(status));
    free(mp);
}

struct pub_req {
    struct ms_http_client_req creq;
    struct ms_server *s;
};

static void on_publish_answered(struct ms_http_client_req *creq, int status,
                                const struct ms_http_response *resp)
{
    struct pub_req *p = creq->data;
    p->s->publishing = false;
    if (status != 0 || resp->status != 200)
        ms_debug("publish via leader: %s",
                 status ? ms_strerror(status) : "not accepted");
    free(p);
}

/* Makes sure the table holds this member's name and URLs: the leader
 * proposes its own record; a follower asks the leader to. */
static void publish(struct ms_server *s)
{
    struct ms_member self;
    int rc;

    if (s->publishing || s->stopping || published(s))
        return;
    self_record(s, &self);
    if (ms_raft_is_leader(&s->raft)) {
        struct member_prop *mp = calloc(1, sizeof(*mp));
        if (mp == NULL)
            return;
        mp->req.data = mp;
        mp->s = s;
        s->publishing = true;
        {
            struct ms_buf b = MS_BUF_INIT;
            rc = ms_fsm_encode_member(
                    &self, false, s->cfg.join_existing ? 0 : s->cluster_id, &b);
            if (rc == 0)
                rc = ms_raft_propose(&s->raft, &mp->req, &b,
                                     on_publish_applied);
            ms_buf_free(&b);
        }
        if (rc != 0) {
            s->publishing = false;
            free(mp);
        }
        return;
    }
    const char *addr = leader_client(s);
    struct ms_http_client *cl;
    struct pub_req *p;
    char body[512];
    int n;

    if (addr == NULL || (cl = leader_conn(s, addr)) == NULL)
        return;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return;
    p->creq.data = p;
    p->s = s;
    n = snprintf(body, sizeof(body),
                 "{\"ID\":\"%" PRIu64 "\",\"name\":\"%s\",\"peerURLs\":[\"%s\"],"
                 "\"clientURLs\":[\"%s\"]}",
                 self.id, self.name, self.peer_url, self.client_url);
    s->publishing = true;
    struct ms_http_header h = {"Content-Type", "application/json"};
    if (ms_http_client_request(cl, &p->creq, "POST",
                               "/v3/cluster/member/publish", &h, 1, body,
                               (size_t)n, on_publish_answered) != 0) {
        s->publishing = false;
        free(p);
    }
}

/* Requests forwarded to a former leader would wait out the request
 * timeout (a leader cut off from us never answers): once another leader is
 * known, or we lead, their forwards are canceled now and each goes through
 * forward_failed like any failed forward (reads, and requests never
 * written, go to the new leader; a written write answers "leader
 * changed": its outcome is unknown). */
static void drop_stale_forwards(struct ms_server *s)
{
    const char *addr;

    if (s->fwd == NULL || ms_http_client_pending(s->fwd) == 0)
        return;
    addr = leader_client(s);
    if (addr == NULL && !ms_raft_is_leader(&s->raft))
        return;
    if (addr != NULL && strcmp(addr, s->fwd_addr) == 0)
        return;
    ms_info("forward: leader changed; failing %zu requests forwarded to %s",
            ms_http_client_pending(s->fwd), s->fwd_addr);
    ms_http_client_close(s->fwd, on_client_closed);
    s->fwd = NULL;
}

/* Called on Raft state changes and every tick. */
void ms_cluster_on_state(struct ms_server *s)
{
    uint64_t table_id = s->fsm.members.cluster_id;

    if (s->fsm.fatal && !s->stopping) {
        /* the node stopped applying (CRAFT_NOTES: apply must not fail):
         * serving stale data forever is worse than stopping loudly */
        ms_error("state machine failed (%s): stopping", s->fsm.errmsg);
        ms_server_stop(s, 1);
        return;
    }

    if (table_id != 0 && table_id != s->cluster_id && !s->stopping) {
        if (s->cfg.join_existing || !s->fresh) {
            /* joined, or restarted on existing data: the replicated id
             * wins over one derived from today's flags */
            s->cluster_id = table_id;
        } else {
            ms_error("cluster id mismatch: --initial-cluster gives cluster "
                     "%" PRIx64 " but the replicated state belongs to "
                     "cluster %" PRIx64 " (a leftover cluster on these "
                     "addresses?); refusing to serve",
                     s->cluster_id, table_id);
            ms_server_stop(s, 1);
            return;
        }
    }
    if (ms_members_was_removed(&s->fsm.members, s->member_id) &&
        !s->stopping) {
        ms_warn("this member (%" PRIx64 ") was removed from the cluster; "
                "stopping",
                s->member_id);
        ms_server_stop(s, 0);
        return;
    }
    publish(s);
    drop_stale_forwards(s);
    ms_cluster_kick(s);
}

/* --- membership API (leader side) ------------------------------------------------ */

static void write_members(struct ms_server *s, struct ms_buf *b)
{
    const struct ms_members *t = &s->fsm.members;
    ms_buf_puts(b, "\"members\":[");
    for (size_t i = 0; i < t->n; i++) {
        const struct ms_member *m = &t->m[i];
        ms_buf_printf(b, "%s{\"ID\":\"%" PRIu64 "\"", i ? "," : "", m->id);
        if (m->name[0])
            ms_buf_printf(b, ",\"name\":\"%s\"", m->name);
        ms_buf_printf(b, ",\"peerURLs\":[\"%s\"]", m->peer_url);
        if (m->client_url[0])
            ms_buf_printf(b, ",\"clientURLs\":[\"%s\"]", m->client_url);
        if (m->learner)
            ms_buf_puts(b, ",\"isLearner\":true");
        ms_buf_putc(b, '}');
    }
    ms_buf_putc(b, ']');
}

/* Answers c with {"header":..,["member":M,]"members":[..]}. */
static void answer_members(struct ms_call *c, const struct ms_member *added)
{
    struct ms_server *s = c->srv;
    struct ms_gw_header hdr = ms_server_header(s, 0);
    struct ms_buf b = MS_BUF_INIT;

    if (c->member_verb != NULL) {
        ms_grpc_api_members(c, added); /* a gRPC call: protobuf answer */
        return;
    }

    ms_buf_puts(&b, "{\"header\":");
    ms_gw_write_header(&b, &hdr);
    ms_buf_putc(&b, ',');
    if (added != NULL) {
        ms_buf_printf(&b, "\"member\":{\"ID\":\"%" PRIu64
                          "\",\"peerURLs\":[\"%s\"]%s},",
                      added->id, added->peer_url,
                      added->learner ? ",\"isLearner\":true" : "");
    }
    write_members(s, &b);
    ms_buf_putc(&b, '}');
    ms_call_respond(c, 200, "application/json", b.data, b.len);
    ms_buf_free(&b);
}

static void member_op_failed(struct ms_call *c, int rc, const char *what)
{
    struct ms_gw_error e;

    if (rc == MS_ENOTLEADER || rc == MS_ENOLEADER || rc == MS_ESHUTDOWN) {
        ms_call_fail(c, rc == MS_ESHUTDOWN ? rc : MS_ENOLEADER, NULL);
        return;
    }
    if (rc == MS_ENOTFOUND)
        ms_gw_error_set(&e, MS_GRPC_NOT_FOUND, "etcdserver: member not found");
    else if (rc == MS_EEXISTS)
        ms_gw_error_set(&e, MS_GRPC_FAILED_PRECONDITION,
                        "etcdserver: Peer URLs already exists");
    else
        ms_gw_error_set(&e, MS_GRPC_UNKNOWN, "%s: %s", what,
                        c->srv->raft.errmsg[0] ? c->srv->raft.errmsg
                                               : ms_strerror(rc));
    ms_call_error(c, &e);
}

struct change {
    struct ms_raft_change_req req;
    struct member_prop mp;
    struct ms_call *c;
    struct ms_member m;
    bool remove;
    bool added; /* answer with "member" (member add) */
};

struct notice {
    struct ms_http_client cl;
    struct ms_http_client_req req;
};

static void on_notice_closed(struct ms_http_client *cl)
{
    free(cl->data);
}

static void on_notice_answered(struct ms_http_client_req *req, int status,
                               const struct ms_http_response *resp)
{
    struct notice *n = req->data;
    (void)resp;
    if (status != 0)
        ms_info("removal notice not delivered (%s): the removed member "
                "will stay unable to elect a leader until stopped",
                ms_strerror(status));
    ms_http_client_close(&n->cl, on_notice_closed);
}

/* Tells a removed member so: C-Raft stops replicating to it, so it would
 * never learn it from the log (CRAFT_NOTES). Best effort. */
static void notify_removed(struct ms_server *s, const struct ms_member *m)
{
    struct ms_http_client_config cfg = {.connect_timeout_ms = 1000,
                                        .request_timeout_ms = 2000};
    struct ms_http_header h = {"Content-Type", "application/json"};
    char addr[64], err[MS_ERRMSG_SIZE], body[128];
    struct notice *n;
    int len;

    if (m->client_url[0] == '\0' ||
        ms_raft_normalize_address(m->client_url, addr, sizeof(addr), err) != 0)
        return;
    n = calloc(1, sizeof(*n));
    if (n == NULL)
        return;
    if (ms_http_client_init(&n->cl, &s->loop, addr, &cfg) != 0) {
        free(n);
        return;
    }
    n->cl.data = n;
    n->req.data = n;
    len = snprintf(body, sizeof(body),
                   "{\"ID\":\"%" PRIu64 "\",\"cluster_id\":\"%" PRIu64 "\"}",
                   m->id, s->cluster_id);
    if (ms_http_client_request(&n->cl, &n->req, "POST",
                               "/v3/cluster/member/removed", &h, 1, body,
                               (size_t)len, on_notice_answered) != 0)
        ms_http_client_close(&n->cl, on_notice_closed);
}

static void on_table_applied(struct ms_raft_propose_req *req, int status,
                             void *result)
{
    struct change *ch = (struct change *)((char *)req->data);
    struct ms_call *c = ch->c;
    (void)result;
    if (status != 0) {
        member_op_failed(c, status, "member table");
    } else {
        if (ch->remove)
            notify_removed(c->srv, &ch->m);
        answer_members(c, ch->added ? &ch->m : NULL);
    }
    free(ch);
}

static int parse_id(const cJSON *o, uint64_t *id);
static void bad_request(struct ms_call *c, const char *msg);

/* POST /v3/cluster/member/removed from the leader: stop if it names us. */
static void removed_notice(struct ms_call *c)
{
    struct ms_server *s = c->srv;
    cJSON *o = cJSON_ParseWithLength((const char *)c->req->body,
                                     c->req->body_len);
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(o, "cluster_id");
    uint64_t id = 0;
    bool ours = parse_id(o, &id) == 0 && id == s->member_id &&
                cJSON_IsString(cid) &&
                strtoull(cid->valuestring, NULL, 10) == s->cluster_id;

    cJSON_Delete(o);
    if (!ours) {
        bad_request(c, "removal notice: not for this member");
        return;
    }
    ms_call_respond(c, 200, "application/json", "{}", 2);
    ms_warn("this member (%" PRIx64 ") was removed from the cluster; "
            "stopping",
            s->member_id);
    ms_server_stop(s, 0);
}

/* After the Raft configuration change: record it in the member table. */
static void record_change(struct change *ch)
{
    struct ms_buf b = MS_BUF_INIT;
    struct ms_server *s = ch->c->srv;
    int rc = ms_fsm_encode_member(&ch->m, ch->remove,
                                  s->cfg.join_existing ? 0 : s->cluster_id,
                                  &b);

    ch->mp.req.data = ch;
    if (rc == 0)
        rc = ms_raft_propose(&ch->c->srv->raft, &ch->mp.req, &b,
                             on_table_applied);
    ms_buf_free(&b);
    if (rc != 0) {
        member_op_failed(ch->c, rc, "member table");
        free(ch);
    }
}

static void on_assigned(struct ms_raft_change_req *req, int status)
{
    struct change *ch = req->data;
    if (status != 0) {
        member_op_failed(ch->c, status, "assign role");
        free(ch);
        return;
    }
    record_change(ch);
}

static void on_added(struct ms_raft_change_req *req, int status)
{
    struct change *ch = req->data;
    int rc;

    if (status != 0) {
        member_op_failed(ch->c, status, "add");
        free(ch);
        return;
    }
    /* a spare replicates nothing: make it a standby (learner) at once; a
     * voter is promoted by a later assign once it has caught up, so an
     * unstarted member does not stall the change */
    rc = ms_raft_assign(&ch->c->srv->raft, &ch->req, ch->m.id,
                        MS_RAFT_STANDBY, on_assigned);
    if (rc != 0) {
        member_op_failed(ch->c, rc, "assign role");
        free(ch);
    }
}

static void on_removed(struct ms_raft_change_req *req, int status)
{
    struct change *ch = req->data;
    if (status != 0) {
        member_op_failed(ch->c, status, "remove");
        free(ch);
        return;
    }
    record_change(ch);
}

static void on_transferred(struct ms_raft_change_req *req, int status)
{
    struct change *ch = req->data;
    struct ms_call *c = ch->c;

    free(ch);
    if (status != 0) {
        member_op_failed(c, status, "transfer leadership");
        return;
    }
    /* the new leader removes us: forward the request to it */
    c->reforward = true;
    ms_cluster_route(c, c->run);
}

/* Parses the "ID" field (string or number) of a member request. */
static int parse_id(const cJSON *o, uint64_t *id)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "ID");
    char *end;

    if (cJSON_IsString(v)) {
        *id = strtoull(v->valuestring, &end, 10);
        return *end == '\0' && *id != 0 ? 0 : -1;
    }
    if (cJSON_IsNumber(v) && v->valuedouble > 0) {
        *id = (uint64_t)v->valuedouble;
        return 0;
    }
    return -1;
}

static void bad_request(struct ms_call *c, const char *msg)
{
    struct ms_gw_error e;
    ms_gw_error_set(&e, MS_GRPC_INVALID_ARGUMENT, "%s", msg);
    ms_call_error(c, &e);
}

/* The verb (add, remove, promote, publish) and the JSON arguments of a
 * member operation: from the gateway request, or as grpc.c put them. */
static void member_args(struct ms_call *c, const char **p, size_t *plen,
                        const char **body, size_t *blen)
{
    if (c->member_verb != NULL) {
        *p = c->member_verb;
        *plen = strlen(c->member_verb);
        *body = c->member_json;
        *blen = strlen(c->member_json);
        return;
    }
    *p = c->req->path + strlen("/v3/cluster/member/");
    *plen = c->req->path_len - strlen("/v3/cluster/member/");
    *body = (const char *)c->req->body;
    *blen = c->req->body_len;
}

static void run_member_op(struct ms_call *c)
{
    struct ms_server *s = c->srv;
    struct change *ch;
    const char *p, *body;
    size_t plen, blen;
    cJSON *o;
    int rc;

    member_args(c, &p, &plen, &body, &blen);
    o = cJSON_ParseWithLength(body, blen);
    if (blen > 0 && !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        bad_request(c, "body: expected a JSON object");
        return;
    }
    ch = calloc(1, sizeof(*ch));
    if (ch == NULL) {
        cJSON_Delete(o);
        ms_call_fail(c, MS_ENOMEM, NULL);
        return;
    }
    ch->c = c;
    ch->req.data = ch;
    if (plen == 3 && memcmp(p, "add", 3) == 0) {
        const cJSON *urls = cJSON_GetObjectItemCaseSensitive(o, "peerURLs");
        const cJSON *u0 = cJSON_GetArrayItem(urls, 0);
        char addr[64], err[MS_ERRMSG_SIZE];
        if (!cJSON_IsString(u0) ||
            ms_raft_normalize_address(u0->valuestring, addr, sizeof(addr),
                                      err) != 0 ||
            strlen(u0->valuestring) >= sizeof(ch->m.peer_url)) {
            bad_request(c, "etcdserver: peerURLs: expected one http://IP:port");
            goto done_free;
        }
        ch->m.id = ms_server_member_id(addr);
        snprintf(ch->m.peer_url, sizeof(ch->m.peer_url), "%s://%s",
                 ms_server_peer_tls(&s->cfg) ? "https" : "http", addr);
        ch->added = true;
        ch->m.learner = cJSON_IsTrue(
            cJSON_GetObjectItemCaseSensitive(o, "isLearner"));
        if (ms_members_find(&s->fsm.members, ch->m.id) != NULL) {
            member_op_failed(c, MS_EEXISTS, "add");
            goto done_free;
        }
        rc = ms_raft_add(&s->raft, &ch->req, ch->m.id, addr, on_added);
        if (rc != 0) {
            member_op_failed(c, rc, "add");
            goto done_free;
        }
        if (!ch->m.learner) {
            /* voters: promoted once caught up (see promote) */
            ch->m.learner = true;
            ms_info("member add %" PRIx64 " as learner; promote it to a voter "
                    "once started (member promote)",
                    ch->m.id);
        }
    } else if (plen == 7 && memcmp(p, "promote", 7) == 0) {
        struct ms_member *cur;
        if (parse_id(o, &ch->m.id) != 0) {
            bad_request(c, "ID: expected a member id");
            goto done_free;
        }
        cur = ms_members_find(&s->fsm.members, ch->m.id);
        if (cur == NULL) {
            member_op_failed(c, MS_ENOTFOUND, "promote");
            goto done_free;
        }
        ch->m = *cur;
        ch->m.learner = false;
        rc = ms_raft_assign(&s->raft, &ch->req, ch->m.id, MS_RAFT_VOTER,
                            on_assigned);
        if (rc != 0) {
            member_op_failed(c, rc, "promote");
            goto done_free;
        }
    } else if (plen == 6 && memcmp(p, "remove", 6) == 0) {
        if (parse_id(o, &ch->m.id) != 0) {
            bad_request(c, "ID: expected a member id");
            goto done_free;
        }
        ch->remove = true;
        {
            struct ms_member *cur = ms_members_find(&s->fsm.members, ch->m.id);
            if (cur == NULL) {
                member_op_failed(c, MS_ENOTFOUND, "remove");
                goto done_free;
            }
            ch->m = *cur; /* its client URL, for the removal notice */
        }
        if (ch->m.id == s->member_id) {
            /* removing the leader: hand leadership over first */
            rc = ms_raft_transfer(&s->raft, &ch->req, 0, on_transferred);
        } else {
            rc = ms_raft_remove(&s->raft, &ch->req, ch->m.id, on_removed);
        }
        if (rc != 0) {
            member_op_failed(c, rc, "remove");
            goto done_free;
        }
    } else if (plen == 7 && memcmp(p, "publish", 7) == 0) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, "name");
        const cJSON *pu = cJSON_GetArrayItem(
            cJSON_GetObjectItemCaseSensitive(o, "peerURLs"), 0);
        const cJSON *cu = cJSON_GetArrayItem(
            cJSON_GetObjectItemCaseSensitive(o, "clientURLs"), 0);
        struct ms_member *cur;
        if (parse_id(o, &ch->m.id) != 0 || !cJSON_IsString(n) ||
            !cJSON_IsString(pu) || !cJSON_IsString(cu) ||
            strlen(n->valuestring) >= sizeof(ch->m.name) ||
            strlen(pu->valuestring) >= sizeof(ch->m.peer_url) ||
            strlen(cu->valuestring) >= sizeof(ch->m.client_url)) {
            bad_request(c, "publish: expected ID, name, peerURLs, clientURLs");
            goto done_free;
        }
        cur = ms_members_find(&s->fsm.members, ch->m.id);
        strcpy(ch->m.name, n->valuestring);
        strcpy(ch->m.peer_url, pu->valuestring);
        strcpy(ch->m.client_url, cu->valuestring);
        ch->m.learner = cur != NULL ? cur->learner : false;
        record_change(ch);
    } else {
        ms_call_respond(c, 404, "text/plain; charset=utf-8", "Not Found",
                        9);
        goto done_free;
    }
    cJSON_Delete(o);
    return;
done_free:
    cJSON_Delete(o);
    free(ch);
}

void ms_cluster_member_run(struct ms_call *c)
{
    run_member_op(c);
}

void ms_cluster_member_op(struct ms_call *c)
{
    c->kind = MS_API_V3_CLUSTER;
    if (strcmp(c->req->method, "POST") != 0) {
        ms_call_respond(c, 405, "text/plain; charset=utf-8",
                        "Method Not Allowed", 18);
        return;
    }
    if (c->req->path_len == strlen("/v3/cluster/member/removed") &&
        memcmp(c->req->path, "/v3/cluster/member/removed",
               c->req->path_len) == 0) {
        removed_notice(c);
        return;
    }
    if (c->srv->fsm.auth.enabled) {
        /* add, remove and promote are root's, as etcd; publish and the
         * removal notice are members talking to each other */
        static const char *const admin[] = {"/v3/cluster/member/add",
                                            "/v3/cluster/member/remove",
                                            "/v3/cluster/member/promote"};
        for (size_t i = 0; i < 3; i++) {
            int rc;
            if (c->req->path_len != strlen(admin[i]) ||
                memcmp(c->req->path, admin[i], c->req->path_len) != 0)
                continue;
            if ((rc = ms_auth_api_root(c)) != 0) {
                ms_auth_api_fail(c, rc);
                return;
            }
        }
    }
    ms_cluster_route(c, run_member_op);
}

void ms_cluster_close(struct ms_server *s)
{
    if (s->fwd != NULL) {
        ms_http_client_close(s->fwd, on_client_closed);
        s->fwd = NULL;
    }
}
