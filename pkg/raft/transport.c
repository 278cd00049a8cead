/* transport.c - TCP_NODELAY around C-Raft's stock TCP transport. */
#include "raft/transport.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

/* Linux 6.15+ (include/uapi/linux/tcp.h); older kernels refuse them with
 * ENOPROTOOPT and keep their defaults. */
#ifndef TCP_RTO_MIN_US
#define TCP_RTO_MIN_US 45
#endif
#ifndef TCP_DELACK_MAX_US
#define TCP_DELACK_MAX_US 46
#endif
/* Lower bound of the retransmission timeout on peer connections. Linux's
 * default floor is 200 ms whatever the RTT, and raft messages are small:
 * a lost segment usually has no followers to trigger a fast retransmit,
 * so each loss stalls the stream (and every entry behind it) for 200 ms
 * or more. With 20% loss on the peer links that took a 3-member cluster
 * from 29k to 600 puts/s (tools/netfault loss). The kernel still adapts
 * the timeout to the measured RTT above this floor. */
#define PEER_RTO_MIN_US 5000
#define PEER_DELACK_MAX_US 5000

static void tune(struct uv_stream_s *stream)
{
    uv_os_fd_t fd;
    int v;

    if (stream == NULL || stream->type != UV_TCP)
        return;
    uv_tcp_nodelay((uv_tcp_t *)stream, 1);
    if (uv_fileno((uv_handle_t *)stream, &fd) != 0)
        return;
    v = PEER_RTO_MIN_US;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_RTO_MIN_US, &v, sizeof v);
    v = PEER_DELACK_MAX_US;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_DELACK_MAX_US, &v, sizeof v);
}

static int t_init(struct raft_uv_transport *outer, raft_id id,
                  const char *address)
{
    struct ms_raft_transport *t = outer->impl;
    int rc = t->inner.init(&t->inner, id, address);
    if (rc != 0)
        memcpy(outer->errmsg, t->inner.errmsg, sizeof(outer->errmsg));
    return rc;
}

static void on_accept(struct raft_uv_transport *inner, raft_id id,
                      const char *address, struct uv_stream_s *stream)
{
    struct ms_raft_transport *t = inner->data;
    tune(stream);
    t->accept_cb(&t->outer, id, address, stream);
}

static int t_listen(struct raft_uv_transport *outer, raft_uv_accept_cb cb)
{
    struct ms_raft_transport *t = outer->impl;
    int rc;

    t->accept_cb = cb;
    rc = t->inner.listen(&t->inner, on_accept);
    if (rc != 0)
        memcpy(outer->errmsg, t->inner.errmsg, sizeof(outer->errmsg));
    return rc;
}

/* One connect in flight: raft's request and ours for the inner transport. */
struct connect {
    struct raft_uv_connect req;
    struct raft_uv_connect *outer;
};

static void on_connect(struct raft_uv_connect *req, struct uv_stream_s *stream,
                       int status)
{
    struct connect *c = req->data;
    struct raft_uv_connect *outer = c->outer;

    free(c);
    if (status == 0)
        tune(stream);
    outer->cb(outer, stream, status);
}

static int t_connect(struct raft_uv_transport *outer,
                     struct raft_uv_connect *req, raft_id id,
                     const char *address, raft_uv_connect_cb cb)
{
    struct ms_raft_transport *t = outer->impl;
    struct connect *c = malloc(sizeof(*c));
    int rc;

    if (c == NULL)
        return RAFT_NOMEM;
    req->cb = cb;
    c->req.data = c;
    c->outer = req;
    rc = t->inner.connect(&t->inner, &c->req, id, address, on_connect);
    if (rc != 0) {
        memcpy(outer->errmsg, t->inner.errmsg, sizeof(outer->errmsg));
        free(c);
    }
    return rc;
}

static void on_closed(struct raft_uv_transport *inner)
{
    struct ms_raft_transport *t = inner->data;
    if (t->close_cb != NULL)
        t->close_cb(&t->outer);
}

static void t_close(struct raft_uv_transport *outer,
                    raft_uv_transport_close_cb cb)
{
    struct ms_raft_transport *t = outer->impl;
    t->close_cb = cb;
    t->inner.close(&t->inner, on_closed);
}

int ms_raft_transport_init(struct ms_raft_transport *t, struct uv_loop_s *loop)
{
    int rc;

    memset(t, 0, sizeof(*t));
    rc = raft_uv_tcp_init(&t->inner, loop);
    if (rc != 0)
        return rc;
    t->inner.data = t;
    t->outer.impl = t;
    t->outer.init = t_init;
    t->outer.listen = t_listen;
    t->outer.connect = t_connect;
    t->outer.close = t_close;
    return 0;
}

void ms_raft_transport_close(struct ms_raft_transport *t)
{
    raft_uv_tcp_close(&t->inner);
}
