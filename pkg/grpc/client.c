/* client.c - async gRPC client for unary calls over one h2c connection:
 * nghttp2 client session on a libuv TCP handle, output of a whole loop
 * turn gathered into one write. */
#include "grpc/client.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/wire.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DEFAULT_MAX_RESPONSE (16u << 20)
#define CONN_WINDOW (16 << 20)
#define STREAM_WINDOW (1 << 20)
#define READ_CHUNK 65536

/* One call in flight: its request bytes and what came back. */
struct ms_grpc_client_stream {
    struct ms_grpc_client *client;
    struct ms_grpc_client_conn *conn;
    struct ms_grpc_client_call *call; /* NULL once called back (timed out) */
    struct ms_grpc_client_stream *prev, *next;
    uint64_t deadline; /* loop ms; 0: none */
    int32_t id;
    int http_status, grpc_status; /* -1: not seen */
    char message[200];
    uint8_t *out; /* 5-byte prefix + request */
    size_t out_len, out_off;
    uint8_t *in; /* DATA received */
    size_t in_len, in_cap;
};

struct ms_grpc_client_conn {
    struct ms_grpc_client *client;
    uv_tcp_t tcp;
    uv_connect_t creq;
    nghttp2_session *session;
    uint64_t connect_deadline;
    int connected, dead, in_read;
    unsigned queued; /* write requests not yet completed */
    char rbuf[READ_CHUNK];
};

struct wreq {
    uv_write_t req;
    struct ms_grpc_client_conn *conn;
    size_t len;
    uint8_t data[];
};

static void arm_timer(struct ms_grpc_client *c);

/* --- calls ---------------------------------------------------------------- */

static void unlink_stream(struct ms_grpc_client_stream *s)
{
    struct ms_grpc_client *c = s->client;

    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        c->streams = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

static void free_stream(struct ms_grpc_client_stream *s)
{
    free(s->out);
    free(s->in);
    free(s);
}

/* Calls back s's call once (rc, reply) and detaches it from the call. */
static void complete(struct ms_grpc_client_stream *s, int rc,
                     const struct ms_grpc_client_reply *reply)
{
    struct ms_grpc_client_call *call = s->call;

    if (call == NULL)
        return;
    s->call = NULL;
    call->stream = NULL;
    s->client->npending--;
    call->cb(call, rc, reply);
}

/* The stream ended normally: decode its answer and call back. */
static void finish_stream(struct ms_grpc_client_stream *s)
{
    struct ms_grpc_client *c = s->client;
    struct ms_grpc_client_reply r = {0};
    uint32_t len;

    if (s->call == NULL)
        return;
    if (s->http_status != 200 || s->grpc_status < 0) {
        snprintf(c->errmsg, sizeof(c->errmsg), "%s: %s", c->host,
                 s->http_status != 200 ? "HTTP status not 200"
                                       : "no grpc-status in the trailers");
        complete(s, MS_EMALFORMED, NULL);
        return;
    }
    r.status = s->grpc_status;
    r.message = s->message;
    if (s->in_len > 0) {
        if (s->in_len < 5)
            goto bad;
        len = (uint32_t)s->in[1] << 24 | (uint32_t)s->in[2] << 16 |
              (uint32_t)s->in[3] << 8 | s->in[4];
        if (s->in[0] != 0 || len != s->in_len - 5)
            goto bad;
        r.msg = s->in + 5;
        r.msg_len = len;
    }
    complete(s, 0, &r);
    return;
bad:
    snprintf(c->errmsg, sizeof(c->errmsg),
             "%s: answer not one uncompressed length-prefixed message",
             c->host);
    complete(s, MS_EMALFORMED, NULL);
}

/* --- connection ------------------------------------------------------------
 */

static void on_tcp_closed(uv_handle_t *h)
{
    struct ms_grpc_client_conn *conn = h->data;
    struct ms_grpc_client *c = conn->client;

    if (conn->session != NULL)
        nghttp2_session_del(conn->session);
    free(conn);
    c->nconns--;
    if (c->closing && c->nconns == 0 && c->timer_closed && c->close_cb)
        c->close_cb(c);
}

/* Ends conn: every call on it fails with rc (errmsg already set). */
static void conn_fail(struct ms_grpc_client_conn *conn, int rc)
{
    struct ms_grpc_client *c = conn->client;
    struct ms_grpc_client_stream *s, *next;

    if (conn->dead)
        return;
    conn->dead = 1;
    if (c->conn == conn)
        c->conn = NULL;
    for (s = c->streams; s != NULL; s = next) {
        next = s->next;
        if (s->conn != conn)
            continue;
        unlink_stream(s);
        if (conn->session != NULL)
            nghttp2_session_set_stream_user_data(conn->session, s->id, NULL);
        complete(s, rc, NULL);
        free_stream(s);
    }
    uv_close((uv_handle_t *)&conn->tcp, on_tcp_closed);
}

static void on_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct ms_grpc_client_conn *conn = w->conn;

    free(w);
    conn->queued--;
    if (status != 0 && !conn->dead) {
        snprintf(conn->client->errmsg, sizeof(conn->client->errmsg),
                 "%s: write: %s", conn->client->host, uv_strerror(status));
        conn_fail(conn, MS_EIO);
    }
}

