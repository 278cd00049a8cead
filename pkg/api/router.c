/* router.c - request dispatch, the life of a call, and the shared write and
 * read paths (proposer for writes, read index for linearizable reads). */
#include "api/server_priv.h"
#include "util/error.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

static bool prefix(const struct ms_http_request *req, const char *p)
{
    size_t n = strlen(p);
    return req->path_len >= n && memcmp(req->path, p, n) == 0;
}

static bool is(const struct ms_http_request *req, const char *p)
{
    return req->path_len == strlen(p) && memcmp(req->path, p, req->path_len) == 0;
}

enum { WAIT_PROPOSAL = 1, WAIT_READ = 2 };

static void live_unlink(struct ms_call *c)
{
    struct ms_server *s = c->srv;

    if (!c->waiting_on)
        return;
    if (c->live_prev != NULL)
        c->live_prev->live_next = c->live_next;
    else
        s->live = c->live_next;
    if (c->live_next != NULL)
        c->live_next->live_prev = c->live_prev;
    c->live_prev = c->live_next = NULL;
    c->waiting_on = 0;
}

static void live_link(struct ms_call *c, int what)
{
    struct ms_server *s = c->srv;

    c->waiting_on = what;
    c->op_deadline_ns =
        ms_now_ns() + (uint64_t)s->cfg.request_timeout_ms * 1000000;
    c->live_prev = NULL;
    c->live_next = s->live;
    if (s->live != NULL)
        s->live->live_prev = c;
    s->live = c;
}

void ms_api_sweep(struct ms_server *s)
{
    uint64_t now = ms_now_ns();
    struct ms_call *c = s->live, *next;

    for (; c != NULL; c = next) {
        next = c->live_next;
        if (now < c->op_deadline_ns)
            continue;
        int what = c->waiting_on;
        live_unlink(c);
        s->timeouts++;
        if (what == WAIT_PROPOSAL)
            ms_batch_cancel(&s->bp, &c->prop, MS_ETIMEOUT);
        else
            ms_readindex_cancel(&s->ri, &c->rw, MS_ETIMEOUT);
    }
}

static void call_free(struct ms_call *c)
{
    live_unlink(c);
    ms_arena_free(&c->arena);
    free(c);
}

static void count(struct ms_call *c, int status)
{
    struct ms_api_stats *st = &c->srv->api[c->kind];
    int cls = status / 100;

    if (cls >= 1 && cls <= 5)
        st->by_class[cls]++;
    ms_histogram_observe(&st->latency,
                         (double)(ms_now_ns() - c->start_ns) / 1e9);
}

void ms_call_respond(struct ms_call *c, int status, const char *ctype,
                     const void *body, size_t len)
{
    count(c, status);
    ms_http_respond(c->req, status, ctype, body, len);
    call_free(c);
}

void ms_call_error(struct ms_call *c, const struct ms_gw_error *e)
{
    struct ms_buf *b = &c->srv->scratch;

    ms_buf_reset(b);
    ms_gw_error_json(e, b);
    ms_call_respond(c, e->http_status, "application/json", b->data, b->len);
}

void ms_call_fail(struct ms_call *c, int ms_code, const char *detail)
{
    struct ms_gw_error e;

    /* a proposal or barrier on a leader that lost its leadership: the
     * outcome is unknown, as etcd says it */
    if (ms_code == MS_ENOTLEADER && detail == NULL)
        detail = "etcdserver: leader changed";

    ms_gw_error_from_code(ms_code, detail, &e);
    ms_call_error(c, &e);
}

void ms_api_on_http_error(enum ms_http_error_kind kind, const char *message,
                          struct ms_http_error_reply *reply, void *data)
{
    struct ms_gw_error e;
    (void)data;

