/* server.c - gRPC over HTTP/2 with nghttp2 on libuv (see server.h). */
#include "grpc/server.h"
#include "tls/tls.h"
#include "util/log.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define RBUF_SIZE (64 * 1024)
#define STREAM_WINDOW (1 << 20)
#define CONN_WINDOW (16 << 20)
#define WRITE_PAUSE (4u << 20) /* stop reading while this much is unsent */

struct ms_grpc_conn {
    uv_tcp_t tcp;
    struct ms_grpc_server *srv;
    struct ms_grpc_conn *next, *prev;
    uv_shutdown_t shut;
    nghttp2_session *ng;
    struct ms_grpc_call *calls; /* open or not yet finished */
    unsigned nstreams;
    uint64_t last_active;
    size_t unsent; /* bytes handed to uv_write, not yet written */
    bool closing;
    bool handle_closed;
    bool reading;
    bool dirty;
    bool goaway;
    bool ending;        /* shutdown issued: close once the last bytes are out */
    struct ms_tls *tls; /* TLS session (handed over after the handshake by
                           the HTTP listener), or NULL for h2c */
    char remote[64];
};

struct wreq {
    uv_write_t req;
    size_t len;
    char data[];
};

static void conn_close(struct ms_grpc_conn *c);
static void conn_end(struct ms_grpc_conn *c);
static void conn_flush(struct ms_grpc_conn *c);
static int tls_send(struct ms_grpc_conn *c);
static void mark_dirty(struct ms_grpc_conn *c);
static bool wants_more(const struct ms_grpc_call *call);

/* --- helpers ------------------------------------------------------------ */

int ms_grpc_parse_timeout(const char *v, uint64_t *ms)
{
    uint64_t n = 0;
    size_t i, len = strlen(v);

    if (len < 2 || len > 9)
        return MS_EMALFORMED;
    for (i = 0; i + 1 < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return MS_EMALFORMED;
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    switch (v[len - 1]) {
    case 'H':
        *ms = n * 3600000;
        break;
    case 'M':
        *ms = n * 60000;
        break;
    case 'S':
        *ms = n * 1000;
        break;
    case 'm':
        *ms = n;
        break;
    case 'u':
        *ms = (n + 999) / 1000;
        break;
    case 'n':
        *ms = (n + 999999) / 1000000;
        break;
    default:
        return MS_EMALFORMED;
    }
    return 0;
}

int ms_grpc_pct_encode(struct ms_buf *out, const char *msg)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
            if (ms_buf_putc(out, *p) != 0)
                return MS_ENOMEM;
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            if (ms_buf_append(out, e, 3) != 0)
                return MS_ENOMEM;
        }
    }
    return 0;
}

static nghttp2_nv nv(const char *name, const char *value)
{
    nghttp2_nv v = {(uint8_t *)name, (uint8_t *)value, strlen(name),
                    strlen(value), NGHTTP2_NV_FLAG_NONE};
    return v;
}

/* --- calls ---------------------------------------------------------------- */

static void call_unlink_free(struct ms_grpc_call *call)
{
    struct ms_grpc_conn *c = call->conn;

    if (call->prev != NULL)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next != NULL)
        call->next->prev = call->prev;
    ms_buf_free(&call->in);
    if (!call->out_inline)
        ms_buf_free(&call->out);
    free(call->message);
    free(call);
    if (c->closing)
        conn_close(c); /* may free c now that a call is gone */
}

/* The stream is gone for the handler: tell it once. */
static void call_cancel(struct ms_grpc_call *call)
{
    if (call->cancel_told)
        return;
    call->cancel_told = true;
    call->answered = true;
    if (!call->started) {
        call->finished = true; /* no handler ever saw it: ours to free */
        return;
    }
    if (!call->finished && call->on_cancel != NULL)
        call->on_cancel(call);
}

