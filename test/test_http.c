/* test_http.c - pkg/http: server keep-alive, pipelining, async and streamed
 * answers, limits and errors, lifetimes; client pipelining and failures. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "http/client.h"
#include "http/server.h"

#define container_of(p, type, member)                                          \
    ((type *)(void *)((char *)(p)-offsetof(type, member)))

/* --- fixture: a loop, a server, a guard timer, a thread-done signal --- */

#define MAX_HELD 8
#define NCLIENT 200

struct fx {
    uv_loop_t loop;
    uv_timer_t guard;
    uv_async_t async;
    struct ms_http_server srv;
    int started, closed, stopped_cb, timed_out, thread_done;
    int port;
    /* handler state */
    struct ms_http_request *held[MAX_HELD];
    int nheld, ncancel, respond_in_cancel, cancel_rc;
    struct ms_http_request *order[4];
    int norder;
    uv_timer_t together; /* answers the /together requests */
    uint64_t writes_before;
    int nerrors, last_kind;
    int responded_late;
    int nbig; /* /big requests dispatched (read by a client thread) */
    /* client state */
    struct ms_http_client client;
    int client_closed;
    int c_done;
    int c_status[NCLIENT];
    int c_order[NCLIENT];
    char c_body[NCLIENT][64];
    size_t c_len[NCLIENT];
    char c_hdr[NCLIENT][32];
    int chain; /* submit one more request from the first callback */
};

static void on_guard(uv_timer_t *t)
{
    struct fx *fx = t->data;
    fx->timed_out = 1;
}

static void on_async(uv_async_t *a)
{
    struct fx *fx = a->data;
    fx->thread_done = 1;
}

/* Runs the loop until *flag >= want, failing after 5 s. */
static void run_until(struct fx *fx, const int *flag, int want)
{
    fx->timed_out = 0;
    uv_timer_start(&fx->guard, on_guard, 5000, 0);
    while (*flag < want && !fx->timed_out)
        uv_run(&fx->loop, UV_RUN_ONCE);
    uv_timer_stop(&fx->guard);
    assert_false(fx->timed_out);
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));

    assert_non_null(fx);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    uv_timer_init(&fx->loop, &fx->guard);
    fx->guard.data = fx;
    uv_async_init(&fx->loop, &fx->async, on_async);
    fx->async.data = fx;
    *state = fx;
    return 0;
}

static void on_server_closed(struct ms_http_server *s)
{
    struct fx *fx = s->data;
    fx->closed++;
}

static void on_client_closed(struct ms_http_client *c)
{
    struct fx *fx = c->data;
    fx->client_closed++;
}

static int teardown(void **state)
{
    struct fx *fx = *state;

    if (fx->started && !fx->closed) {
        ms_http_server_close(&fx->srv, on_server_closed);
        run_until(fx, &fx->closed, 1);
    }
    assert_int_equal(fx->closed, fx->started ? 1 : 0);
    uv_close((uv_handle_t *)&fx->guard, NULL);
    uv_close((uv_handle_t *)&fx->async, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0); /* no handle leaked */
    free(fx);
    return 0;
}

static void on_request(struct ms_http_request *req, void *data);

static void start_server(struct fx *fx, const struct ms_http_server_config *cfg)
{
    assert_int_equal(ms_http_server_init(&fx->srv, &fx->loop, cfg, on_request),
                     0);
    fx->srv.data = fx;
    fx->started = 1;
    assert_int_equal(ms_http_server_listen(&fx->srv, "127.0.0.1:0"), 0);
    fx->port = ms_http_server_port(&fx->srv);
    assert_true(fx->port > 0);
}

/* --- handlers --- */

struct later {
    uv_timer_t t;
    struct fx *fx;
    struct ms_http_request *req;
    int kind; /* 0 respond "async", 1 stream "three"+end, 2 respond target,
                 3 respond "late" */
};

static void later_free(uv_handle_t *h)
{
    free(h->data);
}

static void later_cb(uv_timer_t *t)
{
    struct later *l = t->data;
    struct ms_http_request *req = l->req;

    switch (l->kind) {
    case 0:
        ms_http_respond(req, 200, "text/plain", "async", 5);
        break;
    case 1:
        ms_http_stream_write(req, "three", 5);
        ms_http_stream_end(req);
        break;
    case 2:
        ms_http_respond(req, 200, "text/plain", req->target,
                        strlen(req->target));
        break;
    case 3:
        l->fx->responded_late = 1;
        ms_http_respond(req, 200, "text/plain", "late", 4);
        break;
    }
    uv_close((uv_handle_t *)t, later_free);
}

static void later(struct fx *fx, struct ms_http_request *req, int kind,
                  uint64_t ms)
{
    struct later *l = calloc(1, sizeof(*l));

    assert_non_null(l);
    l->fx = fx;
    l->req = req;
    l->kind = kind;
    uv_timer_init(&fx->loop, &l->t);
    l->t.data = l;
    uv_timer_start(&l->t, later_cb, ms, 0);
}

static void together_cb(uv_timer_t *t)
{
    struct fx *fx = t->data;

    fx->writes_before = fx->srv.writes;
    for (int i = 0; i < 4; i++)
        ms_http_respond(fx->order[i], 200, "text/plain", fx->order[i]->target,
                        strlen(fx->order[i]->target));
    fx->norder = 0;
    uv_close((uv_handle_t *)t, NULL);
}

static void on_cancel(struct ms_http_request *req)
{
    struct fx *fx = req->server->data;

    fx->ncancel++;
    if (fx->respond_in_cancel)
        fx->cancel_rc = ms_http_respond(req, 200, NULL, "x", 1);
}

static int path_is(const struct ms_http_request *req, const char *p)
{
    return req->path_len == strlen(p) &&
           memcmp(req->path, p, req->path_len) == 0;
}

static void on_request(struct ms_http_request *req, void *data)
{
    struct fx *fx = data;
    char text[256];
    struct ms_buf b = MS_BUF_INIT;
    int rc;

    if (path_is(req, "/echo")) {
        int n = snprintf(text, sizeof(text), "%s %s %s", req->method,
                         req->target, (const char *)req->body);
        assert_int_equal(ms_http_response_header(req, "X-Test", "yes"), 0);
        assert_int_equal(ms_http_response_header(req, "Bad", "a\r\nb"),
                         MS_EINVAL);
        ms_http_respond(req, 200, "text/plain", text, (size_t)n);
    } else if (path_is(req, "/remote")) {
        ms_http_respond(req, 200, NULL, req->remote, strlen(req->remote));
    } else if (path_is(req, "/len")) {
        int n = snprintf(text, sizeof(text), "%zu", req->body_len);
        ms_http_respond(req, 200, "text/plain", text, (size_t)n);
    } else if (path_is(req, "/hdr")) {
        const char *v = ms_http_request_header(req, "x-THING");
        if (v == NULL)
            v = "none";
        ms_http_respond(req, 200, NULL, v, strlen(v));
    } else if (path_is(req, "/query")) {
        rc = ms_http_request_query(req, "k", &b);
        if (rc == 0)
            ms_http_respond(req, 200, NULL, b.data, b.len);
        else
            ms_http_respond(req, 400, NULL, ms_errname(rc),
                            strlen(ms_errname(rc)));
        ms_buf_free(&b);
    } else if (req->path_len >= 4 && memcmp(req->path, "/kv/", 4) == 0) {
        uint8_t key[256];
        size_t klen, i;
        int n = 0;
        rc =
            ms_http_pct_decode(req->path + 4, req->path_len - 4, 0, key, &klen);
        if (rc != 0) {
            ms_http_respond(req, 400, NULL, "bad escape", 10);
            return;
        }
        for (i = 0; i < klen; i++)
            n += snprintf(text + n, sizeof(text) - (size_t)n, "%02x", key[i]);
        ms_http_respond(req, 200, NULL, text, (size_t)n);
    } else if (path_is(req, "/order")) {
        fx->order[fx->norder++] = req;
        if (fx->norder == 3) { /* answer in reverse order */
            later(fx, fx->order[2], 2, 10);
            later(fx, fx->order[1], 2, 40);
            later(fx, fx->order[0], 2, 70);
            fx->norder = 0;
        }
    } else if (path_is(req, "/together")) {
        /* held until four have come, then all answered in one callback,
         * as the state machine answers the ops of one Raft entry */
        fx->order[fx->norder++] = req;
        if (fx->norder == 4) {
            uv_timer_init(&fx->loop, &fx->together);
            fx->together.data = fx;
            uv_timer_start(&fx->together, together_cb, 5, 0);
        }
    } else if (path_is(req, "/async")) {
        later(fx, req, 0, 30);
    } else if (path_is(req, "/stream")) {
        assert_int_equal(ms_http_stream_begin(req, 200, "text/plain"), 0);
        assert_int_equal(ms_http_respond(req, 200, NULL, "x", 1), MS_EINVAL);
        assert_int_equal(ms_http_stream_write(req, "one", 3), 0);
        assert_int_equal(ms_http_stream_write(req, "two", 3), 0);
        assert_true(ms_http_stream_pending(req) < 1000);
        later(fx, req, 1, 20);
    } else if (path_is(req, "/hold")) {
        assert_true(fx->nheld < MAX_HELD);
        fx->held[fx->nheld++] = req;
        ms_http_request_on_cancel(req, on_cancel);
    } else if (path_is(req, "/big")) {
        size_t i, n = 1 << 20;
        __atomic_fetch_add(&fx->nbig, 1, __ATOMIC_SEQ_CST);
        uint8_t *p = malloc(n);
        assert_non_null(p);
        for (i = 0; i < n; i++)
            p[i] = (uint8_t)(i * 7);
        assert_int_equal(ms_http_respond_owned(req, 200, NULL, p, n), 0);
    } else {
        ms_http_respond(req, 404, "text/plain", "not found\n", 10);
    }
}

