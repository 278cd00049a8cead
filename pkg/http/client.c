/* client.c - async HTTP/1.1 keep-alive client on libuv and http-parser. */
#include "http/client.h"
#include "http/wire.h"
#include "tls/tls.h"
#include "util/buf.h"

#include <arpa/inet.h>
#include <http_parser.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DEFAULT_MAX_RESPONSE (64u * 1024 * 1024)
#define RBUF_SIZE (16 * 1024)

#define container_of(p, type, member)                                          \
    ((type *)(void *)((char *)(p)-offsetof(type, member)))

struct ms_http_client_conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    http_parser parser;
    struct ms_http_client *client;
    struct ms_buf out;  /* request bytes waiting for the connection */
    struct ms_tls *tls; /* TLS session (cfg.tls set), else NULL */
    int connected;      /* TCP up and, with TLS, the handshake done */
    int closing;
    int corked; /* inside on_read: requests sent by callbacks wait */
    uint64_t connect_deadline;
    int err;                  /* MS_E code set by a failing parser callback */
    struct ms_http_hdrs hdrs; /* response being parsed */
    struct ms_buf body;
    struct ms_http_response resp;
    char rbuf[RBUF_SIZE];
};

struct wreq {
    uv_write_t req;
    char data[];
};

static void client_arm(struct ms_http_client *c);

/* --- lifetime --- */

static void client_maybe_done(struct ms_http_client *c)
{
    if (!c->closing || !c->timer_closed || c->nconns > 0)
        return;
    if (c->close_cb != NULL) {
        ms_http_client_close_cb cb = c->close_cb;
        c->close_cb = NULL;
        cb(c); /* may free c */
    }
}

static void on_conn_close(uv_handle_t *h)
{
    struct ms_http_client_conn *conn = h->data;
    struct ms_http_client *c = conn->client;

    ms_buf_free(&conn->out);
    ms_tls_free(conn->tls);
    ms_buf_free(&conn->body);
    ms_http_hdrs_free(&conn->hdrs);
    free(conn);
    c->nconns--;
    client_maybe_done(c);
}

/* Closes conn and detaches it from the client; its requests stay listed. */
static void conn_close(struct ms_http_client_conn *conn)
{
    if (conn->closing)
        return;
    conn->closing = 1;
    if (conn->client->conn == conn)
        conn->client->conn = NULL;
    uv_close((uv_handle_t *)&conn->tcp, on_conn_close);
}

/* Calls back every listed request with code (requests submitted from these
 * callbacks go to a new connection and are not affected). */
static void fail_all(struct ms_http_client *c, int code)
{
    struct ms_http_client_req *r = c->head, *next;

    c->head = c->tail = c->unsent = NULL;
    c->npending = 0;
    for (; r != NULL; r = next) {
        next = r->next;
        r->cb(r, code, NULL);
    }
}

/* The connection is unusable: close it and fail what was sent on it. */
static void conn_fail(struct ms_http_client_conn *conn, int code,
                      const char *what, const char *why)
{
    struct ms_http_client *c = conn->client;

    if (conn->closing)
        return;
    ms_seterr(c->errmsg, sizeof(c->errmsg), code, "%s %s: %s", what, c->host,
              why);
    conn_close(conn);
    fail_all(c, code);
    if (!c->closing)
        client_arm(c);
}

/* --- timer --- */

static void on_timer(uv_timer_t *t)
{
    struct ms_http_client *c = t->data;
    struct ms_http_client_conn *conn = c->conn;
    uint64_t now = uv_now(c->loop);

    c->timer_armed = 0;
    if (c->closing || conn == NULL)
        return;
    if (!conn->connected && now >= conn->connect_deadline)
        conn_fail(conn, MS_ETIMEOUT, "connect", "timed out");
    else if (conn->connected && c->head != NULL && c->head->deadline != 0 &&
             now >= c->head->deadline)
        conn_fail(conn, MS_ETIMEOUT, "request to", "timed out");
    else
        client_arm(c);
}

