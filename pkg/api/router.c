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

static void call_free(struct ms_call *c)
{
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
    struct ms_buf b = MS_BUF_INIT;

    ms_gw_error_json(e, &b);
    ms_call_respond(c, e->http_status, "application/json", b.data, b.len);
    ms_buf_free(&b);
}

void ms_call_fail(struct ms_call *c, int ms_code, const char *detail)
{
    struct ms_gw_error e;

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
    c->render(c, status, r);
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

    if (status != 0)
        c->render(c, status, NULL);
    else
        serve_read(c);
}

void ms_call_execute(struct ms_call *c)
{
    struct ms_server *s = c->srv;
    int rc;

    if (c->op.type == MS_OP_RANGE) {
        if (c->op.u.range.serializable) {
            serve_read(c);
            return;
        }
        c->rw.data = c;
        c->rw.cb = on_read_ready;
        ms_readindex_wait(&s->ri, &c->rw);
        return;
    }
    c->prop.data = c;
    c->prop.cb = on_proposed;
    rc = ms_batch_submit(&s->bp, &c->op, &c->prop);
    if (rc != 0)
        c->render(c, rc, NULL);
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
        ms_call_respond(c, 404, "text/plain; charset=utf-8",
                        "404 page not found\n", 19);
    }
}