static ssize_t read_data(nghttp2_session *ng, int32_t sid, uint8_t *buf,
                         size_t length, uint32_t *flags,
                         nghttp2_data_source *src, void *user)
{
    struct ms_grpc_call *call = src->ptr;
    size_t avail = call->out.len - call->out_off;
    (void)user;

    if (avail > 0) {
        size_t n = avail < length ? avail : length;
        memcpy(buf, call->out.data + call->out_off, n);
        call->out_off += n;
        if (call->out_off == call->out.len)
            call->out.len = call->out_off = 0;
        return (ssize_t)n;
    }
    if (call->trailers_due) {
        char code[16];
        struct ms_buf m = MS_BUF_INIT;
        nghttp2_nv t[2];

        snprintf(code, sizeof(code), "%d", call->status);
        t[0] = nv("grpc-status", code);
        if (ms_grpc_pct_encode(&m, call->message ? call->message : "") != 0 ||
            ms_buf_putc(&m, 0) != 0) {
            ms_buf_free(&m);
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        t[1] = nv("grpc-message", (const char *)m.data);
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        nghttp2_submit_trailer(ng, sid, t, 2);
        ms_buf_free(&m);
        call->trailers_due = false;
        return 0;
    }
    call->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
}

static int send_headers(struct ms_grpc_call *call)
{
    nghttp2_nv h[2] = {nv(":status", "200"),
                       nv("content-type", "application/grpc")};
    nghttp2_data_provider dp = {.source.ptr = call, .read_callback = read_data};

    call->headers_sent = true;
    return nghttp2_submit_response(call->conn->ng, call->stream_id, h, 2, &dp)
               ? MS_ENOMEM
               : 0;
}

int ms_grpc_send(struct ms_grpc_call *call, const void *msg, size_t len)
{
    uint8_t pre[5];

    if (call->finished)
        return MS_EINVAL;
    if (call->answered || call->closed)
        return MS_ECANCELED;
    pre[0] = 0;
    pre[1] = (uint8_t)(len >> 24);
    pre[2] = (uint8_t)(len >> 16);
    pre[3] = (uint8_t)(len >> 8);
    pre[4] = (uint8_t)len;
    if (call->out_off > 0 && call->out_off > call->out.len / 2) {
        memmove(call->out.data, call->out.data + call->out_off,
                call->out.len - call->out_off);
        call->out.len -= call->out_off;
        call->out_off = 0;
    }
    if (call->out.cap == 0 && len + 5 <= sizeof(call->out_small)) {
        /* the first message, small: the call's own bytes, no malloc */
        call->out.data = call->out_small;
        call->out.cap = sizeof(call->out_small);
        call->out_inline = true;
    } else if (call->out_inline &&
               call->out.len + 5 + len > sizeof(call->out_small)) {
        /* a stream outgrows it: move what is queued to the heap */
        struct ms_buf heap = MS_BUF_INIT;
        if (ms_buf_reserve(&heap, call->out.len + 5 + len) != 0 ||
            ms_buf_append(&heap, call->out.data, call->out.len) != 0) {
            ms_buf_free(&heap);
            return MS_ENOMEM;
        }
        call->out = heap;
        call->out_inline = false;
    }
    if (ms_buf_append(&call->out, pre, 5) != 0 ||
        ms_buf_append(&call->out, msg, len) != 0)
        return MS_ENOMEM;
    if (!call->headers_sent) {
        if (send_headers(call) != 0)
            return MS_ENOMEM;
    } else if (call->deferred) {
        call->deferred = false;
        nghttp2_session_resume_data(call->conn->ng, call->stream_id);
    }
    mark_dirty(call->conn);
    return 0;
}

size_t ms_grpc_queued(const struct ms_grpc_call *call)
{
    return call->out.len - call->out_off;
}

/* Sends status (trailers or trailers-only); no handler involved. */
static void answer(struct ms_grpc_call *call, int code, const char *message)
{
    struct ms_grpc_conn *c = call->conn;

    if (call->answered || call->closed)
        return;
    call->answered = true;
    call->status = code;
    free(call->message);
    call->message = message ? strdup(message) : NULL;
    if (call->headers_sent) {
        call->trailers_due = true;
        if (call->deferred) {
            call->deferred = false;
            nghttp2_session_resume_data(c->ng, call->stream_id);
        }
    } else {
        char cs[16];
        struct ms_buf m = MS_BUF_INIT;
        nghttp2_nv h[4];

        snprintf(cs, sizeof(cs), "%d", code);
        h[0] = nv(":status", "200");
        h[1] = nv("content-type", "application/grpc");
        h[2] = nv("grpc-status", cs);
        if (ms_grpc_pct_encode(&m, message ? message : "") != 0 ||
            ms_buf_putc(&m, 0) != 0) {
            ms_buf_free(&m);
            nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, call->stream_id,
                                      NGHTTP2_INTERNAL_ERROR);
        } else {
            h[3] = nv("grpc-message", (const char *)m.data);
            call->headers_sent = true;
            nghttp2_submit_response(c->ng, call->stream_id, h, 4, NULL);
            ms_buf_free(&m);
        }
    }
    mark_dirty(c);
}