/* Arms the timer for the earliest deadline (lazy: re-armed only earlier). */
static void client_arm(struct ms_http_client *c)
{
    uint64_t due = 0, now = uv_now(c->loop);

    if (c->closing || c->conn == NULL)
        return;
    if (!c->conn->connected)
        due = c->conn->connect_deadline;
    else if (c->head != NULL)
        due = c->head->deadline;
    if (due == 0 || (c->timer_armed && c->timer_due <= due))
        return;
    uv_timer_start(&c->timer, on_timer, due > now ? due - now : 0, 0);
    c->timer_armed = 1;
    c->timer_due = due;
}

/* --- writing --- */

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = container_of(req, struct wreq, req);
    struct ms_http_client_conn *conn = req->handle->data;

    free(w);
    if (status < 0 && !conn->closing)
        conn_fail(conn, MS_EIO, "write to", uv_strerror(status));
}

/* Every listed request's bytes are now on an established connection. */
static void mark_sent(struct ms_http_client *c)
{
    for (struct ms_http_client_req *r = c->unsent; r != NULL; r = r->next)
        r->sent = 1;
    c->unsent = NULL;
}

/* Writes data[0..len) to the socket: what the kernel takes now, the rest
 * (copied) through uv_write. Returns 0, or -1 after failing conn. */
static int raw_send(struct ms_http_client_conn *conn, const void *data,
                    size_t len)
{
    uv_buf_t b;
    struct wreq *w;
    size_t done;
    int rc;

    if (len == 0)
        return 0;
    b = uv_buf_init((char *)data, (unsigned)len);
    rc = uv_try_write((uv_stream_t *)&conn->tcp, &b, 1);
    if (rc < 0 && rc != UV_EAGAIN && rc != UV_ENOSYS) {
        conn_fail(conn, MS_EIO, "write to", uv_strerror(rc));
        return -1;
    }
    done = rc > 0 ? (size_t)rc : 0;
    if (done < len) {
        w = malloc(sizeof(*w) + len - done);
        if (w == NULL) {
            conn_fail(conn, MS_ENOMEM, "write to", "out of memory");
            return -1;
        }
        memcpy(w->data, (const char *)data + done, len - done);
        b = uv_buf_init(w->data, (unsigned)(len - done));
        rc = uv_write(&w->req, (uv_stream_t *)&conn->tcp, &b, 1, on_write);
        if (rc != 0) {
            free(w);
            conn_fail(conn, MS_EIO, "write to", uv_strerror(rc));
            return -1;
        }
    }
    return 0;
}

/* Sends the ciphertext the TLS session has ready. Returns 0 or -1 (conn
 * failed). */
static int tls_send(struct ms_http_client_conn *conn)
{
    size_t n = ms_tls_pending(conn->tls);
    char *p;
    int rc;

    if (n == 0)
        return 0;
    p = malloc(n);
    if (p == NULL) {
        conn_fail(conn, MS_ENOMEM, "write to", "out of memory");
        return -1;
    }
    n = ms_tls_drain(conn->tls, p, n);
    rc = raw_send(conn, p, n);
    free(p);
    return rc;
}

static void conn_flush(struct ms_http_client_conn *conn)
{
    if (!conn->connected || conn->closing || conn->corked || conn->out.len == 0)
        return;
    if (conn->tls != NULL) {
        if (ms_tls_write(conn->tls, conn->out.data, conn->out.len) != 0) {
            conn_fail(conn, MS_EIO, "TLS write to", ms_tls_errmsg(conn->tls));
            return;
        }
        if (tls_send(conn) != 0)
            return;
    } else if (raw_send(conn, conn->out.data, conn->out.len) != 0) {
        return;
    }
    ms_buf_reset(&conn->out);
    mark_sent(conn->client);
}

/* --- reading --- */