/* Writes everything nghttp2 has to send now as one write: the frames of
 * every call started in this loop turn go out together. */
static void flush(struct ms_grpc_client_conn *conn)
{
    struct ms_grpc_client *c = conn->client;
    struct wreq *w = NULL;
    size_t total = 0, cap = 0;
    uv_buf_t b;
    int rc;

    if (!conn->connected || conn->dead)
        return;
    for (;;) {
        const uint8_t *data;
        ssize_t len = nghttp2_session_mem_send(conn->session, &data);

        if (len < 0) {
            free(w);
            snprintf(c->errmsg, sizeof(c->errmsg), "%s: http2: %s", c->host,
                     nghttp2_strerror((int)len));
            conn_fail(conn, MS_EIO);
            return;
        }
        if (len == 0)
            break;
        /* nghttp2's chunk is valid only until the next mem_send */
        if (total + (size_t)len > cap) {
            size_t ncap = cap ? cap * 2 : 16384;
            struct wreq *g;

            while (ncap < total + (size_t)len)
                ncap *= 2;
            if ((g = realloc(w, sizeof(*w) + ncap)) == NULL) {
                free(w);
                snprintf(c->errmsg, sizeof(c->errmsg), "%s: out of memory",
                         c->host);
                conn_fail(conn, MS_ENOMEM);
                return;
            }
            w = g;
            cap = ncap;
        }
        memcpy(w->data + total, data, (size_t)len);
        total += (size_t)len;
    }
    if (total > 0) {
        /* most often the kernel takes it all: no write request then (see
         * conn_flush in server.c) */
        b = uv_buf_init((char *)w->data, (unsigned)total);
        rc = conn->queued == 0 ? uv_try_write((uv_stream_t *)&conn->tcp, &b, 1)
                               : UV_EAGAIN;
        if (rc < 0 && rc != UV_EAGAIN && rc != UV_ENOSYS) {
            free(w);
            snprintf(c->errmsg, sizeof(c->errmsg), "%s: write: %s", c->host,
                     uv_strerror(rc));
            conn_fail(conn, MS_EIO);
            return;
        }
        if (rc > 0 && (size_t)rc == total) {
            free(w);
            goto done;
        }
        if (rc > 0) {
            memmove(w->data, w->data + rc, total - (size_t)rc);
            total -= (size_t)rc;
        }
        w->conn = conn;
        w->len = total;
        conn->queued++;
        b = uv_buf_init((char *)w->data, (unsigned)total);
        rc = uv_write(&w->req, (uv_stream_t *)&conn->tcp, &b, 1, on_written);
        if (rc != 0) {
            conn->queued--;
            free(w);
            snprintf(c->errmsg, sizeof(c->errmsg), "%s: write: %s", c->host,
                     uv_strerror(rc));
            conn_fail(conn, MS_EIO);
            return;
        }
    }
done:
    if (!nghttp2_session_want_read(conn->session) &&
        !nghttp2_session_want_write(conn->session)) {
        snprintf(c->errmsg, sizeof(c->errmsg), "%s: server ended the session",
                 c->host);
        conn_fail(conn, MS_EIO);
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct ms_grpc_client_conn *conn = h->data;

    (void)hint;
    *buf = uv_buf_init(conn->rbuf, sizeof(conn->rbuf));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct ms_grpc_client_conn *conn = st->data;
    struct ms_grpc_client *c = conn->client;
    ssize_t rc;

    if (nread == 0 || conn->dead)
        return;
    if (nread < 0) {
        snprintf(c->errmsg, sizeof(c->errmsg), "%s: %s", c->host,
                 nread == UV_EOF ? "server closed the connection"
                                 : uv_strerror((int)nread));
        conn_fail(conn, MS_EIO);
        return;
    }
    conn->in_read = 1;
    rc = nghttp2_session_mem_recv(conn->session, (const uint8_t *)buf->base,
                                  (size_t)nread);
    conn->in_read = 0;
    if (conn->dead)
        return;
    if (rc < 0) {
        snprintf(c->errmsg, sizeof(c->errmsg), "%s: http2: %s", c->host,
                 nghttp2_strerror((int)rc));
        conn_fail(conn, MS_EIO);
        return;
    }
    flush(conn);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct ms_grpc_client_conn *conn = req->data;
    struct ms_grpc_client *c = conn->client;
    int rc;

    if (conn->dead)
        return;
    if (status != 0) {
        snprintf(c->errmsg, sizeof(c->errmsg), "%s: connect: %s", c->host,
                 uv_strerror(status));
        conn_fail(conn, MS_EIO);
        return;
    }
    conn->connected = 1;
    uv_tcp_nodelay(&conn->tcp, 1);
    rc = uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read);
    if (rc != 0) {
        snprintf(c->errmsg, sizeof(c->errmsg), "%s: read: %s", c->host,
                 uv_strerror(rc));
        conn_fail(conn, MS_EIO);
        return;
    }
    flush(conn);
}