void ms_grpc_finish(struct ms_grpc_call *call, int code, const char *message)
{
    if (call->finished)
        return;
    call->finished = true;
    answer(call, code, message);
    if (call->closed && !call->busy)
        call_unlink_free(call);
}

/* --- nghttp2 callbacks ------------------------------------------------------
 */

static struct ms_grpc_call *stream_call(struct ms_grpc_conn *c, int32_t sid)
{
    return nghttp2_session_get_stream_user_data(c->ng, sid);
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f,
                            void *user)
{
    struct ms_grpc_conn *c = user;
    struct ms_grpc_call *call;

    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if (c->srv->stopping || c->goaway) {
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id,
                                  NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    call = calloc(1, sizeof(*call));
    if (call == NULL)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    call->conn = c;
    call->srv = c->srv;
    call->stream_id = f->hd.stream_id;
    call->path = call->pathbuf;
    call->remote = c->remote;
    call->next = c->calls;
    if (c->calls != NULL)
        c->calls->prev = call;
    c->calls = call;
    c->nstreams++;
    nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, call);
    return 0;
}

static bool name_is(const uint8_t *n, size_t nlen, const char *s)
{
    return nlen == strlen(s) && memcmp(n, s, nlen) == 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f,
                     const uint8_t *name, size_t nlen, const uint8_t *value,
                     size_t vlen, uint8_t flags, void *user)
{
    struct ms_grpc_conn *c = user;
    struct ms_grpc_call *call = stream_call(c, f->hd.stream_id);
    (void)ng;
    (void)flags;

    if (call == NULL || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if (name_is(name, nlen, ":path")) {
        if (vlen >= sizeof(call->pathbuf)) {
            call->bad_header = true;
            return 0;
        }
        memcpy(call->pathbuf, value, vlen);
        call->pathbuf[vlen] = 0;
    } else if (name_is(name, nlen, ":method")) {
        call->method_post = vlen == 4 && memcmp(value, "POST", 4) == 0;
    } else if (name_is(name, nlen, "content-type")) {
        size_t n =
            vlen < sizeof(call->ctype) - 1 ? vlen : sizeof(call->ctype) - 1;
        memcpy(call->ctype, value, n);
        call->ctype[n] = 0;
    } else if (name_is(name, nlen, "grpc-timeout")) {
        char v[16];
        uint64_t ms;
        if (vlen < sizeof(v)) {
            memcpy(v, value, vlen);
            v[vlen] = 0;
            if (ms_grpc_parse_timeout(v, &ms) == 0)
                call->deadline_ms = uv_now(c->srv->loop) + ms;
        }
    } else if (name_is(name, nlen, "hasleader")) {
        call->leader_required = vlen == 4 && memcmp(value, "true", 4) == 0;
    } else if (name_is(name, nlen, "token")) {
        call->token_bad = vlen >= sizeof(call->token);
        if (!call->token_bad) {
            memcpy(call->token, value, vlen);
            call->token[vlen] = 0;
        }
    }
    return 0;
}

static bool grpc_ctype(const char *ct)
{
    size_t n = strlen("application/grpc");
    return strncasecmp(ct, "application/grpc", n) == 0 &&
           (ct[n] == 0 || ct[n] == '+' || ct[n] == ';');
}

/* Request headers complete: check them and hand the call to on_call. */
static void start_call(struct ms_grpc_conn *c, struct ms_grpc_call *call)
{
    if (!call->method_post || call->pathbuf[0] != '/' || call->bad_header) {
        c->srv->bad_frames++;
        call->answered = true;
        nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, call->stream_id,
                                  NGHTTP2_PROTOCOL_ERROR);
        call->finished = true; /* freed when the stream closes */
        return;
    }
    if (!grpc_ctype(call->ctype)) {
        /* what grpc-go answers a non-gRPC request on its own transport */
        call->finished = true;
        answer(call, 3,
               call->ctype[0] ? "invalid gRPC request content-type"
                              : "missing content-type field");
        return;
    }
    c->srv->calls++;
    call->started = true;
    c->srv->on_call(call, c->srv->data);
}