static void json_errors(enum ms_http_error_kind kind, const char *message,
                        struct ms_http_error_reply *reply, void *data)
{
    struct fx *fx = data;

    fx->nerrors++;
    fx->last_kind = (int)kind;
    if (kind == MS_HTTP_ERR_BODY_TOO_LARGE)
        reply->status = 400; /* what etcd's gateway answers */
    reply->content_type = "application/json";
    ms_buf_reset(&reply->body);
    ms_buf_printf(&reply->body,
                  "{\"error\":\"%s\",\"code\":3,\"message\":\"%s\"}", message,
                  message);
}

/* --- raw blocking clients, run in a thread --- */

struct rresp {
    int status;
    int chunked;
    size_t body_len;
    unsigned long sum;
    char body[4096];
    char hdrs[2048];
    size_t hlen;
    int last; /* 1 field, 2 value */
};

#define MAX_RESP 8

struct reader {
    http_parser p;
    struct rresp resp[MAX_RESP + 1]; /* the last slot takes any surplus */
    int got, cont, head;
};

static struct rresp *cur_resp(http_parser *p)
{
    struct reader *rd = p->data;
    return &rd->resp[rd->got < MAX_RESP ? rd->got : MAX_RESP];
}

static void hdr_put(struct rresp *r, const char *s, size_t n)
{
    if (r->hlen + n < sizeof(r->hdrs)) {
        memcpy(r->hdrs + r->hlen, s, n);
        r->hlen += n;
        r->hdrs[r->hlen] = '\0';
    }
}

static int rd_begin(http_parser *p)
{
    memset(cur_resp(p), 0, sizeof(struct rresp));
    return 0;
}

static int rd_field(http_parser *p, const char *at, size_t n)
{
    struct rresp *r = cur_resp(p);
    if (r->last == 2)
        hdr_put(r, "\n", 1);
    r->last = 1;
    hdr_put(r, at, n);
    return 0;
}

static int rd_value(http_parser *p, const char *at, size_t n)
{
    struct rresp *r = cur_resp(p);
    if (r->last == 1)
        hdr_put(r, ": ", 2);
    r->last = 2;
    hdr_put(r, at, n);
    return 0;
}

static int rd_headers(http_parser *p)
{
    struct reader *rd = p->data;
    struct rresp *r = cur_resp(p);

    hdr_put(r, "\n", 1);
    r->status = p->status_code;
    r->chunked = (p->flags & F_CHUNKED) != 0;
    return rd->head && p->status_code >= 200 ? 1 : 0;
}

static int rd_body(http_parser *p, const char *at, size_t n)
{
    struct rresp *r = cur_resp(p);
    size_t i;

    for (i = 0; i < n; i++) {
        if (r->body_len + i < sizeof(r->body) - 1)
            r->body[r->body_len + i] = at[i];
        r->sum = r->sum * 31 + (uint8_t)at[i];
    }
    r->body_len += n;
    return 0;
}

static int rd_done(http_parser *p)
{
    struct reader *rd = p->data;

    if (p->status_code >= 100 && p->status_code < 200)
        rd->cont++;
    else
        rd->got++;
    return 0;
}

static const http_parser_settings rd_settings = {
    .on_message_begin = rd_begin,
    .on_header_field = rd_field,
    .on_header_value = rd_value,
    .on_headers_complete = rd_headers,
    .on_body = rd_body,
    .on_message_complete = rd_done,
};

static void reader_init(struct reader *rd, int head)
{
    memset(rd, 0, sizeof(*rd));
    http_parser_init(&rd->p, HTTP_RESPONSE);
    rd->p.data = rd;
    rd->head = head;
}

/* Reads until rd has n responses (or cont interim ones when n == 0), EOF
 * or a 3 s silence. Returns 1 on EOF, else 0. */
static int read_responses(int fd, struct reader *rd, int n, int cont)
{
    char buf[16384];
    ssize_t k;

    while (rd->got < n || rd->cont < cont) {
        k = recv(fd, buf, sizeof(buf), 0);
        if (k == 0) {
            http_parser_execute(&rd->p, &rd_settings, NULL, 0);
            return 1;
        }
        if (k < 0)
            return 0;
        http_parser_execute(&rd->p, &rd_settings, buf, (size_t)k);
    }
    return 0;
}

/* Waits for the server to close: 1 on FIN, 2 on reset, 0 on timeout. */
static int wait_eof(int fd)
{
    char buf[4096];
    ssize_t k;

    for (;;) {
        k = recv(fd, buf, sizeof(buf), 0);
        if (k == 0)
            return 1;
        if (k < 0)
            return errno == ECONNRESET ? 2 : 0;
    }
}