/* --- nghttp2 callbacks -----------------------------------------------------
 */

static struct ms_grpc_client_stream *stream_of(nghttp2_session *session,
                                               int32_t id)
{
    return nghttp2_session_get_stream_user_data(session, id);
}

static int hex_digit(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static void percent_decode(char *out, size_t size, const uint8_t *in,
                           size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len && n + 1 < size; i++) {
        int hi, lo;
        if (in[i] == '%' && i + 2 < len && (hi = hex_digit(in[i + 1])) >= 0 &&
            (lo = hex_digit(in[i + 2])) >= 0) {
            out[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[n++] = (char)in[i];
        }
    }
    out[n] = '\0';
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame,
                     const uint8_t *name, size_t namelen, const uint8_t *value,
                     size_t valuelen, uint8_t flags, void *user)
{
    struct ms_grpc_client_stream *s = stream_of(session, frame->hd.stream_id);
    char num[16];

    (void)flags;
    (void)user;
    if (s == NULL || frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        if (valuelen == 3)
            s->http_status = (value[0] - '0') * 100 + (value[1] - '0') * 10 +
                             (value[2] - '0');
    } else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        if (valuelen > 0 && valuelen < sizeof(num)) {
            char *end;
            long v;
            memcpy(num, value, valuelen);
            num[valuelen] = '\0';
            v = strtol(num, &end, 10);
            if (*end == '\0' && v >= 0 && v < 1000)
                s->grpc_status = (int)v;
        }
    } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
        percent_decode(s->message, sizeof(s->message), value, valuelen);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags,
                         int32_t stream_id, const uint8_t *data, size_t len,
                         void *user)
{
    struct ms_grpc_client_stream *s = stream_of(session, stream_id);
    struct ms_grpc_client *c;

    (void)flags;
    (void)user;
    if (s == NULL || s->call == NULL) /* gone, or timed out: dropped */
        return 0;
    c = s->client;
    if (s->in_len + len > c->cfg.max_response_bytes + 5) {
        snprintf(c->errmsg, sizeof(c->errmsg), "%s: answer over %zu bytes",
                 c->host, c->cfg.max_response_bytes);
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id,
                                  NGHTTP2_CANCEL);
        complete(s, MS_ETOOLARGE, NULL);
        return 0;
    }
    if (s->in_len + len > s->in_cap) {
        size_t cap = s->in_cap ? s->in_cap : 256;
        uint8_t *p;
        while (cap < s->in_len + len)
            cap *= 2;
        if ((p = realloc(s->in, cap)) == NULL)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        s->in = p;
        s->in_cap = cap;
    }
    memcpy(s->in + s->in_len, data, len);
    s->in_len += len;
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id,
                           uint32_t error_code, void *user)
{
    struct ms_grpc_client_stream *s = stream_of(session, stream_id);
    struct ms_grpc_client *c;

    (void)user;
    if (s == NULL)
        return 0;
    c = s->client;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    unlink_stream(s);
    /* a reset after complete trailers (grpc-go's RST_STREAM NO_ERROR) is
     * still an answer */
    if (s->call == NULL) {
        /* called back already (timed out): nothing to say */
    } else if (error_code != NGHTTP2_NO_ERROR && s->grpc_status < 0) {
        snprintf(c->errmsg, sizeof(c->errmsg), "%s: stream reset (%s)", c->host,
                 nghttp2_http2_strerror(error_code));
        complete(s, MS_EIO, NULL);
    } else {
        finish_stream(s);
    }
    free_stream(s);
    return 0;
}