/* Delivers the complete messages buffered in call->in. */
/* Hands every whole message in data[0..n) to the handler (stops when the
 * call ends); returns the bytes taken. */
static size_t deliver_from(struct ms_grpc_call *call, const uint8_t *data,
                           size_t n)
{
    size_t off = 0;

    while (!call->finished && !call->answered && n - off >= 5) {
        const uint8_t *p = data + off;
        uint32_t len = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 |
                       (uint32_t)p[3] << 8 | p[4];
        if (p[0] != 0) {
            answer(call, 12,
                   "grpc: Decompressor is not installed for grpc-encoding");
            call_cancel(call);
            break;
        }
        if (len > call->srv->cfg.max_recv_bytes) {
            char m[128];
            snprintf(m, sizeof(m),
                     "grpc: received message larger than max (%u vs. %zu)", len,
                     call->srv->cfg.max_recv_bytes);
            answer(call, 8, m);
            call_cancel(call);
            break;
        }
        if (n - off - 5 < len)
            break;
        off += 5 + len;
        if (call->on_message != NULL)
            call->on_message(call, p + 5, len);
    }
    return off;
}

/* Hands the whole messages buffered in call->in to the handler. */
static void deliver(struct ms_grpc_call *call)
{
    size_t off = deliver_from(call, call->in.data, call->in.len);

    if (call->finished || call->answered) {
        ms_buf_reset(&call->in);
        return;
    }
    if (off > 0) {
        memmove(call->in.data, call->in.data + off, call->in.len - off);
        call->in.len -= off;
    }
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t sid,
                         const uint8_t *data, size_t len, void *user)
{
    struct ms_grpc_conn *c = user;
    struct ms_grpc_call *call = stream_call(c, sid);
    (void)ng;
    (void)flags;

    if (call == NULL || call->finished || call->answered)
        return 0;
    if (call->in.len == 0) {
        /* Usual case, a unary request in one DATA frame: hand it over from
         * nghttp2's buffer and keep only a partial message. */
        size_t off = deliver_from(call, data, len);
        if (call->finished || call->answered || off == len)
            return 0;
        data += off;
        len -= off;
        return ms_buf_append(&call->in, data, len) != 0
                   ? NGHTTP2_ERR_CALLBACK_FAILURE
                   : 0;
    }
    if (ms_buf_append(&call->in, data, len) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    deliver(call);
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f,
                         void *user)
{
    struct ms_grpc_conn *c = user;
    struct ms_grpc_call *call;
    (void)ng;

    c->last_active = uv_now(c->srv->loop);
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
        return 0;
    call = stream_call(c, f->hd.stream_id);
    if (call == NULL)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
        start_call(c, call);
    if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && !call->remote_done) {
        call->remote_done = true;
        if (!call->finished && !call->answered) {
            if (call->in.len > 0) {
                answer(call, 13, "grpc: truncated message");
                call_cancel(call);
            } else if (call->on_message != NULL) {
                call->on_message(call, NULL, 0);
            }
        }
    }
    return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *f,
                         void *user)
{
    struct ms_grpc_conn *c = user;
    struct ms_grpc_call *call;

    if (f->hd.type != NGHTTP2_HEADERS ||
        !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    call = stream_call(c, f->hd.stream_id);
    /* status sent on a stream the client still sends on: end it (grpc-go) */
    if (call != NULL && !call->remote_done)
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id,
                                  NGHTTP2_NO_ERROR);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t sid, uint32_t err,
                           void *user)
{
    struct ms_grpc_conn *c = user;
    struct ms_grpc_call *call = stream_call(c, sid);
    (void)ng;
    (void)err;

    if (call == NULL)
        return 0;
    call->closed = true;
    c->nstreams--;
    c->last_active = uv_now(c->srv->loop);
    call->busy = true; /* a finish inside on_cancel must not free it */
    call_cancel(call);
    call->busy = false;
    if (call->finished)
        call_unlink_free(call);
    return 0;
}

