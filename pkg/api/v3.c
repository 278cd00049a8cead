/* v3.c - the etcd v3 JSON gateway endpoints: kv, lease grant and revoke
 * (watch.c and lease.c serve the others). */
#include "api/server_priv.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

static void render_gw(struct ms_call *c, int status, const struct ms_result *r)
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
    if (ms_gw_write_result(b, &hdr, r) != 0) {
        ms_call_fail(c, MS_ENOMEM, NULL);
        return;
    }
    ms_call_respond(c, 200, "application/json", b->data, b->len);
    if (b->cap > 64 * 1024)
        ms_buf_free(b); /* a large range answer: do not keep its memory */
}

static enum ms_api_kind kind_of(enum ms_gw_endpoint ep)
{
    switch (ep) {
    case MS_GW_PUT:
        return MS_API_V3_PUT;
    case MS_GW_RANGE:
        return MS_API_V3_RANGE;
    case MS_GW_DELETE_RANGE:
        return MS_API_V3_DELETE_RANGE;
    case MS_GW_TXN:
        return MS_API_V3_TXN;
    case MS_GW_COMPACTION:
        return MS_API_V3_COMPACTION;
    default:
        return MS_API_V3_LEASE;
    }
}

/* A lease id for a grant that did not choose one: unique per member (the
 * member id's low bits, then a counter), positive, never 0. */
int64_t ms_v3_new_lease_id(struct ms_server *s)
{
    static uint64_t counter; /* loop thread only */
    uint64_t t = ms_now_ns();
    uint64_t id = ((s->member_id & 0xffff) << 47) ^ ((t << 12) & 0x7fffffffffffull)
                  ^ ++counter;
    id &= 0x7fffffffffffffffull;
    return id ? (int64_t)id : 1;
}

void ms_v3_handle(struct ms_call *c)
{
    struct ms_http_request *req = c->req;
    enum ms_gw_endpoint ep;
    struct ms_gw_error e;

    if (ms_gw_endpoint_from_path(req->path, req->path_len, &ep) != 0) {
        /* the streaming and lease endpoints (watch.c, lease.c) */
        if (ms_watch_v3(c) || ms_lease_v3(c) || ms_auth_api_v3(c))
            return;
        ms_call_respond(c, 404, "text/plain; charset=utf-8", "Not Found",
                        9);
        return;
    }
    c->kind = kind_of(ep);
    if (strcmp(req->method, "POST") != 0) {
        ms_call_respond(c, 405, "text/plain; charset=utf-8",
                        "Method Not Allowed", 18);
        return;
    }
    if (ms_gw_parse(ep, (const char *)req->body, req->body_len, 0, &c->arena,
                    &c->op, &e) != 0) {
        ms_call_error(c, &e);
        return;
    }
    if (c->op.type == MS_OP_LEASE_GRANT && c->op.u.lease_grant.id == 0)
        c->op.u.lease_grant.id = ms_v3_new_lease_id(c->srv);
    if (c->op.type == MS_OP_LEASE_GRANT)
        c->op.u.lease_grant.ttl =
            ms_lease_grant_ttl(c->srv, c->op.u.lease_grant.ttl);
    c->render = render_gw;
    ms_call_execute(c);
}