static ssize_t read_body(nghttp2_session *session, int32_t stream_id,
                         uint8_t *buf, size_t length, uint32_t *flags,
                         nghttp2_data_source *source, void *user)
{
    struct ms_grpc_client_stream *s = source->ptr;
    size_t n = s->out_len - s->out_off;

    (void)session;
    (void)stream_id;
    (void)user;
    if (n > length)
        n = length;
    memcpy(buf, s->out + s->out_off, n);
    s->out_off += n;
    if (s->out_off == s->out_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int conn_open(struct ms_grpc_client *c)
{
    struct ms_grpc_client_conn *conn = calloc(1, sizeof(*conn));
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
    };
    int rc;

    if (conn == NULL || nghttp2_session_callbacks_new(&cbs) != 0) {
        free(conn);
        snprintf(c->errmsg, sizeof(c->errmsg), "%s: out of memory", c->host);
        return MS_ENOMEM;
    }
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs,
                                                              on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs,
                                                           on_stream_close);
    rc = nghttp2_session_client_new(&conn->session, cbs, conn);
    nghttp2_session_callbacks_del(cbs);
    if (rc != 0 ||
        nghttp2_submit_settings(conn->session, NGHTTP2_FLAG_NONE, iv,
                                sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(conn->session, NGHTTP2_FLAG_NONE,
                                              0, CONN_WINDOW) != 0) {
        if (conn->session != NULL)
            nghttp2_session_del(conn->session);
        free(conn);
        snprintf(c->errmsg, sizeof(c->errmsg), "%s: http2 session setup",
                 c->host);
        return MS_ENOMEM;
    }
    conn->client = c;
    uv_tcp_init(c->loop, &conn->tcp);
    conn->tcp.data = conn;
    conn->creq.data = conn;
    c->nconns++;
    rc = uv_tcp_connect(&conn->creq, &conn->tcp,
                        (const struct sockaddr *)&c->addr, on_connect);
    if (rc != 0) {
        snprintf(c->errmsg, sizeof(c->errmsg), "%s: connect: %s", c->host,
                 uv_strerror(rc));
        conn->dead = 1;
        uv_close((uv_handle_t *)&conn->tcp, on_tcp_closed);
        return MS_EIO;
    }
    conn->connect_deadline = uv_now(c->loop) + c->cfg.connect_timeout_ms;
    c->conn = conn;
    return 0;
}

/* --- deadlines -------------------------------------------------------------
 */

static void on_timer(uv_timer_t *t)
{
    struct ms_grpc_client *c = t->data;
    uint64_t now = uv_now(c->loop);
    struct ms_grpc_client_stream *s, *next;

    c->timer_armed = 0;
    if (c->conn != NULL && !c->conn->connected &&
        now >= c->conn->connect_deadline) {
        snprintf(c->errmsg, sizeof(c->errmsg), "%s: connect timed out",
                 c->host);
        conn_fail(c->conn, MS_ETIMEOUT);
    }
    c->in_timer = 1; /* no flush from calls started by callbacks below */
    for (s = c->streams; s != NULL; s = next) {
        next = s->next;
        if (s->call == NULL || s->deadline == 0 || now < s->deadline)
            continue;
        snprintf(c->errmsg, sizeof(c->errmsg), "%s: call timed out", c->host);
        /* the stream stays until nghttp2 closes it; its answer is dropped */
        if (!s->conn->dead)
            nghttp2_submit_rst_stream(s->conn->session, NGHTTP2_FLAG_NONE,
                                      s->id, NGHTTP2_CANCEL);
        complete(s, MS_ETIMEOUT, NULL);
    }
    c->in_timer = 0;
    if (c->conn != NULL)
        flush(c->conn);
    arm_timer(c);
}

/* Keeps a periodic check running while anything can time out. */
static void arm_timer(struct ms_grpc_client *c)
{
    uint64_t every = c->cfg.request_timeout_ms ? c->cfg.request_timeout_ms
                                               : c->cfg.connect_timeout_ms;

    if (c->timer_armed || c->closing)
        return;
    if (c->npending == 0 && (c->conn == NULL || c->conn->connected))
        return;
    every = every / 4 ? every / 4 : 1;
    if (every > 250)
        every = 250;
    uv_timer_start(&c->timer, on_timer, every, 0);
    c->timer_armed = 1;
}

/* --- public ----------------------------------------------------------------
 */

int ms_grpc_client_init(struct ms_grpc_client *client, uv_loop_t *loop,
                        const char *addr,
                        const struct ms_grpc_client_config *cfg)
{
    struct sockaddr_storage sa;

    if (loop == NULL || addr == NULL || ms_http_parse_addr(addr, &sa) != 0)
        return MS_EINVAL;
    memset(client, 0, sizeof(*client));
    client->loop = loop;
    client->addr = sa;
    ms_http_format_addr(&sa, client->host, sizeof(client->host));
    if (cfg != NULL)
        client->cfg = *cfg;
    if (client->cfg.connect_timeout_ms == 0)
        client->cfg.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    if (client->cfg.max_response_bytes == 0)
        client->cfg.max_response_bytes = DEFAULT_MAX_RESPONSE;
    uv_timer_init(loop, &client->timer);
    client->timer.data = client;
    return 0;
}

#define NV(n, v)                                                               \
    {                                                                          \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v),              \
            NGHTTP2_NV_FLAG_NO_COPY_NAME                                       \
    }