/* --- connection I/O ----------------------------------------------------------
 */

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct ms_grpc_conn *c = req->handle->data;

    c->unsent -= w->len;
    free(w);
    if (status < 0)
        conn_close(c);
    else if (!c->closing && !c->reading)
        conn_flush(c); /* resumes reading below the bound */
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    static char rbuf[RBUF_SIZE]; /* one loop thread; consumed at once */
    (void)h;
    (void)size;
    *buf = uv_buf_init(rbuf, sizeof(rbuf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void update_reading(struct ms_grpc_conn *c)
{
    bool want = c->unsent < WRITE_PAUSE;

    if (c->closing)
        return;
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
            conn_close(c);
            return;
        }
        c->reading = true;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    conn_close(req->handle->data);
}

/* The session is over: close once the queued bytes are written. */
static void conn_end(struct ms_grpc_conn *c)
{
    if (c->ending || c->closing)
        return;
    c->ending = true;
    if (c->tls != NULL) {
        ms_tls_close_notify(c->tls); /* no wait for the client's */
        if (tls_send(c) != 0)
            return;
    }
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        conn_close(c);
}

/* Hands len bytes to uv_write (copied). Returns 0 or -1 (c closed). */
static int conn_send(struct ms_grpc_conn *c, const void *data, size_t len)
{
    struct wreq *w;
    uv_buf_t ub = uv_buf_init((char *)data, (unsigned)len);
    /* The kernel usually takes it all at once: try that first, and queue a
     * write request only for the rest. Every uv_write costs a copy, a
     * completion callback and, in libuv 1.44, an epoll_ctl on the next poll
     * (the watcher is re-armed after the write drains). */
    int rc = len == 0      ? 0
             : c->unsent == 0 ? uv_try_write((uv_stream_t *)&c->tcp, &ub, 1)
                              : UV_EAGAIN; /* behind queued bytes: in order */
    size_t done = rc > 0 ? (size_t)rc : 0;

    if (rc < 0 && rc != UV_EAGAIN && rc != UV_ENOSYS) {
        conn_close(c);
        return -1;
    }
    if (done == len)
        return 0;
    len -= done;
    w = malloc(sizeof(*w) + len);
    if (w == NULL) {
        conn_close(c);
        return -1;
    }
    memcpy(w->data, (const char *)data + done, len);
    w->len = len;
    ub = uv_buf_init(w->data, (unsigned)len);
    c->unsent += len;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &ub, 1, on_write) != 0) {
        c->unsent -= len;
        free(w);
        conn_close(c);
        return -1;
    }
    return 0;
}

/* Sends the ciphertext c's TLS session has ready. 0 or -1 (c closed). */
static int tls_send(struct ms_grpc_conn *c)
{
    struct ms_buf b = MS_BUF_INIT;
    size_t n = ms_tls_pending(c->tls);
    int rc;

    if (n == 0)
        return 0;
    if (ms_buf_reserve(&b, n) != 0) {
        conn_close(c);
        return -1;
    }
    b.len = ms_tls_drain(c->tls, b.data, n);
    rc = conn_send(c, b.data, b.len);
    ms_buf_free(&b);
    return rc;
}