    switch (kind) {
    case MS_HTTP_ERR_BODY_TOO_LARGE:
        /* what etcd's gateway answers for a body over --max-request-bytes */
        ms_gw_error_from_code(MS_ETOOLARGE, NULL, &e);
        break;
    case MS_HTTP_ERR_HEADER_TOO_LARGE:
        ms_gw_error_set(&e, MS_GRPC_INVALID_ARGUMENT, "%s", message);
        e.http_status = 431;
        break;
    case MS_HTTP_ERR_HEADER_TIMEOUT:
        ms_gw_error_set(&e, MS_GRPC_DEADLINE_EXCEEDED, "%s", message);
        e.http_status = 408;
        break;
    case MS_HTTP_ERR_TOO_MANY_CONNECTIONS:
        ms_gw_error_set(&e, MS_GRPC_UNAVAILABLE, "%s", message);
        e.http_status = 503;
        break;
    case MS_HTTP_ERR_BAD_REQUEST:
    default:
        ms_gw_error_set(&e, MS_GRPC_INVALID_ARGUMENT, "%s", message);
        e.http_status = 400;
        break;
    }
    reply->status = e.http_status;
    reply->content_type = "application/json";
    ms_buf_reset(&reply->body);
    ms_gw_error_json(&e, &reply->body);
}

/* --- execution ------------------------------------------------------------ */

static void on_proposed(struct ms_proposal *p, int status,
                        const struct ms_result *r)
{
    struct ms_call *c = p->data;
    live_unlink(c);
    c->render(c, status, r);
}

void ms_call_read_done(struct ms_call *c)
{
    live_unlink(c);
}

void ms_call_wait_read(struct ms_call *c, ms_read_cb cb)
{
    c->rw.data = c;
    c->rw.cb = cb;
    if (ms_space_local_read(c->srv)) {
        /* out of space: a barrier would be a log write (space.c) */
        cb(&c->rw, 0);
        return;
    }
    live_link(c, WAIT_READ);
    ms_readindex_wait(&c->srv->ri, &c->rw);
}

static void serve_read(struct ms_call *c)
{
    struct ms_results rs = {0};
    char err[MS_ERRMSG_SIZE];
    int rc;

    rc = ms_store_read(c->srv->store, &c->op.u.range, &rs, err, sizeof(err));
    if (rc != 0) {
        ms_error("read: %s", err);
        c->render(c, rc, NULL);
    } else {
        c->render(c, 0, &rs.r[0]);
    }
    ms_results_free(&rs);
}

static void on_read_ready(struct ms_read_waiter *w, int status)
{
    struct ms_call *c = w->data;

    live_unlink(c);
    if (status != 0)
        c->render(c, status, NULL);
    else
        serve_read(c);
}

static void execute_on_leader(struct ms_call *c)
{
    struct ms_server *s = c->srv;
    int rc;

    if (c->op.type == MS_OP_RANGE) {
        ms_call_wait_read(c, on_read_ready);
        return;
    }
    c->prop.data = c;
    c->prop.cb = on_proposed;
    live_link(c, WAIT_PROPOSAL);
    rc = ms_batch_submit(&s->bp, &c->op, &c->prop);
    if (rc != 0) {
        live_unlink(c);
        c->render(c, rc, NULL);
    }
}

void ms_call_execute(struct ms_call *c)
{
    if (c->op.type == MS_OP_RANGE && c->op.u.range.serializable) {
        serve_read(c); /* local, at once, on any member */
        return;
    }
    if (ms_space_refuses(c->srv, &c->op)) {
        c->render(c, MS_ENOSPACE, NULL);
        return;
    }
    ms_cluster_route(c, execute_on_leader);
}

/* --- dispatch ------------------------------------------------------------- */

void ms_api_on_request(struct ms_http_request *req, void *data)
{
    struct ms_server *s = data;
    struct ms_call *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        ms_http_respond(req, 503, "text/plain", "out of memory\n", 14);
        return;
    }
    c->srv = s;
    c->req = req;
    c->start_ns = ms_now_ns();
    c->kind = MS_API_OTHER;
    c->arena.chunk_size = 1024;
    req->data = c;

    if (is(req, "/v3/maintenance/status") || prefix(req, "/v3/cluster/") ||
        is(req, "/health") || is(req, "/metrics") || prefix(req, "/admin/")) {
        ms_admin_handle(c);
    } else if (prefix(req, "/v3/")) {
        ms_v3_handle(c);
    } else if (is(req, "/kv") || prefix(req, "/kv/")) {
        ms_rest_handle(c);
    } else {
        ms_call_respond(c, 404, "text/plain; charset=utf-8", "Not Found",
                        9);
    }
}