int ms_grpc_client_call(struct ms_grpc_client *client,
                        struct ms_grpc_client_call *call, const char *path,
                        const void *msg, size_t len, ms_grpc_client_call_cb cb)
{
    struct ms_grpc_client_stream *s;
    nghttp2_data_provider dp;
    int32_t id;
    int rc;

    if (path == NULL || path[0] != '/' || len > 0xffffffffu)
        return MS_EINVAL;
    if (client->closing)
        return MS_ESHUTDOWN;
    if (client->conn == NULL && (rc = conn_open(client)) != 0)
        return rc;
    s = calloc(1, sizeof(*s));
    if (s == NULL || (s->out = malloc(len + 5)) == NULL) {
        free(s);
        return MS_ENOMEM;
    }
    s->out[0] = 0;
    s->out[1] = (uint8_t)(len >> 24);
    s->out[2] = (uint8_t)(len >> 16);
    s->out[3] = (uint8_t)(len >> 8);
    s->out[4] = (uint8_t)len;
    if (len > 0)
        memcpy(s->out + 5, msg, len);
    s->out_len = len + 5;
    s->client = client;
    s->conn = client->conn;
    s->call = call;
    s->http_status = s->grpc_status = -1;
    if (client->cfg.request_timeout_ms)
        s->deadline = uv_now(client->loop) + client->cfg.request_timeout_ms;
    {
        nghttp2_nv hdrs[] = {
            NV(":method", "POST"),
            NV(":scheme", "http"),
            NV(":path", path),
            NV(":authority", client->host),
            NV("content-type", "application/grpc"),
            NV("te", "trailers"),
        };
        dp.source.ptr = s;
        dp.read_callback = read_body;
        id = nghttp2_submit_request(s->conn->session, NULL, hdrs,
                                    sizeof(hdrs) / sizeof(hdrs[0]), &dp, s);
    }
    if (id < 0) {
        free_stream(s);
        snprintf(client->errmsg, sizeof(client->errmsg), "%s: http2: %s",
                 client->host, nghttp2_strerror(id));
        return id == NGHTTP2_ERR_NOMEM ? MS_ENOMEM : MS_EIO;
    }
    s->id = id;
    call->cb = cb;
    call->stream = s;
    s->next = client->streams;
    if (client->streams != NULL)
        client->streams->prev = s;
    client->streams = s;
    client->npending++;
    if (!s->conn->in_read && !client->in_timer)
        flush(s->conn);
    arm_timer(client);
    return 0;
}

size_t ms_grpc_client_pending(const struct ms_grpc_client *client)
{
    return client->npending;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct ms_grpc_client *c = h->data;

    c->timer_closed = 1;
    if (c->nconns == 0 && c->close_cb)
        c->close_cb(c);
}

void ms_grpc_client_close(struct ms_grpc_client *client,
                          ms_grpc_client_close_cb cb)
{
    if (client->closing)
        return;
    client->closing = 1;
    client->close_cb = cb;
    snprintf(client->errmsg, sizeof(client->errmsg), "%s: client closed",
             client->host);
    if (client->conn != NULL)
        conn_fail(client->conn, MS_ECANCELED);
    uv_close((uv_handle_t *)&client->timer, on_timer_closed);
}
