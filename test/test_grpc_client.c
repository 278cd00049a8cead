/* test_grpc_client.c - pkg/grpc/client against pkg/grpc/server on one loop
 * over loopback: answers and statuses, concurrent calls, connect failure,
 * deadlines, close. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "grpc/client.h"
#include "grpc/server.h"
#include "util/error.h"

#define NCALLS 64

/* A loopback listener whose connections go to the gRPC server once their
 * first bytes (the preface) are in; the server's handler echoes a message,
 * answers "fail" with status 3 and a non-ASCII text, and keeps "hang"
 * unanswered until the fixture ends. */
struct fx {
    uv_loop_t loop;
    uv_tcp_t listener;
    struct ms_grpc_server srv;
    char addr[64];
    struct ms_grpc_call *hung;
    int server_closed, client_closed;
};

struct pre {
    uv_tcp_t tcp;
    struct fx *fx;
    char buf[256];
    size_t len;
};

struct got {
    int done, rc, status;
    char message[200];
    uint8_t msg[64];
    size_t msg_len;
};

static void on_msg(struct ms_grpc_call *call, const uint8_t *msg, size_t len)
{
    struct fx *fx = call->srv->data;

    if (msg == NULL)
        return; /* half-close after the message: already answered */
    if (len == 4 && memcmp(msg, "fail", 4) == 0) {
        ms_grpc_finish(call, 3, "etcdserver: key is not provided \xc3\xbc");
    } else if (len == 4 && memcmp(msg, "hang", 4) == 0) {
        fx->hung = call;
    } else {
        ms_grpc_send(call, msg, len);
        ms_grpc_finish(call, 0, "");
    }
}

static void on_cancel(struct ms_grpc_call *call)
{
    (void)call;
}

static void on_call(struct ms_grpc_call *call, void *data)
{
    (void)data;
    call->on_message = on_msg;
    call->on_cancel = on_cancel;
}

static void pre_closed(uv_handle_t *h)
{
    free(h->data);
}

static void pre_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct pre *p = h->data;
    (void)hint;
    *b = uv_buf_init(p->buf + p->len, (unsigned)(sizeof(p->buf) - p->len));
}

/* Once the preface is in, hands a duplicate of the socket to the server. */
static void pre_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct pre *p = s->data;
    uv_os_fd_t fd;
    (void)b;

    if (n < 0) {
        uv_close((uv_handle_t *)&p->tcp, pre_closed);
        return;
    }
    p->len += (size_t)n;
    if (p->len < 24)
        return;
    uv_read_stop(s);
    assert_int_equal(uv_fileno((uv_handle_t *)&p->tcp, &fd), 0);
    assert_int_equal(ms_grpc_server_adopt(&p->fx->srv, dup(fd), NULL, p->buf,
                                          p->len, "127.0.0.1:1"),
                     0);
    uv_close((uv_handle_t *)&p->tcp, pre_closed);
}

static void on_conn(uv_stream_t *l, int status)
{
    struct pre *p = calloc(1, sizeof(*p));

    assert_int_equal(status, 0);
    assert_non_null(p);
    p->fx = l->data;
    uv_tcp_init(l->loop, &p->tcp);
    p->tcp.data = p;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&p->tcp), 0);
    uv_read_start((uv_stream_t *)&p->tcp, pre_alloc, pre_read);
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    struct sockaddr_in sa;
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    assert_non_null(fx);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    assert_int_equal(ms_grpc_server_init(&fx->srv, &fx->loop, NULL, on_call),
                     0);
    fx->srv.data = fx;
    uv_tcp_init(&fx->loop, &fx->listener);
    fx->listener.data = fx;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    assert_int_equal(
        uv_tcp_bind(&fx->listener, (const struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&fx->listener, 16, on_conn), 0);
    uv_tcp_getsockname(&fx->listener, (struct sockaddr *)&ss, &len);
    snprintf(fx->addr, sizeof(fx->addr), "127.0.0.1:%d",
             ntohs(((struct sockaddr_in *)&ss)->sin_port));
    *state = fx;
    return 0;
}