/* Writes what nghttp2 wants to send; ends c when the session is over. */
static void conn_flush(struct ms_grpc_conn *c)
{
    struct ms_buf b = MS_BUF_INIT;
    const uint8_t *p;
    ssize_t n;

    c->dirty = false;
    if (c->closing || c->ending)
        return;
    while ((n = nghttp2_session_mem_send(c->ng, &p)) > 0) {
        if (ms_buf_append(&b, p, (size_t)n) != 0) {
            ms_buf_free(&b);
            conn_close(c);
            return;
        }
    }
    if (n < 0) {
        ms_buf_free(&b);
        conn_close(c);
        return;
    }
    if (b.len > 0 && c->tls != NULL) {
        /* everything nghttp2 produced in one run of records */
        if (ms_tls_write(c->tls, b.data, b.len) != 0) {
            ms_buf_free(&b);
            conn_close(c);
            return;
        }
        ms_buf_free(&b);
        if (tls_send(c) != 0)
            return;
    } else if (b.len > 0) {
        int rc = conn_send(c, b.data, b.len);
        ms_buf_free(&b);
        if (rc != 0)
            return;
    }
    ms_buf_free(&b);
    for (struct ms_grpc_call *call = c->calls; call != NULL;
         call = call->next) {
        if (wants_more(call)) {
            mark_dirty(c); /* its producer runs in on_flush */
            break;
        }
    }
    if ((!nghttp2_session_want_read(c->ng) &&
         !nghttp2_session_want_write(c->ng)) ||
        (c->goaway && c->nstreams == 0)) {
        conn_end(c);
        return;
    }
    update_reading(c);
}

static bool wants_more(const struct ms_grpc_call *call)
{
    return call->on_drained != NULL && !call->answered && !call->finished &&
           ms_grpc_queued(call) < MS_GRPC_DRAIN_BYTES;
}

static void on_flush(uv_idle_t *h)
{
    struct ms_grpc_server *s = h->data;
    struct ms_grpc_conn *c, *next;
    struct ms_grpc_call *call, *cn;

    uv_idle_stop(&s->flush);
    s->flush_on = false;
    for (c = s->conns; c != NULL; c = next) {
        next = c->next;
        if (!c->dirty || c->closing)
            continue;
        for (call = c->calls; call != NULL; call = cn) {
            cn = call->next;
            if (wants_more(call))
                call->on_drained(call);
        }
        conn_flush(c);
    }
}

static void mark_dirty(struct ms_grpc_conn *c)
{
    struct ms_grpc_server *s = c->srv;

    c->dirty = true;
    if (!s->flush_on && !uv_is_closing((uv_handle_t *)&s->flush)) {
        uv_idle_start(&s->flush, on_flush);
        s->flush_on = true;
    }
}

static void feed(struct ms_grpc_conn *c, const uint8_t *data, size_t len)
{
    ssize_t rv = nghttp2_session_mem_recv(c->ng, data, len);

    if (rv < 0) {
        /* nghttp2 queued a GOAWAY where the protocol allows: send it */
        c->srv->bad_frames++;
        conn_flush(c);
        conn_close(c);
        return;
    }
    conn_flush(c);
}

/* Decrypts what c's TLS session holds and feeds it to nghttp2. */
static void tls_pump(struct ms_grpc_conn *c)
{
    static uint8_t plain[RBUF_SIZE]; /* one loop thread; consumed at once */
    size_t n;
    int rc;

    while (!c->closing) {
        rc = ms_tls_read(c->tls, plain, sizeof(plain), &n);
        if (rc == 0 && tls_send(c) != 0)
            return;
        if (rc != 0) {
            /* close_notify, or a bad record (logged at debug: the
             * client's problem) */
            if (rc != MS_ESHUTDOWN)
                ms_debug("grpc: TLS from %s: %s", c->remote,
                         ms_tls_errmsg(c->tls));
            conn_close(c);
            return;
        }
        if (n == 0)
            return;
        feed(c, plain, n);
    }
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct ms_grpc_conn *c = s->data;

    if (n == 0 || c->closing)
        return;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->last_active = uv_now(c->srv->loop);
    if (c->tls == NULL) {
        feed(c, (const uint8_t *)buf->base, (size_t)n);
        return;
    }
    if (ms_tls_feed(c->tls, buf->base, (size_t)n) != 0) {
        conn_close(c);
        return;
    }
    tls_pump(c);
}