static int on_message_begin(http_parser *p)
{
    struct ms_http_client_conn *conn = p->data;

    ms_http_hdrs_reset(&conn->hdrs);
    ms_buf_reset(&conn->body);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct ms_http_client_conn *conn = p->data;

    if (ms_http_hdrs_field(&conn->hdrs, at, len) != 0) {
        conn->err = MS_ENOMEM;
        return -1;
    }
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct ms_http_client_conn *conn = p->data;

    if (ms_http_hdrs_value(&conn->hdrs, at, len) != 0) {
        conn->err = MS_ENOMEM;
        return -1;
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct ms_http_client_conn *conn = p->data;
    struct ms_http_client *c = conn->client;
    unsigned st = p->status_code;

    if (ms_http_hdrs_finish(&conn->hdrs) != 0) {
        conn->err = MS_ENOMEM;
        return -1;
    }
    if (c->head == NULL) {
        conn->err = MS_EMALFORMED; /* a response nobody asked for */
        return -1;
    }
    if (p->content_length != ULLONG_MAX &&
        p->content_length > c->cfg.max_response_bytes) {
        conn->err = MS_ETOOLARGE;
        return -1;
    }
    if ((st >= 100 && st < 200) || st == 204 || st == 304 || c->head->head_only)
        return 1; /* no body */
    if (p->content_length != ULLONG_MAX && p->content_length > 0 &&
        ms_buf_reserve(&conn->body, (size_t)p->content_length + 1) != 0) {
        conn->err = MS_ENOMEM;
        return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct ms_http_client_conn *conn = p->data;

    if (conn->body.len + len > conn->client->cfg.max_response_bytes) {
        conn->err = MS_ETOOLARGE;
        return -1;
    }
    if (ms_buf_append(&conn->body, at, len) != 0) {
        conn->err = MS_ENOMEM;
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct ms_http_client_conn *conn = p->data;
    struct ms_http_client *c = conn->client;
    struct ms_http_client_req *r = c->head, *rest = NULL;
    int keep = http_should_keep_alive(p);

    if (p->status_code >= 100 && p->status_code < 200)
        return 0; /* interim answer: the real one follows */
    if (ms_buf_putc(&conn->body, 0) != 0) {
        conn->err = MS_ENOMEM;
        return -1;
    }
    conn->body.len--;
    c->head = r->next;
    if (c->head == NULL)
        c->tail = NULL;
    if (c->unsent == r) /* a misbehaving server answered early */
        c->unsent = r->next;
    c->npending--;
    if (!keep) {
        /* the server ends the connection: later requests sent on it fail,
         * requests submitted from the callback go to a new one */
        rest = c->head;
        c->head = c->tail = c->unsent = NULL;
        c->npending = 0;
        conn_close(conn);
    }
    conn->resp.status = (int)p->status_code;
    conn->resp.body = conn->body.data;
    conn->resp.body_len = conn->body.len;
    conn->resp.priv = &conn->hdrs;
    r->cb(r, 0, &conn->resp);
    if (rest != NULL) {
        struct ms_http_client_req *next;
        ms_seterr(c->errmsg, sizeof(c->errmsg), MS_EIO,
                  "request to %s: server closed the connection", c->host);
        for (; rest != NULL; rest = next) {
            next = rest->next;
            rest->cb(rest, MS_EIO, NULL);
        }
    }
    if (conn->closing)
        return -1;
    client_arm(c);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    struct ms_http_client_conn *conn = h->data;

    (void)size;
    *buf = uv_buf_init(conn->rbuf, sizeof(conn->rbuf));
}

static void conn_parse_error(struct ms_http_client_conn *conn)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&conn->parser);

    if (conn->err == MS_ETOOLARGE)
        conn_fail(conn, MS_ETOOLARGE, "response from", "body too large");
    else if (conn->err == MS_ENOMEM)
        conn_fail(conn, MS_ENOMEM, "response from", "out of memory");
    else
        conn_fail(conn, MS_EMALFORMED, "response from",
                  conn->err == MS_EMALFORMED ? "unexpected response"
                                             : http_errno_description(e));
}

/* The server closed the connection (TCP EOF, or TLS close_notify). */
static void conn_eof(struct ms_http_client_conn *conn)
{
    struct ms_http_client *c = conn->client;

    conn->err = 0;
    if (!conn->connected) { /* TLS: during the handshake */
        conn_fail(conn, MS_EIO, "TLS handshake with",
                  "server closed the connection (did it refuse our "
                  "certificate?)");
        return;
    }
    {
        /* ends a body delimited by the close, if one is in progress */
        http_parser_execute(&conn->parser, &settings, NULL, 0);
        if (conn->closing)
            return;
        if (HTTP_PARSER_ERRNO(&conn->parser) != HPE_OK)
            conn_fail(conn, MS_EIO, "read from",
                      "server closed the connection mid-response");
        else if (c->head != NULL)
            conn_fail(conn, MS_EIO, "read from",
                      "server closed the connection");
        else
            conn_close(conn); /* idle keep-alive connection closed */
    }
}

/* Parses len bytes of response (plaintext); 0, or -1 once conn failed. */
static int conn_parse(struct ms_http_client_conn *conn, const char *data,
                      size_t len)
{
    conn->err = 0;
    http_parser_execute(&conn->parser, &settings, data, len);
    if (conn->closing)
        return -1;
    if (HTTP_PARSER_ERRNO(&conn->parser) != HPE_OK || conn->parser.upgrade) {
        conn_parse_error(conn);
        return -1;
    }
    return 0;
}

/* Ciphertext from the server: handshake, then decrypt and parse (into
 * rbuf, free again once the session copied the ciphertext). Returns 0,
 * or -1 once conn failed or closed. */
static int tls_input(struct ms_http_client_conn *conn, const char *data,
                     size_t len)
{
    bool done;
    size_t n;
    int rc;

    if (ms_tls_feed(conn->tls, data, len) != 0) {
        conn_fail(conn, MS_ENOMEM, "read from", "out of memory");
        return -1;
    }
    if (!conn->connected) {
        rc = ms_tls_handshake(conn->tls, &done);
        if (tls_send(conn) != 0)
            return -1;
        if (rc != 0) {
            conn_fail(conn, MS_EIO, "TLS handshake with",
                      ms_tls_errmsg(conn->tls));
            return -1;
        }
        if (!done)
            return 0;
        conn->connected = 1;
    }
    for (;;) {
        rc = ms_tls_read(conn->tls, conn->rbuf, sizeof(conn->rbuf), &n);
        if (rc == 0 && tls_send(conn) != 0)
            return -1;
        if (rc == MS_ESHUTDOWN) {
            conn_eof(conn);
            return -1;
        }
        if (rc != 0) {
            conn_fail(conn, MS_EIO, "TLS read from", ms_tls_errmsg(conn->tls));
            return -1;
        }
        if (n == 0)
            return 0;
        if (conn_parse(conn, conn->rbuf, n) != 0)
            return -1;
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct ms_http_client_conn *conn = stream->data;
    int rc;

    if (nread == 0 || conn->closing)
        return;
    if (nread == UV_EOF) {
        conn_eof(conn);
        return;
    }
    if (nread < 0) {
        conn_fail(conn, MS_EIO, "read from", uv_strerror((int)nread));
        return;
    }
    /* requests the response callbacks send (a closed loop's next ones)
     * leave together in one write after the whole read is parsed */
    conn->corked = 1;
    if (conn->tls != NULL)
        rc = tls_input(conn, buf->base, (size_t)nread);
    else
        rc = conn_parse(conn, buf->base, (size_t)nread);
    conn->corked = 0;
    if (rc == 0 && !conn->closing) {
        conn_flush(conn);
        client_arm(conn->client);
    }
}

/* --- connecting --- */

static void on_connect(uv_connect_t *req, int status)
{
    struct ms_http_client_conn *conn = req->handle->data;
    int rc;

    if (conn->closing)
        return;
    if (status < 0) {
        conn_fail(conn, MS_EIO, "connect", uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&conn->tcp, 1);
    rc = uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read);
    if (rc != 0) {
        conn_fail(conn, MS_EIO, "read from", uv_strerror(rc));
        return;
    }
    if (conn->tls != NULL) { /* connected once the handshake is done */
        bool done;
        if (ms_tls_handshake(conn->tls, &done) != 0) {
            tls_send(conn);
            conn_fail(conn, MS_EIO, "TLS handshake with",
                      ms_tls_errmsg(conn->tls));
            return;
        }
        tls_send(conn);
        return;
    }
    conn->connected = 1;
    conn_flush(conn);
    client_arm(conn->client);
}

static int conn_open(struct ms_http_client *c)
{
    struct ms_http_client_conn *conn = calloc(1, sizeof(*conn));
    int rc;

    if (conn == NULL)
        return MS_ENOMEM;
    conn->client = c;
    uv_tcp_init(c->loop, &conn->tcp);
    conn->tcp.data = conn;
    c->nconns++;
    http_parser_init(&conn->parser, HTTP_RESPONSE);
    conn->parser.data = conn;
    if (c->cfg.tls != NULL) {
        char ip[INET6_ADDRSTRLEN] = "", err[MS_ERRMSG_SIZE];
        const struct sockaddr_storage *sa = &c->addr;
        if (sa->ss_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip,
                      sizeof(ip));
        else
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
                      ip, sizeof(ip));
        /* the server's certificate must name the IP we dial */
        rc = ms_tls_new(c->cfg.tls, ip, &conn->tls, err, sizeof(err));
        if (rc != 0) {
            conn->closing = 1;
            uv_close((uv_handle_t *)&conn->tcp, on_conn_close);
            return ms_seterr(c->errmsg, sizeof(c->errmsg), rc, "TLS %s: %s",
                             c->host, err);
        }
    }
    rc = uv_tcp_connect(&conn->creq, &conn->tcp,
                        (const struct sockaddr *)&c->addr, on_connect);
    if (rc != 0) {
        conn->closing = 1;
        uv_close((uv_handle_t *)&conn->tcp, on_conn_close);
        return ms_seterr(c->errmsg, sizeof(c->errmsg), MS_EIO, "connect %s: %s",
                         c->host, uv_strerror(rc));
    }
    conn->connect_deadline = uv_now(c->loop) + c->cfg.connect_timeout_ms;
    c->conn = conn;
    return 0;
}

/* --- public --- */

int ms_http_client_init(struct ms_http_client *client, uv_loop_t *loop,
                        const char *addr,
                        const struct ms_http_client_config *cfg)
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

/* An established connection whose server has closed or reset it: its end
 * or error is already in the socket, not yet read. */
static int peer_gone(struct ms_http_client_conn *conn)
{
    uv_os_fd_t fd;
    char b;
    ssize_t n;

    if (!conn->connected || conn->closing ||
        uv_fileno((uv_handle_t *)&conn->tcp, &fd) != 0)
        return 0;
    n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 ||
           (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static int bad_token(const char *s)
{
    return s[0] == '\0' || strpbrk(s, " \r\n\t") != NULL;
}

static int build_request(struct ms_http_client *c, struct ms_buf *b,
                         const char *method, const char *target,
                         const struct ms_http_header *headers, size_t nheaders,
                         const void *body, size_t len)
{
    int rc = 0, has_host = 0;
    size_t i;

    rc |= ms_buf_puts(b, method);
    rc |= ms_buf_putc(b, ' ');
    rc |= ms_buf_puts(b, target);
    rc |= ms_buf_puts(b, " HTTP/1.1\r\n");
    for (i = 0; i < nheaders; i++) {
        if (strcasecmp(headers[i].name, "Host") == 0)
            has_host = 1;
        rc |= ms_buf_puts(b, headers[i].name);
        rc |= ms_buf_append(b, ": ", 2);
        rc |= ms_buf_puts(b, headers[i].value);
        rc |= ms_buf_append(b, "\r\n", 2);
    }
    if (!has_host) {
        rc |= ms_buf_puts(b, "Host: ");
        rc |= ms_buf_puts(b, c->host);
        rc |= ms_buf_append(b, "\r\n", 2);
    }
    if (len > 0 || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
        strcmp(method, "PATCH") == 0) {
        rc |= ms_buf_puts(b, "Content-Length: ");
        rc |= ms_http_put_u64(b, len);
        rc |= ms_buf_append(b, "\r\n", 2);
    }
    rc |= ms_buf_append(b, "\r\n", 2);
    rc |= ms_buf_append(b, body, len);
    return rc ? MS_ENOMEM : 0;
}

int ms_http_client_request(struct ms_http_client *client,
                           struct ms_http_client_req *req, const char *method,
                           const char *target,
                           const struct ms_http_header *headers,
                           size_t nheaders, const void *body, size_t len,
                           ms_http_client_cb cb)
{
    struct ms_http_client_conn *conn;
    size_t i, mark;
    int rc;

    if (cb == NULL || bad_token(method) || bad_token(target))
        return MS_EINVAL;
    for (i = 0; i < nheaders; i++)
        if (headers[i].name[0] == '\0' ||
            strpbrk(headers[i].name, ": \r\n\t") != NULL ||
            ms_http_bad_header_text(headers[i].value))
            return MS_EINVAL;
    if (client->closing)
        return MS_ESHUTDOWN;
    if (client->conn != NULL && client->head == NULL &&
        client->cfg.probe_idle && peer_gone(client->conn))
        conn_close(client->conn); /* nothing in flight: nothing to fail */
    if (client->conn == NULL && (rc = conn_open(client)) != 0)
        return rc;
    conn = client->conn;
    mark = conn->out.len;
    rc = build_request(client, &conn->out, method, target, headers, nheaders,
                       body, len);
    if (rc != 0) {
        conn->out.len = mark;
        return rc;
    }
    req->cb = cb;
    req->next = NULL;
    req->sent = 0;
    if (client->unsent == NULL)
        client->unsent = req;
    req->head_only = strcmp(method, "HEAD") == 0;
    req->deadline = client->cfg.request_timeout_ms
                        ? uv_now(client->loop) + client->cfg.request_timeout_ms
                        : 0;
    if (client->tail != NULL)
        client->tail->next = req;
    else
        client->head = req;
    client->tail = req;
    client->npending++;
    conn_flush(conn); /* may fail the connection: then cb has run */
    client_arm(client);
    return 0;
}

size_t ms_http_client_pending(const struct ms_http_client *client)
{
    return client->npending;
}

static void on_timer_close(uv_handle_t *h)
{
    struct ms_http_client *c = h->data;

    c->timer_closed = 1;
    client_maybe_done(c);
}

void ms_http_client_close(struct ms_http_client *client,
                          ms_http_client_close_cb cb)
{
    client->close_cb = cb;
    if (client->closing)
        return;
    client->closing = 1;
    if (client->conn != NULL)
        conn_close(client->conn);
    ms_seterr(client->errmsg, sizeof(client->errmsg), MS_ECANCELED,
              "client for %s closed", client->host);
    fail_all(client, MS_ECANCELED);
    uv_close((uv_handle_t *)&client->timer, on_timer_close);
}

const char *ms_http_resp_header(const struct ms_http_response *resp,
                                const char *name)
{
    return ms_http_hdrs_get(resp->priv, name);
}

size_t ms_http_resp_header_count(const struct ms_http_response *resp)
{
    return ((const struct ms_http_hdrs *)resp->priv)->n;
}

void ms_http_resp_header_at(const struct ms_http_response *resp, size_t i,
                            const char **name, const char **value)
{
    ms_http_hdrs_at(resp->priv, i, name, value);
}