static void server_closed(struct ms_grpc_server *s)
{
    ((struct fx *)s->data)->server_closed = 1;
}

static int teardown(void **state)
{
    struct fx *fx = *state;

    if (fx->hung != NULL)
        ms_grpc_finish(fx->hung, 1, "test over");
    ms_grpc_server_stop(&fx->srv, server_closed);
    uv_close((uv_handle_t *)&fx->listener, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_true(fx->server_closed);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    free(fx);
    return 0;
}

static void got_cb(struct ms_grpc_client_call *call, int rc,
                   const struct ms_grpc_client_reply *r)
{
    struct got *g = call->data;

    g->done++;
    g->rc = rc;
    if (rc != 0)
        return;
    g->status = r->status;
    snprintf(g->message, sizeof(g->message), "%s", r->message);
    g->msg_len = r->msg_len;
    if (r->msg != NULL && r->msg_len <= sizeof(g->msg))
        memcpy(g->msg, r->msg, r->msg_len);
}

static void client_closed(struct ms_grpc_client *c)
{
    ((struct fx *)c->data)->client_closed = 1;
}

static void run_until(struct fx *fx, const int *flag)
{
    for (int i = 0; i < 100000 && !*flag; i++)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_true(*flag);
}

static void close_client(struct fx *fx, struct ms_grpc_client *c)
{
    c->data = fx;
    ms_grpc_client_close(c, client_closed);
    run_until(fx, &fx->client_closed);
}

/* A call is answered with the message and status 0; an error answer gives
 * its code and the decoded grpc-message, no message. */
static void test_call_ok_and_error(void **state)
{
    struct fx *fx = *state;
    struct ms_grpc_client c;
    struct ms_grpc_client_call call = {0};
    struct got g = {0}, e = {0};

    assert_int_equal(ms_grpc_client_init(&c, &fx->loop, fx->addr, NULL), 0);
    call.data = &g;
    assert_int_equal(
        ms_grpc_client_call(&c, &call, "/t.S/Echo", "hello", 5, got_cb), 0);
    assert_int_equal(ms_grpc_client_pending(&c), 1);
    run_until(fx, &g.done);
    assert_int_equal(g.rc, 0);
    assert_int_equal(g.status, 0);
    assert_int_equal(g.msg_len, 5);
    assert_memory_equal(g.msg, "hello", 5);
    assert_int_equal(ms_grpc_client_pending(&c), 0);
    call.data = &e;
    assert_int_equal(
        ms_grpc_client_call(&c, &call, "/t.S/Echo", "fail", 4, got_cb), 0);
    run_until(fx, &e.done);
    assert_int_equal(e.rc, 0);
    assert_int_equal(e.status, 3);
    assert_string_equal(e.message, "etcdserver: key is not provided \xc3\xbc");
    assert_int_equal(e.msg_len, 0);
    assert_int_equal(g.done, 1);
    close_client(fx, &c);
}

/* Many calls in flight on one connection each get their own answer. */
static void test_concurrent_calls(void **state)
{
    struct fx *fx = *state;
    struct ms_grpc_client c;
    static struct ms_grpc_client_call calls[NCALLS];
    static struct got g[NCALLS];
    char body[NCALLS][16];
    int all = 0;

    assert_int_equal(ms_grpc_client_init(&c, &fx->loop, fx->addr, NULL), 0);
    memset(g, 0, sizeof(g));
    for (int i = 0; i < NCALLS; i++) {
        snprintf(body[i], sizeof(body[i]), "msg %d", i);
        calls[i].data = &g[i];
        assert_int_equal(ms_grpc_client_call(&c, &calls[i], "/t.S/Echo",
                                             body[i], strlen(body[i]), got_cb),
                         0);
    }
    for (int n = 0; n < 100000 && !all; n++) {
        uv_run(&fx->loop, UV_RUN_ONCE);
        all = 1;
        for (int i = 0; i < NCALLS; i++)
            all &= g[i].done;
    }
    for (int i = 0; i < NCALLS; i++) {
        assert_int_equal(g[i].done, 1);
        assert_int_equal(g[i].rc, 0);
        assert_int_equal(g[i].msg_len, strlen(body[i]));
        assert_memory_equal(g[i].msg, body[i], g[i].msg_len);
    }
    assert_int_equal(ms_grpc_server_connections(&fx->srv), 1);
    close_client(fx, &c);
}

/* A call past request_timeout_ms fails with MS_ETIMEOUT; closing the
 * client fails a pending call with MS_ECANCELED and then calls back. */
static void test_timeout_and_close(void **state)
{
    struct fx *fx = *state;
    struct ms_grpc_client c;
    struct ms_grpc_client_config cfg = {.request_timeout_ms = 100};
    struct ms_grpc_client_call call = {0}, call2 = {0};
    struct got g = {0}, h = {0};

    assert_int_equal(ms_grpc_client_init(&c, &fx->loop, fx->addr, &cfg), 0);
    call.data = &g;
    assert_int_equal(
        ms_grpc_client_call(&c, &call, "/t.S/Echo", "hang", 4, got_cb), 0);
    run_until(fx, &g.done);
    assert_int_equal(g.rc, MS_ETIMEOUT);
    if (strstr(c.errmsg, "timed out") == NULL)
        fail_msg("errmsg: %s", c.errmsg);
    /* the connection still serves */
    call.data = &h;
    assert_int_equal(
        ms_grpc_client_call(&c, &call, "/t.S/Echo", "again", 5, got_cb), 0);
    run_until(fx, &h.done);
    assert_int_equal(h.rc, 0);
    memset(&g, 0, sizeof(g));
    call2.data = &g;
    assert_int_equal(
        ms_grpc_client_call(&c, &call2, "/t.S/Echo", "more", 4, got_cb), 0);
    c.data = fx;
    ms_grpc_client_close(&c, client_closed);
    assert_int_equal(g.done, 1);
    assert_int_equal(g.rc, MS_ECANCELED);
    assert_int_equal(
        ms_grpc_client_call(&c, &call2, "/t.S/Echo", "x", 1, got_cb),
        MS_ESHUTDOWN);
    run_until(fx, &fx->client_closed);
}

/* Nobody listening: the call fails with MS_EIO naming connect; a bad
 * address or path is refused at once. */
static void test_connect_refused_and_bad_args(void **state)
{
    struct fx *fx = *state;
    struct ms_grpc_client c;
    struct ms_grpc_client_call call = {0};
    struct got g = {0};
    uv_tcp_t t;
    struct sockaddr_in sa;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char addr[64];

    /* a port that was free a moment ago */
    uv_tcp_init(&fx->loop, &t);
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_bind(&t, (const struct sockaddr *)&sa, 0);
    uv_tcp_getsockname(&t, (struct sockaddr *)&ss, &len);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d",
             ntohs(((struct sockaddr_in *)&ss)->sin_port));
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&fx->loop, UV_RUN_NOWAIT);

    assert_int_equal(ms_grpc_client_init(&c, &fx->loop, "nohost", NULL),
                     MS_EINVAL);
    assert_int_equal(ms_grpc_client_init(&c, &fx->loop, addr, NULL), 0);
    assert_int_equal(ms_grpc_client_call(&c, &call, "noslash", "x", 1, got_cb),
                     MS_EINVAL);
    call.data = &g;
    assert_int_equal(
        ms_grpc_client_call(&c, &call, "/t.S/Echo", "x", 1, got_cb), 0);
    run_until(fx, &g.done);
    assert_int_equal(g.rc, MS_EIO);
    assert_non_null(strstr(c.errmsg, "connect"));
    close_client(fx, &c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_call_ok_and_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_and_close, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_connect_refused_and_bad_args,
                                        setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN); /* as the binaries do: writes to closed peers */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