static void on_handle_close(uv_handle_t *h)
{
    struct ms_grpc_server *s = h->data;

    s->nhandles--;
    if (s->nhandles == 0 && s->close_cb != NULL) {
        ms_grpc_close_cb cb = s->close_cb;
        s->close_cb = NULL;
        cb(s); /* may free s */
    }
}

/* Stopping and the last connection gone: close the handles, then cb. */
static void server_maybe_done(struct ms_grpc_server *s)
{
    if (!s->stopping || s->conns != NULL || s->handles_closing)
        return;
    s->handles_closing = true;
    uv_close((uv_handle_t *)&s->flush, on_handle_close);
    uv_close((uv_handle_t *)&s->timer, on_handle_close);
}

static void conn_free(struct ms_grpc_conn *c)
{
    struct ms_grpc_server *s = c->srv;

    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    s->nconns--;
    ms_tls_free(c->tls);
    free(c);
    server_maybe_done(s);
}

static void on_close(uv_handle_t *h)
{
    struct ms_grpc_conn *c = h->data;

    c->handle_closed = true;
    if (c->calls == NULL)
        conn_free(c);
}

/* Closes c: every call gets on_cancel; c is freed once the handle is
 * closed and every handler finished its call. Called again as calls end. */
static void conn_close(struct ms_grpc_conn *c)
{
    struct ms_grpc_call *call, *next;

    if (!c->closing) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, on_close);
        /* the session goes first: no stream callbacks from here on */
        nghttp2_session_del(c->ng);
        c->ng = NULL;
        for (call = c->calls; call != NULL; call = call->next)
            call->closed = true;
        for (call = c->calls; call != NULL; call = next) {
            next = call->next;
            call_cancel(call);
        }
        for (call = c->calls; call != NULL; call = next) {
            next = call->next;
            if (call->finished)
                call_unlink_free(call); /* c stays: its handle is open */
        }
        return;
    }
    if (c->calls == NULL && c->handle_closed)
        conn_free(c);
}

/* --- the server
 * ----------------------------------------------------------------- */

static void on_tick(uv_timer_t *t)
{
    struct ms_grpc_server *s = t->data;
    uint64_t now = uv_now(s->loop);
    struct ms_grpc_conn *c, *next;
    struct ms_grpc_call *call, *cn;

    for (c = s->conns; c != NULL; c = next) {
        next = c->next;
        if (c->closing)
            continue;
        for (call = c->calls; call != NULL; call = cn) {
            cn = call->next;
            if (call->deadline_ms != 0 && now >= call->deadline_ms &&
                !call->answered) {
                answer(call, 4, "context deadline exceeded");
                call_cancel(call);
            }
        }
        if (c->nstreams == 0 &&
            now - c->last_active >= s->cfg.idle_timeout_ms && !c->goaway) {
            c->goaway = true;
            nghttp2_submit_goaway(
                c->ng, NGHTTP2_FLAG_NONE,
                nghttp2_session_get_last_proc_stream_id(c->ng),
                NGHTTP2_NO_ERROR, (const uint8_t *)"idle", 4);
            mark_dirty(c);
        }
    }
}