static int tcp_connect(int port)
{
    struct sockaddr_in a;
    struct timeval tv = {3, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    ssize_t k;

    while (n > 0) {
        k = send(fd, s, n, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A scripted exchange: send each message (gap_ms apart), read nresp
 * responses, then optionally wait for the server to close. */
struct job {
    struct fx *fx;
    const char *send[8];
    size_t send_len[8]; /* 0: strlen */
    int gap_ms;
    int nresp, ncont, head, wait_eof, close_after_send;
    int lockstep; /* read one answer after each send */
    int piece;    /* send in pieces of this many bytes, 1 ms apart */
    int pause_ms; /* before reading: then note fx->nbig in seen_big */
    int seen_big;
    int reconnect_after; /* then try a new connection: 1 if refused */
    /* results */
    int connected, eof, refused;
    uint64_t elapsed_ms;
    struct reader rd;
};

static void *job_main(void *arg)
{
    struct job *j = arg;
    uint64_t t0 = now_ms();
    int fd = tcp_connect(j->fx->port), i, fd2;

    reader_init(&j->rd, j->head);
    if (fd >= 0) {
        j->connected = 1;
        for (i = 0; i < 8 && j->send[i] != NULL; i++) {
            size_t n = j->send_len[i] ? j->send_len[i] : strlen(j->send[i]);
            if (i > 0 && j->gap_ms > 0)
                usleep((useconds_t)j->gap_ms * 1000);
            if (j->piece > 0) {
                size_t off, k;
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                for (off = 0; off < n; off += k) {
                    k = n - off < (size_t)j->piece ? n - off : (size_t)j->piece;
                    if (send_all(fd, j->send[i] + off, k) != 0)
                        break;
                    usleep(1000);
                }
            } else if (send_all(fd, j->send[i], n) != 0) {
                break;
            }
            if (j->lockstep)
                read_responses(fd, &j->rd, i + 1, 0);
        }
        if (j->pause_ms > 0) {
            usleep((useconds_t)j->pause_ms * 1000);
            j->seen_big = __atomic_load_n(&j->fx->nbig, __ATOMIC_SEQ_CST);
        }
        if (!j->close_after_send) {
            j->eof = read_responses(fd, &j->rd, j->nresp, j->ncont);
            if (j->wait_eof && !j->eof)
                j->eof = wait_eof(fd);
        }
        close(fd);
    }
    j->elapsed_ms = now_ms() - t0;
    if (j->reconnect_after) {
        fd2 = tcp_connect(j->fx->port);
        j->refused = fd2 < 0;
        if (fd2 >= 0)
            close(fd2);
    }
    uv_async_send(&j->fx->async);
    return NULL;
}

/* Runs fn(arg) in a thread while the loop runs; joins it. */
static void run_thread(struct fx *fx, void *(*fn)(void *), void *arg)
{
    pthread_t th;

    fx->thread_done = 0;
    assert_int_equal(pthread_create(&th, NULL, fn, arg), 0);
    fx->timed_out = 0;
    uv_timer_start(&fx->guard, on_guard, 10000, 0);
    while (!fx->thread_done && !fx->timed_out)
        uv_run(&fx->loop, UV_RUN_ONCE);
    uv_timer_stop(&fx->guard);
    pthread_join(th, NULL);
    assert_false(fx->timed_out);
}

static struct job *job_new(struct fx *fx)
{
    struct job *j = calloc(1, sizeof(*j));
    assert_non_null(j);
    j->fx = fx;
    return j;
}

static void assert_has(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL)
        fail_msg("'%s' not found in '%s'", needle, hay);
}

/* --- server tests --- */

/* A GET and a POST with a body get their answers with Content-Length and the
 * handler's extra header. */
static void test_get_and_post(void **state)
{
    struct fx *fx = *state;
    struct job *j = job_new(fx);

    start_server(fx, NULL);
    j->send[0] = "GET /echo?a=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                 "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
                 "hello";
    j->nresp = 2;
    run_thread(fx, job_main, j);
    assert_int_equal(j->rd.got, 2);
    assert_int_equal(j->rd.resp[0].status, 200);
    assert_string_equal(j->rd.resp[0].body, "GET /echo?a=1 ");
    assert_has(j->rd.resp[0].hdrs, "Content-Length: 14\n");
    assert_has(j->rd.resp[0].hdrs, "Content-Type: text/plain\n");
    assert_has(j->rd.resp[0].hdrs, "X-Test: yes\n");
    assert_null(strstr(j->rd.resp[0].hdrs, "Connection"));
    assert_string_equal(j->rd.resp[1].body, "POST /echo hello");
    free(j);
}

/* Several requests in turn on one connection all succeed (keep-alive). */
static void test_keep_alive(void **state)
{
    struct fx *fx = *state;
    struct job *j = job_new(fx);
    int i;

    start_server(fx, NULL);
    for (i = 0; i < 5; i++)
        j->send[i] = "GET /remote HTTP/1.1\r\nHost: x\r\n\r\n";
    j->gap_ms = 20;
    j->lockstep = 1;
    j->nresp = 5;
    run_thread(fx, job_main, j);
    assert_int_equal(j->rd.got, 5);
    assert_non_null(strstr(j->rd.resp[0].body, "127.0.0.1:"));
    for (i = 1; i < 5; i++) /* the same peer port: the same connection */
        assert_string_equal(j->rd.resp[i].body, j->rd.resp[0].body);
    assert_int_equal(j->eof, 0);
    free(j);
}

/* Three pipelined requests answered in reverse order by async handlers
 * still get their answers in request order. */
static void test_pipeline_reverse(void **state)
{
    struct fx *fx = *state;
    struct job *j = job_new(fx);

    start_server(fx, NULL);
    j->send[0] = "GET /order?1 HTTP/1.1\r\n\r\n"
                 "GET /order?2 HTTP/1.1\r\n\r\n"
                 "GET /order?3 HTTP/1.1\r\n\r\n";
    j->nresp = 3;
    run_thread(fx, job_main, j);
    assert_int_equal(j->rd.got, 3);
    assert_string_equal(j->rd.resp[0].body, "/order?1");
    assert_string_equal(j->rd.resp[1].body, "/order?2");
    assert_string_equal(j->rd.resp[2].body, "/order?3");
    free(j);
}

/* Four pipelined requests answered together from one callback outside the
 * connection's read leave in one write, in request order. */
static void test_pipeline_one_write(void **state)
{
    struct fx *fx = *state;
    struct job *j = job_new(fx);

    start_server(fx, NULL);
    j->send[0] = "GET /together?1 HTTP/1.1\r\n\r\n"
                 "GET /together?2 HTTP/1.1\r\n\r\n"
                 "GET /together?3 HTTP/1.1\r\n\r\n"
                 "GET /together?4 HTTP/1.1\r\n\r\n";
    j->nresp = 4;
    run_thread(fx, job_main, j);
    assert_int_equal(j->rd.got, 4);
    assert_string_equal(j->rd.resp[0].body, "/together?1");
    assert_string_equal(j->rd.resp[3].body, "/together?4");
    assert_int_equal(fx->srv.writes - fx->writes_before, 1);
    free(j);
}

/* With max_pipeline 2, six pipelined requests in one write are all parsed
 * (reading pauses at the bound and resumes) and answered in order. */
static void test_pipeline_bound(void **state)
{
    struct fx *fx = *state;
    struct ms_http_server_config cfg = {.max_pipeline = 2};
    struct job *j = job_new(fx);
    int i;

    start_server(fx, &cfg);
    j->send[0] = "GET /echo?1 HTTP/1.1\r\n\r\nGET /async HTTP/1.1\r\n\r\n"
                 "GET /echo?3 HTTP/1.1\r\n\r\nGET /async HTTP/1.1\r\n\r\n"
                 "POST /echo?5 HTTP/1.1\r\nContent-Length: 1\r\n\r\nz"
                 "GET /echo?6 HTTP/1.1\r\n\r\n";
    j->nresp = 6;
    run_thread(fx, job_main, j);
    assert_int_equal(j->rd.got, 6);
    assert_string_equal(j->rd.resp[0].body, "GET /echo?1 ");
    assert_string_equal(j->rd.resp[1].body, "async");
    assert_string_equal(j->rd.resp[2].body, "GET /echo?3 ");
    assert_string_equal(j->rd.resp[3].body, "async");
    assert_string_equal(j->rd.resp[4].body, "POST /echo?5 z");
    assert_string_equal(j->rd.resp[5].body, "GET /echo?6 ");
    for (i = 0; i < 6; i++)
        assert_int_equal(j->rd.resp[i].status, 200);
    free(j);
}

/* Requests arriving a few bytes at a time (split inside the request line,
 * header names and values, chunked and plain bodies) parse the same. */
static void test_split_input(void **state)
{
    struct fx *fx = *state;
    struct job *j = job_new(fx);

    start_server(fx, NULL);
    j->send[0] = "POST /echo?a=1 HTTP/1.1\r\nX-Thing: some value\r\n"
                 "Content-Length: 11\r\n\r\nhello world"
                 "GET /hdr HTTP/1.1\r\nx-thing:   spaced  \r\n\r\n"
                 "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n";
    j->piece = 3;
    j->nresp = 3;
    run_thread(fx, job_main, j);
    assert_int_equal(j->rd.got, 3);
    assert_string_equal(j->rd.resp[0].body, "POST /echo?a=1 hello world");
    assert_string_equal(j->rd.resp[1].body, "spaced  ");
    assert_string_equal(j->rd.resp[2].body, "POST /echo abcdefg");
    free(j);
}

static int one_request(int fd, struct reader *rd)
{
    static const char r[] = "GET /echo HTTP/1.1\r\n\r\n";

    reader_init(rd, 0);
    if (send_all(fd, r, sizeof(r) - 1) != 0)
        return 0;
    read_responses(fd, rd, 1, 0);
    return rd->got == 1 ? rd->resp[0].status : 0;
}

struct garbage {
    struct fx *fx;
    int answered, after_ok;
};

static void *garbage_main(void *arg)
{
    static const char valid[] =
        "POST /echo?x=%41 HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
        "X-A: b\r\n\r\nbody";
    struct garbage *g = arg;
    struct reader rd;
    char msg[600];
    unsigned seed = 12345;
    size_t n, i;
    int round, fd;

    for (round = 0; round < 150; round++) {
        fd = tcp_connect(g->fx->port);
        if (fd < 0)
            continue;
        memcpy(msg, valid, sizeof(valid) - 1);
        n = sizeof(valid) - 1;
        if (round % 3 == 0) { /* pure noise */
            n = (size_t)(rand_r(&seed) % sizeof(msg));
            for (i = 0; i < n; i++)
                msg[i] = (char)rand_r(&seed);
        } else { /* a valid request with a few bytes changed */
            for (i = 0; i < (size_t)(round % 5) + 1; i++)
                msg[rand_r(&seed) % n] = (char)rand_r(&seed);
            if (round % 4 == 0)
                n = (size_t)rand_r(&seed) % n;
        }
        send_all(fd, msg, n);
        reader_init(&rd, 0);
        read_responses(fd, &rd, 1, 0);
        g->answered += rd.got;
        close(fd);
    }
    fd = tcp_connect(g->fx->port);
    g->after_ok = fd >= 0 && one_request(fd, &rd) == 200;
    if (fd >= 0)
        close(fd);
    uv_async_send(&g->fx->async);
    return NULL;
}

/* Noise and mutated requests never crash the server; it still serves a
 * normal request afterwards. */
static void test_garbage(void **state)
{
    struct fx *fx = *state;
    struct ms_http_server_config cfg = {.header_timeout_ms = 100,
                                        .idle_timeout_ms = 100};
    struct garbage g = {.fx = fx};

    start_server(fx, &cfg);
    run_thread(fx, garbage_main, &g);
    assert_true(g.answered > 50);
    assert_true(g.after_ok);
}

/* A handler may answer later from a timer. */
static void test_async_response(void **state)
{
    struct fx *fx = *state;
    struct job *j = job_new(fx);

    start_server(fx, NULL);
    j->send[0] = "GET /async HTTP/1.1\r\n\r\n";
    j->nresp = 1;
    run_thread(fx, job_main, j);
    assert_int_equal(j->rd.got, 1);
    assert_string_equal(j->rd.resp[0].body, "async");
    assert_true(j->elapsed_ms >= 25);
    free(j);
}

/* A streamed answer arrives chunked, with chunks written later included;
 * the connection stays usable after it. */
static void test_stream(void **state)
{
    struct fx *fx = *state;
    struct job *j = job_new(fx);

    start_server(fx, NULL);
    j->send[0] = "GET /stream HTTP/1.1\r\n\r\nGET /echo HTTP/1.1\r\n\r\n";
    j->nresp = 2;
    run_thread(fx, job_main, j);
    assert_int_equal(j->rd.got, 2);
    assert_int_equal(j->rd.resp[0].chunked, 1);
    assert_has(j->rd.resp[0].hdrs, "Transfer-Encoding: chunked\n");
    assert_string_equal(j->rd.resp[0].body, "onetwothree");
    assert_string_equal(j->rd.resp[1].body, "GET /echo ");
    free(j);
}

/* To an HTTP/1.0 client a stream is sent raw and ended by closing. */
static void test_stream_http10(void **state)
{
    struct fx *fx = *state;
    struct job *j = job_new(fx);

    start_server(fx, NULL);
    j->send[0] = "GET /stream HTTP/1.0\r\n\r\n";
    j->nresp = 1;
    run_thread(fx, job_main, j);
    assert_int_equal(j->rd.got, 1);
    assert_int_equal(j->rd.resp[0].chunked, 0);
    assert_string_equal(j->rd.resp[0].body, "onetwothree");
    assert_int_equal(j->eof, 1);
    free(j);
}

/* Percent-decoding: %2F, %00 and '+' handling; bad escapes are errors. */
static void test_pct_decode(void **state)
{
    uint8_t out[32];
    size_t n;
    char inplace[] = "a%41b";

    (void)state;
    assert_int_equal(ms_http_pct_decode("a%2Fb", 5, 0, out, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "a/b", 3);
    assert_int_equal(ms_http_pct_decode("%00x%ff", 7, 0, out, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "\0x\xff", 3);
    assert_int_equal(ms_http_pct_decode("a+b", 3, 0, out, &n), 0);
    assert_memory_equal(out, "a+b", 3);
    assert_int_equal(ms_http_pct_decode("a+b", 3, 1, out, &n), 0);
    assert_memory_equal(out, "a b", 3);
    assert_int_equal(ms_http_pct_decode("%zz", 3, 0, out, &n), MS_EMALFORMED);
    assert_int_equal(ms_http_pct_decode("ab%4", 4, 0, out, &n), MS_EMALFORMED);
    assert_int_equal(ms_http_pct_decode("%", 1, 0, out, &n), MS_EMALFORMED);
    assert_int_equal(ms_http_pct_decode(inplace, 5, 0, (uint8_t *)inplace, &n),
                     0);
    assert_int_equal(n, 3);
    assert_memory_equal(inplace, "aAb", 3);
}

/* Query lookup: decoded names and values, bare names, first wins,
 * absent and malformed parameters. */
static void test_query_get(void **state)
{
    const char *q = "a=1&b=x%20y&c&d=%zz&b=2&e%5Fx=5&&f=a+b";
    struct ms_buf b = MS_BUF_INIT;
    size_t n = strlen(q);

    (void)state;
    assert_int_equal(ms_http_query_get(q, n, "a", &b), 0);
    assert_int_equal(b.len, 1);
    assert_memory_equal(b.data, "1", 1);
    assert_int_equal(ms_http_query_get(q, n, "b", &b), 0);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "x y", 3);
    assert_int_equal(ms_http_query_get(q, n, "c", &b), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(ms_http_query_get(q, n, "d", &b), MS_EMALFORMED);
    assert_int_equal(ms_http_query_get(q, n, "e_x", &b), 0);
    assert_memory_equal(b.data, "5", 1);
    assert_int_equal(ms_http_query_get(q, n, "f", &b), 0);
    assert_memory_equal(b.data, "a b", 3);
    assert_int_equal(ms_http_query_get(q, n, "zz", &b), MS_ENOTFOUND);
    assert_int_equal(ms_http_query_get("", 0, "a", &b), MS_ENOTFOUND);
    ms_buf_free(&b);
}

/* Through the server: binary keys from the path, query values, headers
 * looked up case-insensitively. */
static void test_request_accessors(void **state)
{
    struct fx *fx = *state;
    struct job *j = job_new(fx);

    start_server(fx, NULL);
    j->send[0] = "GET /kv/a%2Fb%00c HTTP/1.1\r\n\r\n"
                 "GET /kv/%zz HTTP/1.1\r\n\r\n"
                 "GET /query?x=1&k=v%3D1+2 HTTP/1.1\r\n\r\n"
                 "GET /query?x=1 HTTP/1.1\r\n\r\n"
                 "GET /hdr HTTP/1.1\r\nX-Thing: hello there\r\n\r\n"
                 "GET /nothing#frag HTTP/1.1\r\n\r\n";
    j->nresp = 6;
    run_thread(fx, job_main, j);
    assert_int_equal(j->rd.got, 6);
    assert_string_equal(j->rd.resp[0].body, "612f620063");
    assert_int_equal(j->rd.resp[1].status, 400);
    assert_string_equal(j->rd.resp[2].body, "v=1 2");
    assert_int_equal(j->rd.resp[3].status, 400);
    assert_string_equal(j->rd.resp[3].body, "MS_ENOTFOUND");
    assert_string_equal(j->rd.resp[4].body, "hello there");
    assert_int_equal(j->rd.resp[5].status, 404);
    free(j);
}

/* HEAD gets the headers (with the would-be length) and no body. */
static void test_head(void **state)
{
    struct fx *fx = *state;
    struct job *j = job_new(fx);

    start_server(fx, NULL);
    j->send[0] = "HEAD /echo HTTP/1.1\r\n\r\nHEAD /echo HTTP/1.1\r\n\r\n";
    j->nresp = 2;
    j->head = 1;
    run_thread(fx, job_main, j);
    assert_int_equal(j->rd.got, 2);
    assert_int_equal(j->rd.resp[1].status, 200);
    assert_has(j->rd.resp[1].hdrs, "Content-Length: 11\n");
    assert_int_equal(j->rd.resp[1].body_len, 0);
    free(j);
}

/* Connection: close and HTTP/1.0 end the connection after the answer;
 * HTTP/1.0 with keep-alive keeps it. */
static void test_connection_close(void **state)
{
    struct fx *fx = *state;
    struct job *j = job_new(fx);

    start_server(fx, NULL);
    j->send[0] = "GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n"
                 "GET /echo HTTP/1.1\r\n\r\n"; /* ignored */
    j->nresp = 2;
    j->wait_eof = 1;
    run_thread(fx, job_main, j);
    assert_int_equal(j->rd.got, 1);
    assert_has(j->rd.resp[0].hdrs, "Connection: close\n");
    assert_int_equal(j->eof, 1);

    memset(j, 0, sizeof(*j));
    j->fx = fx;
    j->send[0] = "GET /echo HTTP/1.0\r\n\r\n";
    j->nresp = 1;
    j->wait_eof = 1;
    run_thread(fx, job_main, j);
    assert_int_equal(j->rd.got, 1);
    assert_int_equal(j->eof, 1);

    memset(j, 0, sizeof(*j));
    j->fx = fx;
    j->send[0] = "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    j->send[1] = "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    j->gap_ms = 10;
    j->nresp = 2;
    run_thread(fx, job_main, j);
    assert_int_equal(j->rd.got, 2);
    assert_has(j->rd.resp[1].hdrs, "Connection: keep-alive\n");
    assert_int_equal(j->eof, 0);
    free(j);
}

/* Expect: 100-continue gets the interim answer before the body is sent. */
static void test_expect_continue(void **state)
{
    struct fx *fx = *state;
    struct job *j = job_new(fx);

    start_server(fx, NULL);
    j->send[0] = "POST /len HTTP/1.1\r\nExpect: 100-continue\r\n"
                 "Content-Length: 4\r\n\r\n";
    j->send[1] = "abcd";
    j->gap_ms = 50;
    j->nresp = 1;
    j->ncont = 1;
    run_thread(fx, job_main, j);
    assert_int_equal(j->rd.cont, 1);
    assert_int_equal(j->rd.got, 1);
    assert_string_equal(j->rd.resp[0].body, "4");
    free(j);
}

/* A 1 MiB upload is received whole; a 1 MiB owned answer arrives intact. */
static void test_large_bodies(void **state)
{
    struct fx *fx = *state;
    struct job *j = job_new(fx);
    size_t n = 1 << 20, i;
    char *req = malloc(n + 100);
    unsigned long sum = 0;
    int hl;

    assert_non_null(req);
    start_server(fx, NULL);
    hl = snprintf(req, 100, "POST /len HTTP/1.1\r\nContent-Length: %zu\r\n\r\n",
                  n);
    memset(req + hl, 'q', n);
    j->send[0] = req;
    j->send_len[0] = (size_t)hl + n;
    j->send[1] = "GET /big HTTP/1.1\r\n\r\n";
    j->nresp = 2;
    run_thread(fx, job_main, j);
    assert_int_equal(j->rd.got, 2);
    assert_string_equal(j->rd.resp[0].body, "1048576");
    assert_int_equal(j->rd.resp[1].body_len, n);
    for (i = 0; i < n; i++)
        sum = sum * 31 + (uint8_t)(i * 7);
    assert_true(j->rd.resp[1].sum == sum);
    free(req);
    free(j);
}

/* A client that pipelines 24 requests for 1 MiB answers but does not read
 * makes the server stop parsing (bounded memory); once it reads, all
 * answers arrive in order and intact. */
static void test_slow_reader(void **state)
{
    struct fx *fx = *state;
    struct job *j = job_new(fx);
    static char reqs[24 * 32];
    size_t n = 0, i;
    int k;

    start_server(fx, NULL);
    for (k = 0; k < 24; k++)
        n += (size_t)snprintf(reqs + n, sizeof(reqs) - n,
                              "GET /big HTTP/1.1\r\n\r\n");
    j->send[0] = reqs;
    j->pause_ms = 300;
    j->nresp = 24; /* the reader keeps the first 8, counts the rest */
    run_thread(fx, job_main, j);
    assert_true(j->seen_big < 24);
    assert_int_equal(fx->nbig, 24);
    assert_int_equal(j->rd.got, 24);
    for (i = 0; i < 8; i++) {
        assert_int_equal(j->rd.resp[i].body_len, 1 << 20);
        assert_true(j->rd.resp[i].sum == j->rd.resp[0].sum);
    }
    free(j);
}

/* Oversized headers get the formatter's answer (431, JSON) and a close. */
static void test_header_too_large(void **state)
{
    struct fx *fx = *state;
    struct ms_http_server_config cfg = {.max_header_bytes = 1024,
                                        .on_error = json_errors};
    struct job *j = job_new(fx);
    char big[3000];

    start_server(fx, &cfg);
    memset(big, 'v', sizeof(big));
    memcpy(big, "GET /echo HTTP/1.1\r\nX-Big: ", 27);
    memcpy(big + sizeof(big) - 4, "\r\n\r\n", 4);
    j->send[0] = big;
    j->send_len[0] = sizeof(big);
    j->nresp = 1;
    j->wait_eof = 1;
    run_thread(fx, job_main, j);
    assert_int_equal(j->rd.got, 1);
    assert_int_equal(j->rd.resp[0].status, 431);
    assert_has(j->rd.resp[0].hdrs, "Content-Type: application/json\n");
    assert_has(j->rd.resp[0].hdrs, "Connection: close\n");
    assert_string_equal(j->rd.resp[0].body,
                        "{\"error\":\"request header too large\",\"code\":3,"
                        "\"message\":\"request header too large\"}");
    assert_int_equal(j->eof, 1);
    assert_int_equal(fx->last_kind, MS_HTTP_ERR_HEADER_TOO_LARGE);
    free(j);
}

/* A body over the limit gets the formatter's status (400 like etcd) even
 * before the body is sent; a chunked one is cut off too. */
static void test_body_too_large(void **state)
{
    struct fx *fx = *state;
    struct ms_http_server_config cfg = {.max_body_bytes = 1000,
                                        .on_error = json_errors};
    struct job *j = job_new(fx);

    start_server(fx, &cfg);
    j->send[0] = "POST /len HTTP/1.1\r\nContent-Length: 5000\r\n\r\n";
    j->nresp = 1;
    j->wait_eof = 1;
    run_thread(fx, job_main, j);
    assert_int_equal(j->rd.got, 1);
    assert_int_equal(j->rd.resp[0].status, 400);
    assert_has(j->rd.resp[0].body, "request is too large");
    assert_int_equal(j->eof, 1);
    assert_int_equal(fx->last_kind, MS_HTTP_ERR_BODY_TOO_LARGE);

    memset(j, 0, sizeof(*j));
    j->fx = fx;
    j->send[0] = "POST /len HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "258\r\n";
    j->send_len[0] = 0;
    j->send[1] = NULL;
    {
        static char chunk[1300];
        memset(chunk, 'a', sizeof(chunk));
        /* two 600-byte chunks: 1200 > 1000 */
        memcpy(chunk + 600, "\r\n258\r\n", 7);
        j->send[1] = chunk;
        j->send_len[1] = 600 + 7 + 600;
    }
    j->nresp = 1;
    j->wait_eof = 1;
    run_thread(fx, job_main, j);
    assert_int_equal(j->rd.got, 1);
    assert_int_equal(j->rd.resp[0].status, 400);
    assert_int_equal(j->eof, 1);
    free(j);
}

/* Garbage gets 400 with the default plain-text answer, and a close; an
 * earlier pipelined request is still answered first. */
static void test_malformed(void **state)
{
    struct fx *fx = *state;
    struct job *j = job_new(fx);

    start_server(fx, NULL);
    j->send[0] = "GET /async HTTP/1.1\r\n\r\nGARBAGE\r\n\r\n";
    j->nresp = 2;
    j->wait_eof = 1;
    run_thread(fx, job_main, j);
    assert_int_equal(j->rd.got, 2);
    assert_string_equal(j->rd.resp[0].body, "async");
    assert_int_equal(j->rd.resp[1].status, 400);
    assert_has(j->rd.resp[1].hdrs, "Content-Type: text/plain");
    assert_has(j->rd.resp[1].body, "malformed request");
    assert_int_equal(j->eof, 1);
    free(j);
}

/* Headers not complete within header_timeout_ms get 408 and a close. */
static void test_header_timeout(void **state)
{
    struct fx *fx = *state;
    struct ms_http_server_config cfg = {.header_timeout_ms = 150};
    struct job *j = job_new(fx);

    start_server(fx, &cfg);
    j->send[0] = "GET /echo HTTP/1.1\r\nHost: x\r\n";
    j->nresp = 1;
    j->wait_eof = 1;
    run_thread(fx, job_main, j);
    assert_int_equal(j->rd.got, 1);
    assert_int_equal(j->rd.resp[0].status, 408);
    assert_int_equal(j->eof, 1);
    assert_true(j->elapsed_ms >= 140);
    assert_true(j->elapsed_ms < 2000);
    free(j);
}

/* An idle keep-alive connection is closed after idle_timeout_ms. */
static void test_idle_timeout(void **state)
{
    struct fx *fx = *state;
    struct ms_http_server_config cfg = {.idle_timeout_ms = 150};
    struct job *j = job_new(fx);

    start_server(fx, &cfg);
    j->send[0] = "GET /echo HTTP/1.1\r\n\r\n";
    j->nresp = 1;
    j->wait_eof = 1;
    run_thread(fx, job_main, j);
    assert_int_equal(j->rd.got, 1);
    assert_int_equal(j->eof, 1);
    assert_true(j->elapsed_ms >= 140);
    assert_true(j->elapsed_ms < 2000);
    free(j);
}

struct maxconn {
    struct fx *fx;
    int ok1, ok2, status3, eof3, ok4;
};

static void *maxconn_main(void *arg)
{
    struct maxconn *m = arg;
    struct reader rd;
    int a = tcp_connect(m->fx->port), b = tcp_connect(m->fx->port), c, d;

    m->ok1 = one_request(a, &rd) == 200;
    m->ok2 = one_request(b, &rd) == 200;
    c = tcp_connect(m->fx->port);
    m->status3 = one_request(c, &rd);
    m->eof3 = wait_eof(c);
    close(c);
    close(a);
    usleep(100 * 1000); /* let the server see the close */
    d = tcp_connect(m->fx->port);
    m->ok4 = one_request(d, &rd) == 200;
    close(d);
    close(b);
    uv_async_send(&m->fx->async);
    return NULL;
}

/* Over max_connections a connection gets 503 and is closed; when one
 * closes, a new connection is served again. */
static void test_max_connections(void **state)
{
    struct fx *fx = *state;
    struct ms_http_server_config cfg = {.max_connections = 2};
    struct maxconn m = {.fx = fx};

    start_server(fx, &cfg);
    run_thread(fx, maxconn_main, &m);
    assert_true(m.ok1);
    assert_true(m.ok2);
    assert_int_equal(m.status3, 503);
    assert_int_equal(m.eof3, 1);
    assert_true(m.ok4);
}

/* A client that leaves with requests pending: cancel callbacks run, the
 * requests stay valid, finishing them reports MS_ECANCELED (no leak, no
 * use-after-free under ASan). */
static void test_client_disconnect(void **state)
{
    struct fx *fx = *state;
    struct job *j = job_new(fx);
    struct ms_http_request *a, *b;

    start_server(fx, NULL);
    j->send[0] = "GET /hold HTTP/1.1\r\n\r\nGET /hold HTTP/1.1\r\n\r\n";
    j->close_after_send = 1;
    run_thread(fx, job_main, j);
    run_until(fx, &fx->ncancel, 2);
    assert_int_equal(fx->nheld, 2);
    a = fx->held[0];
    b = fx->held[1];
    assert_true(ms_http_request_closed(a));
    assert_true(ms_http_request_closed(b));
    assert_int_equal(ms_http_server_connections(&fx->srv), 0);
    assert_int_equal(ms_http_stream_begin(b, 200, NULL), MS_ECANCELED);
    assert_int_equal(ms_http_stream_write(b, "x", 1), MS_ECANCELED);
    assert_int_equal(ms_http_respond(a, 200, NULL, "x", 1), MS_ECANCELED);
    assert_int_equal(ms_http_stream_end(b), MS_ECANCELED);
    free(j);
}

/* Graceful stop: the in-flight request is still answered (with
 * Connection: close), new connections are refused, and the stop callback
 * runs only after that. */
static void test_graceful_stop(void **state)
{
    struct fx *fx = *state;
    struct job *j = job_new(fx);
    pthread_t th;

    start_server(fx, NULL);
    j->send[0] = "GET /hold HTTP/1.1\r\n\r\n";
    j->nresp = 1;
    j->wait_eof = 1;
    j->reconnect_after = 1;
    fx->thread_done = 0;
    assert_int_equal(pthread_create(&th, NULL, job_main, j), 0);
    run_until(fx, &fx->nheld, 1);
    ms_http_server_stop(&fx->srv, on_server_closed);
    later(fx, fx->held[0], 3, 50);
    run_until(fx, &fx->thread_done, 1);
    pthread_join(th, NULL);
    run_until(fx, &fx->closed, 1);
    assert_true(fx->responded_late);
    assert_int_equal(j->rd.got, 1);
    assert_string_equal(j->rd.resp[0].body, "late");
    assert_has(j->rd.resp[0].hdrs, "Connection: close\n");
    assert_int_equal(j->eof, 1);
    assert_true(j->refused);
    free(j);
}

/* Hard close: pending requests get their cancel callback, may be finished
 * from it, and the close callback follows. */
static void test_hard_close(void **state)
{
    struct fx *fx = *state;
    struct job *j = job_new(fx);
    pthread_t th;

    start_server(fx, NULL);
    fx->respond_in_cancel = 1;
    j->send[0] = "GET /hold HTTP/1.1\r\n\r\n";
    j->nresp = 1;
    j->wait_eof = 1;
    fx->thread_done = 0;
    assert_int_equal(pthread_create(&th, NULL, job_main, j), 0);
    run_until(fx, &fx->nheld, 1);
    ms_http_server_close(&fx->srv, on_server_closed);
    run_until(fx, &fx->closed, 1);
    run_until(fx, &fx->thread_done, 1);
    pthread_join(th, NULL);
    assert_int_equal(fx->ncancel, 1);
    assert_int_equal(fx->cancel_rc, MS_ECANCELED);
    assert_int_equal(j->rd.got, 0);
    assert_true(j->eof >= 1);
    free(j);
}

/* Bad listen addresses and a port in use are reported. */
static void test_listen_errors(void **state)
{
    struct fx *fx = *state;
    static struct ms_http_server other; /* closed by the teardown's run */
    char addr[64];

    start_server(fx, NULL);
    assert_int_equal(ms_http_server_init(&other, &fx->loop, NULL, on_request),
                     0);
    other.data = fx;
    assert_int_equal(ms_http_server_listen(&other, "1.2.3:80"), MS_EINVAL);
    assert_int_equal(ms_http_server_listen(&other, "127.0.0.1:99999"),
                     MS_EINVAL);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", fx->port);
    assert_int_equal(ms_http_server_listen(&other, addr), MS_EIO);
    assert_non_null(strstr(other.errmsg, "address already in use"));
    assert_int_equal(ms_http_server_port(&other), -1);
    ms_http_server_close(&other, NULL);
}

/* --- client tests --- */

struct creq {
    struct ms_http_client_req req;
    struct fx *fx;
    int idx;
};

static struct creq creqs[NCLIENT + 1];

static void client_cb(struct ms_http_client_req *req, int status,
                      const struct ms_http_response *resp);

static void client_start(struct fx *fx, const struct ms_http_client_config *c)
{
    char addr[64];

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", fx->port);
    assert_int_equal(ms_http_client_init(&fx->client, &fx->loop, addr, c), 0);
    fx->client.data = fx;
}

static void client_stop(struct fx *fx)
{
    ms_http_client_close(&fx->client, on_client_closed);
    run_until(fx, &fx->client_closed, 1);
}

static int submit(struct fx *fx, int idx, const char *method,
                  const char *target, const char *body,
                  const struct ms_http_header *h, size_t nh)
{
    struct creq *r = &creqs[idx];

    r->fx = fx;
    r->idx = idx;
    return ms_http_client_request(&fx->client, &r->req, method, target, h, nh,
                                  body, body ? strlen(body) : 0, client_cb);
}

static void client_cb(struct ms_http_client_req *req, int status,
                      const struct ms_http_response *resp)
{
    struct creq *r = container_of(req, struct creq, req);
    struct fx *fx = r->fx;
    const char *v;

    fx->c_status[r->idx] = status;
    fx->c_order[fx->c_done++] = r->idx;
    if (resp != NULL) {
        assert_int_equal(resp->body[resp->body_len], 0);
        snprintf(fx->c_body[r->idx], sizeof(fx->c_body[0]), "%d %s",
                 resp->status, (const char *)resp->body);
        fx->c_len[r->idx] = resp->body_len;
        v = ms_http_resp_header(resp, "content-length");
        snprintf(fx->c_hdr[r->idx], sizeof(fx->c_hdr[0]), "%s", v ? v : "-");
    }
    if (fx->chain && r->idx == 0) {
        fx->chain = 0;
        assert_int_equal(submit(fx, 1, "GET", "/echo?again", NULL, NULL, 0), 0);
    }
}

/* The client pipelines many requests on one connection; answers come back
 * in order with the right bodies. */
static void test_client_many(void **state)
{
    struct fx *fx = *state;
    char target[32], body[32], want[64];
    int i;

    start_server(fx, NULL);
    client_start(fx, NULL);
    for (i = 0; i < NCLIENT; i++) {
        snprintf(target, sizeof(target), "/echo?i=%d", i);
        snprintf(body, sizeof(body), "b%d", i);
        assert_int_equal(
            submit(fx, i, i % 2 ? "POST" : "PUT", target, body, NULL, 0), 0);
    }
    assert_int_equal(ms_http_client_pending(&fx->client), NCLIENT);
    run_until(fx, &fx->c_done, NCLIENT);
    for (i = 0; i < NCLIENT; i++) {
        assert_int_equal(fx->c_status[i], 0);
        assert_int_equal(fx->c_order[i], i);
        snprintf(want, sizeof(want), "200 %s /echo?i=%d b%d",
                 i % 2 ? "POST" : "PUT", i, i);
        assert_string_equal(fx->c_body[i], want);
    }
    assert_int_equal(ms_http_client_pending(&fx->client), 0);
    assert_int_equal(ms_http_server_connections(&fx->srv), 1);
    client_stop(fx);
}

/* Out-of-order handlers, streams and HEAD through the client, on one
 * connection; headers sent and received. */
static void test_client_mixed(void **state)
{
    struct fx *fx = *state;
    struct ms_http_header h[] = {{"X-Thing", "abc"}};

    start_server(fx, NULL);
    client_start(fx, NULL);
    assert_int_equal(submit(fx, 0, "GET", "/order?1", NULL, NULL, 0), 0);
    assert_int_equal(submit(fx, 1, "GET", "/order?2", NULL, NULL, 0), 0);
    assert_int_equal(submit(fx, 2, "GET", "/order?3", NULL, NULL, 0), 0);
    assert_int_equal(submit(fx, 3, "GET", "/stream", NULL, NULL, 0), 0);
    assert_int_equal(submit(fx, 4, "HEAD", "/echo", NULL, NULL, 0), 0);
    assert_int_equal(submit(fx, 5, "GET", "/hdr", NULL, h, 1), 0);
    assert_int_equal(submit(fx, 6, "GET", "bad target", NULL, NULL, 0),
                     MS_EINVAL);
    run_until(fx, &fx->c_done, 6);
    assert_string_equal(fx->c_body[0], "200 /order?1");
    assert_string_equal(fx->c_body[1], "200 /order?2");
    assert_string_equal(fx->c_body[2], "200 /order?3");
    assert_string_equal(fx->c_body[3], "200 onetwothree");
    assert_string_equal(fx->c_body[4], "200 ");
    assert_string_equal(fx->c_hdr[4], "11");
    assert_string_equal(fx->c_body[5], "200 abc");
    client_stop(fx);
}

/* Connecting to a closed port fails the request with MS_EIO. */
static void test_client_refused(void **state)
{
    struct fx *fx = *state;
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    fx->port = ntohs(a.sin_port);
    close(fd);
    client_start(fx, NULL);
    assert_int_equal(submit(fx, 0, "GET", "/", NULL, NULL, 0), 0);
    assert_int_equal(submit(fx, 1, "GET", "/", NULL, NULL, 0), 0);
    run_until(fx, &fx->c_done, 2);
    assert_int_equal(fx->c_status[0], MS_EIO);
    assert_int_equal(fx->c_status[1], MS_EIO);
    assert_int_equal(creqs[0].req.sent, 0); /* cannot have reached it */
    assert_int_equal(creqs[1].req.sent, 0);
    assert_non_null(strstr(fx->client.errmsg, "connect"));
    assert_non_null(strstr(fx->client.errmsg, "refused"));
    client_stop(fx);
    {
        struct ms_http_client bad;
        assert_int_equal(ms_http_client_init(&bad, &fx->loop, "nope", NULL),
                         MS_EINVAL);
    }
}

/* A raw server: answers one request per connection (keep-alive, as far
 * as the client can tell), then closes it; n connections in all. */
struct oneshot {
    int lfd, n, conns;
};

static void *oneshot_main(void *arg)
{
    struct oneshot *o = arg;
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    for (int i = 0; i < o->n; i++) {
        char buf[1024];
        size_t got = 0;
        int fd = accept(o->lfd, NULL, NULL);
        if (fd < 0)
            break;
        while (got < sizeof(buf) - 1) {
            ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
            if (r <= 0)
                break;
            got += (size_t)r;
            buf[got] = '\0';
            if (strstr(buf, "\r\n\r\n") != NULL)
                break;
        }
        if (write(fd, resp, sizeof(resp) - 1) < 0)
            break;
        close(fd);
        o->conns++;
    }
    return NULL;
}

/* oneshot_roundtrip: two requests, the second after the server closed the
 * first's connection while the client's loop was not running. */
static void oneshot_roundtrip(struct fx *fx, struct oneshot *o, int probe)
{
    struct ms_http_client_config cfg = {.probe_idle = probe};
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    pthread_t th;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    o->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(o->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(o->lfd, 4), 0);
    getsockname(o->lfd, (struct sockaddr *)&a, &len);
    fx->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&th, NULL, oneshot_main, o), 0);
    client_start(fx, &cfg);
    assert_int_equal(submit(fx, 0, "GET", "/a", NULL, NULL, 0), 0);
    run_until(fx, &fx->c_done, 1);
    assert_int_equal(fx->c_status[0], 0);
    assert_int_equal(creqs[0].req.sent, 1);
    pthread_join(th, NULL); /* the connection is closed now */
    usleep(20000);          /* ... and its end is in our socket, unread */
    assert_int_equal(submit(fx, 1, "GET", "/b", NULL, NULL, 0), 0);
    if (probe) {
        o->n = 1;
        assert_int_equal(pthread_create(&th, NULL, oneshot_main, o), 0);
    }
    run_until(fx, &fx->c_done, 2);
    if (probe)
        pthread_join(th, NULL);
    close(o->lfd);
    client_stop(fx);
}

/* With probe_idle, a request submitted after the server closed the idle
 * kept-alive connection goes out on a new one and succeeds. */
static void test_client_probe_idle(void **state)
{
    struct fx *fx = *state;
    struct oneshot o = {.n = 1};

    oneshot_roundtrip(fx, &o, 1);
    assert_int_equal(fx->c_status[1], 0);
    assert_string_equal(fx->c_body[1], "200 ok");
    assert_int_equal(o.conns, 2);
}

/* Without it the request is written where nobody reads it: it fails, and
 * sent says it may have reached the server. Refused requests say not. */
static void test_client_sent_flag(void **state)
{
    struct fx *fx = *state;
    struct oneshot o = {.n = 1};

    oneshot_roundtrip(fx, &o, 0);
    assert_int_equal(fx->c_status[1], MS_EIO);
    assert_int_equal(creqs[1].req.sent, 1);
    assert_int_equal(o.conns, 1);
}

/* When the server closes the connection (Connection: close) the next
 * request, submitted from the callback, goes on a new connection. */
static void test_client_reconnect(void **state)
{
    struct fx *fx = *state;
    struct ms_http_header h[] = {{"Connection", "close"}};

    start_server(fx, NULL);
    client_start(fx, NULL);
    fx->chain = 1;
    assert_int_equal(submit(fx, 0, "GET", "/echo", NULL, h, 1), 0);
    run_until(fx, &fx->c_done, 2);
    assert_int_equal(fx->c_status[0], 0);
    assert_int_equal(fx->c_status[1], 0);
    assert_string_equal(fx->c_body[1], "200 GET /echo?again ");
    client_stop(fx);
}

/* A request without an answer times out with MS_ETIMEOUT; the server sees
 * the connection go and cancels the pending request. */
static void test_client_timeout(void **state)
{
    struct fx *fx = *state;
    struct ms_http_client_config cfg = {.request_timeout_ms = 100};

    start_server(fx, NULL);
    client_start(fx, &cfg);
    assert_int_equal(submit(fx, 0, "GET", "/hold", NULL, NULL, 0), 0);
    run_until(fx, &fx->c_done, 1);
    assert_int_equal(fx->c_status[0], MS_ETIMEOUT);
    run_until(fx, &fx->ncancel, 1);
    assert_int_equal(ms_http_respond(fx->held[0], 200, NULL, "x", 1),
                     MS_ECANCELED);
    client_stop(fx);
}

/* A response over max_response_bytes fails with MS_ETOOLARGE; the next
 * request works on a new connection. */
static void test_client_too_large(void **state)
{
    struct fx *fx = *state;
    struct ms_http_client_config cfg = {.max_response_bytes = 1000};

    start_server(fx, NULL);
    client_start(fx, &cfg);
    assert_int_equal(submit(fx, 0, "GET", "/big", NULL, NULL, 0), 0);
    run_until(fx, &fx->c_done, 1);
    assert_int_equal(fx->c_status[0], MS_ETOOLARGE);
    assert_non_null(strstr(fx->client.errmsg, "too large"));
    assert_int_equal(submit(fx, 1, "GET", "/echo", NULL, NULL, 0), 0);
    run_until(fx, &fx->c_done, 2);
    assert_int_equal(fx->c_status[1], 0);
    assert_string_equal(fx->c_body[1], "200 GET /echo ");
    client_stop(fx);
}

/* Closing the client fails pending requests with MS_ECANCELED and refuses
 * new ones. */
static void test_client_close_pending(void **state)
{
    struct fx *fx = *state;

    start_server(fx, NULL);
    client_start(fx, NULL);
    assert_int_equal(submit(fx, 0, "GET", "/hold", NULL, NULL, 0), 0);
    run_until(fx, &fx->nheld, 1);
    ms_http_client_close(&fx->client, on_client_closed);
    assert_int_equal(fx->c_status[0], MS_ECANCELED);
    assert_int_equal(submit(fx, 1, "GET", "/", NULL, NULL, 0), MS_ESHUTDOWN);
    run_until(fx, &fx->client_closed, 1);
    run_until(fx, &fx->ncancel, 1);
    assert_int_equal(ms_http_respond(fx->held[0], 200, NULL, "x", 1),
                     MS_ECANCELED);
}

/* Throughput of the client against the server on one loop (printed, not
 * asserted; set MS_HTTP_BENCH=1). */
static void test_bench(void **state)
{
    struct fx *fx = *state;
    uint64_t t0;
    int i, rounds = 0;

    if (getenv("MS_HTTP_BENCH") == NULL)
        skip();
    start_server(fx, NULL);
    client_start(fx, NULL);
    t0 = now_ms();
    while (now_ms() - t0 < 2000) {
        fx->c_done = 0;
        for (i = 0; i < 100; i++)
            assert_int_equal(submit(fx, i, "GET", "/hdr", NULL, NULL, 0), 0);
        run_until(fx, &fx->c_done, 100);
        rounds++;
    }
    print_message("pipelined x100, 1 conn, same loop: %.0f req/s\n",
                  rounds * 100 * 1000.0 / (double)(now_ms() - t0));
    client_stop(fx);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_get_and_post),
        T(test_keep_alive),
        T(test_pipeline_reverse),
        T(test_pipeline_one_write),
        T(test_pipeline_bound),
        T(test_split_input),
        T(test_garbage),
        T(test_async_response),
        T(test_stream),
        T(test_stream_http10),
        cmocka_unit_test(test_pct_decode),
        cmocka_unit_test(test_query_get),
        T(test_request_accessors),
        T(test_head),
        T(test_connection_close),
        T(test_expect_continue),
        T(test_large_bodies),
        T(test_slow_reader),
        T(test_header_too_large),
        T(test_body_too_large),
        T(test_malformed),
        T(test_header_timeout),
        T(test_idle_timeout),
        T(test_max_connections),
        T(test_client_disconnect),
        T(test_graceful_stop),
        T(test_hard_close),
        T(test_listen_errors),
        T(test_client_many),
        T(test_client_mixed),
        T(test_client_refused),
        T(test_client_reconnect),
        T(test_client_timeout),
        T(test_client_probe_idle),
        T(test_client_sent_flag),
        T(test_client_too_large),
        T(test_client_close_pending),
        T(test_bench),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