int ms_grpc_server_init(struct ms_grpc_server *s, uv_loop_t *loop,
                        const struct ms_grpc_config *cfg,
                        ms_grpc_call_cb on_call)
{
    memset(s, 0, sizeof(*s));
    if (loop == NULL || on_call == NULL)
        return ms_seterr(s->errmsg, sizeof(s->errmsg), MS_EINVAL,
                         "grpc init: loop and on_call are required");
    s->loop = loop;
    s->on_call = on_call;
    s->cfg.max_recv_bytes = 2 * 1024 * 1024 + 1024;
    s->cfg.max_streams = 1024;
    s->cfg.max_connections = 1024;
    s->cfg.idle_timeout_ms = 300000;
    if (cfg != NULL) {
        if (cfg->max_recv_bytes)
            s->cfg.max_recv_bytes = cfg->max_recv_bytes;
        if (cfg->max_streams)
            s->cfg.max_streams = cfg->max_streams;
        if (cfg->max_connections)
            s->cfg.max_connections = cfg->max_connections;
        if (cfg->idle_timeout_ms)
            s->cfg.idle_timeout_ms = cfg->idle_timeout_ms;
    }
    uv_idle_init(loop, &s->flush);
    uv_timer_init(loop, &s->timer);
    s->flush.data = s->timer.data = s;
    s->nhandles = 2;
    uv_timer_start(&s->timer, on_tick, 250, 250);
    uv_unref((uv_handle_t *)&s->timer);
    return 0;
}

static nghttp2_session_callbacks *callbacks(void)
{
    static nghttp2_session_callbacks *cbs; /* immutable once made */

    if (cbs != NULL)
        return cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs,
                                                            on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs,
                                                              on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs,
                                                           on_stream_close);
    return cbs;
}

int ms_grpc_server_adopt(struct ms_grpc_server *s, uv_os_sock_t fd,
                         struct ms_tls *tls, const void *data, size_t len,
                         const char *remote)
{
    struct ms_grpc_conn *c;
    nghttp2_option *opt = NULL;
    nghttp2_settings_entry set[3] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s->cfg.max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 16384},
    };
    int rc;

    if (s->stopping || s->nconns >= s->cfg.max_connections) {
        ms_tls_free(tls);
        close(fd);
        return MS_ESHUTDOWN;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL || callbacks() == NULL || nghttp2_option_new(&opt) != 0) {
        free(c);
        ms_tls_free(tls);
        close(fd);
        return MS_ENOMEM;
    }
    /* our own checks of :method, :path and content-type: nghttp2's HTTP
     * messaging rules reset etcdctl's "http://" authority (GRPC_NOTES) */
    nghttp2_option_set_no_http_messaging(opt, 1);
    rc = nghttp2_session_server_new2(&c->ng, callbacks(), c, opt);
    nghttp2_option_del(opt);
    if (rc != 0) {
        free(c);
        ms_tls_free(tls);
        close(fd);
        return MS_ENOMEM;
    }
    c->tls = tls; /* freed with c from here on */
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    c->srv = s;
    snprintf(c->remote, sizeof(c->remote), "%s", remote ? remote : "");
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    s->conns_total++;
    c->last_active = uv_now(s->loop);
    if (uv_tcp_open(&c->tcp, fd) != 0) {
        close(fd);
        conn_close(c);
        return MS_EIO;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    /* SETTINGS at once: clients wait for them before their first call */
    nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, set, 3);
    nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0,
                                          CONN_WINDOW);
    feed(c, data, len);
    if (c->tls != NULL && !c->closing)
        tls_pump(c); /* records the listener had not decrypted yet */
    return 0;
}

void ms_grpc_server_stop(struct ms_grpc_server *s, ms_grpc_close_cb cb)
{
    struct ms_grpc_conn *c, *next;
    struct ms_grpc_call *call, *cn;

    s->close_cb = cb;
    if (!s->stopping) {
        s->stopping = true;
        for (c = s->conns; c != NULL; c = next) {
            next = c->next;
            if (c->closing)
                continue;
            c->goaway = true;
            nghttp2_submit_goaway(
                c->ng, NGHTTP2_FLAG_NONE,
                nghttp2_session_get_last_proc_stream_id(c->ng),
                NGHTTP2_NO_ERROR, NULL, 0);
            for (call = c->calls; call != NULL; call = cn) {
                cn = call->next;
                if (!call->answered && !call->finished &&
                    call->on_cancel != NULL) {
                    answer(call, 14, "etcdserver: server stopped");
                    call_cancel(call);
                }
            }
            conn_flush(c); /* ends c once its last stream is done */
        }
    }
    server_maybe_done(s);
}

unsigned ms_grpc_server_connections(const struct ms_grpc_server *s)
{
    return s->nconns;
}
