/* server.c - HTTP/1.1 server on libuv and http-parser. */
#include "http/server.h"
#include "http/wire.h"
#include "tls/tls.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define RBUF_SIZE (64 * 1024)
#define MAX_SEGS 32            /* buffers per write */
#define MAX_FREE_REQS 512      /* recycled request structs kept per server */
#define REJECT_MAX 64          /* connections being answered 503 at once */
#define KEEP_BYTES (16 * 1024) /* larger request buffers are not recycled */
#define WQ_LIMIT (1024 * 1024) /* stop parsing while this much is unsent */
#define ERR_NOMEM 100          /* internal error kind: just close */

#define container_of(p, type, member)                                          \
    ((type *)(void *)((char *)(p)-offsetof(type, member)))

enum { S_INIT, S_LISTENING, S_STOPPING, S_CLOSING, S_CLOSED };

/* A request's life: parsed, handed to the handler, maybe streaming, done
 * (answer complete, waiting to be written in order). */
enum { R_PARSING, R_PENDING, R_STREAMING, R_DONE };

enum { BODY_LEN, BODY_CHUNKED, BODY_EOF };

struct request {
    struct ms_http_request pub;
    struct ms_http_conn *conn;
    struct request *next, *prev; /* connection queue, or the free list */
    int state;
    unsigned closed : 1;       /* connection gone: answer is discarded */
    unsigned cancel_done : 1;  /* on_cancel considered */
    unsigned keep_alive : 1;   /* the client allows another request */
    unsigned head_only : 1;    /* HEAD: no body bytes in the answer */
    unsigned chunked : 1;      /* streamed with chunked encoding */
    unsigned headers_done : 1; /* request headers fully received */
    ms_http_cancel_cb on_cancel;
    struct ms_buf target; /* NUL-terminated */
    struct ms_http_hdrs hdrs;
    struct ms_buf body;
    struct ms_buf rh;  /* extra answer header lines */
    struct ms_buf out; /* answer bytes not yet handed to libuv */
    void *ext;         /* owned body (respond_owned) after out */
    size_t ext_len;
};

struct ms_http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shut;
    http_parser parser;
    struct ms_http_server *srv;
    struct ms_http_conn *next, *prev;   /* server list */
    struct ms_http_conn *dnext, *dprev; /* answers to write (s->dirty) */
    struct request *head, *tail;        /* in arrival order */
    unsigned nqueue;
    struct request *cur; /* being parsed */
    struct ms_buf in;    /* received, not yet parsed (paused at the bound) */
    size_t in_off;
    size_t unsent; /* answer bytes queued in requests, not yet written */
    uint64_t msg_start, last_read, deadline, timer_due;
    int nhandles;
    int err_kind;              /* set by a parser callback that fails */
    unsigned reading : 1;      /* uv_read_start active */
    unsigned read_done : 1;    /* no further requests will be parsed */
    unsigned closing : 1;      /* uv_close called */
    unsigned shut_started : 1; /* last answer written, shutdown issued */
    unsigned lingering : 1;    /* waiting for the client to close */
    unsigned in_process : 1;
    unsigned reprocess : 1;
    unsigned timer_armed : 1;
    unsigned resume : 1;     /* parse buffered input at the next timer tick */
    unsigned counted : 1;    /* counted in nconns */
    unsigned rejecting : 1;  /* counted in nrejecting */
    unsigned dirty : 1;      /* on the server's list of answers to write */
    unsigned sniffing : 1;   /* first bytes may still be the HTTP/2 preface */
    unsigned hs_done : 1;    /* TLS: handshake complete */
    unsigned hs_counted : 1; /* TLS: counted in the server's nhandshakes */
    struct ms_tls *tls;      /* client TLS session; NULL: plain TCP */
    uint64_t accepted;       /* loop time of accept (handshake deadline) */
    char remote[64];
};

struct seg {
    char *p;
    size_t len;
    int owned; /* free() p once written */
};

struct wreq {
    uv_write_t req;
    void *owned[MAX_SEGS];
    int nowned;
    char data[];
};

static const char default_ctype[] = "text/plain; charset=utf-8";

static void conn_close(struct ms_http_conn *c);
static void conn_process(struct ms_http_conn *c, int parse_ok);
static void conn_defer(struct ms_http_conn *c);
static int has_room(const struct ms_http_conn *c);
static void conn_error(struct ms_http_conn *c, int kind, const char *msg);

/* --- requests --- */

static struct request *req_get(struct ms_http_server *s)
{
    struct request *r = s->free_reqs;

    if (r != NULL) {
        s->free_reqs = r->next;
        s->nfree--;
    } else {
        r = calloc(1, sizeof(*r));
        if (r == NULL)
            return NULL;
    }
    memset(&r->pub, 0, sizeof(r->pub));
    r->conn = NULL;
    r->next = r->prev = NULL;
    r->state = R_PARSING;
    r->closed = r->cancel_done = r->keep_alive = 0;
    r->head_only = r->chunked = r->headers_done = 0;
    r->on_cancel = NULL;
    return r;
}

static void buf_recycle(struct ms_buf *b)
{
    if (b->cap > KEEP_BYTES)
        ms_buf_free(b);
    ms_buf_reset(b);
}

static void req_free(struct request *r)
{
    ms_buf_free(&r->target);
    ms_http_hdrs_free(&r->hdrs);
    ms_buf_free(&r->body);
    ms_buf_free(&r->rh);
    ms_buf_free(&r->out);
    free(r->ext);
    free(r);
}

/* Returns r (not linked anywhere) to the server's pool. */
static void req_put(struct ms_http_server *s, struct request *r)
{
    free(r->ext);
    r->ext = NULL;
    r->ext_len = 0;
    if (s->nfree >= MAX_FREE_REQS || s->state == S_CLOSED) {
        req_free(r);
        return;
    }
    buf_recycle(&r->target);
    ms_http_hdrs_reset(&r->hdrs);
    buf_recycle(&r->body);
    buf_recycle(&r->rh);
    buf_recycle(&r->out);
    r->next = s->free_reqs;
    s->free_reqs = r;
    s->nfree++;
}

static void conn_maybe_free(struct ms_http_conn *c);

/* Unlinks r from its connection's queue and recycles it. */
static void req_release(struct request *r)
{
    struct ms_http_conn *c = r->conn;

    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        c->head = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    else
        c->tail = r->prev;
    c->nqueue--;
    req_put(c->srv, r);
    if (c->closing)
        conn_maybe_free(c);
}

static void req_link(struct ms_http_conn *c, struct request *r)
{
    r->conn = c;
    r->next = NULL;
    r->prev = c->tail;
    if (c->tail != NULL)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->nqueue++;
}

/* --- server bookkeeping --- */

static void server_maybe_done(struct ms_http_server *s)
{
    ms_http_server_close_cb cb;
    struct request *r;

    if (s->state < S_STOPPING || s->state == S_CLOSED || !s->listener_closed ||
        s->flush_handles > 0 || s->conns != NULL)
        return;
    s->state = S_CLOSED;
    while ((r = s->free_reqs) != NULL) {
        s->free_reqs = r->next;
        req_free(r);
    }
    s->nfree = 0;
    free(s->rbuf);
    s->rbuf = NULL;
    cb = s->close_cb;
    if (cb != NULL)
        cb(s); /* may free s */
}

static void conn_maybe_free(struct ms_http_conn *c)
{
    struct ms_http_server *s = c->srv;

    if (c->nhandles > 0 || c->head != NULL)
        return;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    ms_buf_free(&c->in);
    ms_tls_free(c->tls);
    free(c);
    server_maybe_done(s);
}

/* --- writing --- */

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = container_of(req, struct wreq, req);
    struct ms_http_conn *c = req->handle->data;
    int i;

    for (i = 0; i < w->nowned; i++)
        free(w->owned[i]);
    free(w);
    if (c->closing)
        return;
    if (status < 0)
        conn_close(c);
    else if (!c->reading && has_room(c))
        conn_process(c, 1); /* the client caught up: parse and read again */
}

/* Writes segs in order: as much as the kernel takes now, the rest through
 * uv_write (non-owned bytes copied, owned buffers handed over). Owned
 * buffers pass to this function in every case. Returns 0 or an MS_E code
 * (the caller closes the connection). */
static int raw_write(struct ms_http_conn *c, struct seg *segs, int n)
{
    uv_buf_t iov[MAX_SEGS];
    size_t total = 0, done, copy = 0, skip, off;
    struct wreq *w = NULL;
    char *d;
    int i, k = 0, rc;

    if (n <= 0)
        return 0;
    for (i = 0; i < n; i++) {
        iov[i] = uv_buf_init(segs[i].p, (unsigned)segs[i].len);
        total += segs[i].len;
    }
    rc = uv_try_write((uv_stream_t *)&c->tcp, iov, (unsigned)n);
    if (rc < 0 && rc != UV_EAGAIN && rc != UV_ENOSYS)
        goto err;
    done = rc > 0 ? (size_t)rc : 0;
    if (done < total) {
        for (i = 0, skip = done; i < n; i++) {
            off = skip < segs[i].len ? skip : segs[i].len;
            skip -= off;
            if (!segs[i].owned)
                copy += segs[i].len - off;
        }
        w = malloc(sizeof(*w) + copy);
        if (w == NULL)
            goto err;
        w->nowned = 0;
        d = w->data;
        for (i = 0, skip = done; i < n; i++) {
            off = skip < segs[i].len ? skip : segs[i].len;
            skip -= off;
            if (off == segs[i].len)
                continue;
            if (segs[i].owned) {
                iov[k++] =
                    uv_buf_init(segs[i].p + off, (unsigned)(segs[i].len - off));
                w->owned[w->nowned++] = segs[i].p;
                segs[i].owned = 0;
            } else {
                memcpy(d, segs[i].p + off, segs[i].len - off);
                iov[k++] = uv_buf_init(d, (unsigned)(segs[i].len - off));
                d += segs[i].len - off;
            }
        }
        if (uv_write(&w->req, (uv_stream_t *)&c->tcp, iov, (unsigned)k,
                     on_write) != 0) {
            for (i = 0; i < w->nowned; i++)
                free(w->owned[i]);
            free(w);
            w = NULL;
            goto err;
        }
    }
    for (i = 0; i < n; i++)
        if (segs[i].owned)
            free(segs[i].p);
    return 0;
err:
    for (i = 0; i < n; i++)
        if (segs[i].owned)
            free(segs[i].p);
    return MS_EIO;
}

/* Sends the ciphertext c's TLS session has ready (handshake flights,
 * alerts, records). Returns 0 or an MS_E code (the caller closes c). */
static int tls_send(struct ms_http_conn *c)
{
    struct seg sg;
    size_t n = ms_tls_pending(c->tls);

    if (n == 0)
        return 0;
    sg.p = malloc(n);
    if (sg.p == NULL)
        return MS_ENOMEM;
    sg.len = ms_tls_drain(c->tls, sg.p, n);
    sg.owned = 1;
    return raw_write(c, &sg, 1);
}

/* Writes segs (ownership as raw_write) as one gathered write; over TLS
 * the segments are joined first so they leave as one run of records,
 * not one record each. */
static int conn_write(struct ms_http_conn *c, struct seg *segs, int n)
{
    size_t total = 0, off = 0;
    char *joined = NULL;
    const char *p;
    int i, rc;

    if (n <= 0)
        return 0;
    c->srv->writes++;
    if (c->tls == NULL)
        return raw_write(c, segs, n);
    for (i = 0; i < n; i++)
        total += segs[i].len;
    p = segs[0].p;
    if (n > 1) {
        joined = malloc(total);
        if (joined != NULL)
            for (i = 0; i < n; i++) {
                memcpy(joined + off, segs[i].p, segs[i].len);
                off += segs[i].len;
            }
        p = joined;
    }
    rc = p == NULL ? MS_ENOMEM : ms_tls_write(c->tls, p, total);
    free(joined);
    for (i = 0; i < n; i++)
        if (segs[i].owned)
            free(segs[i].p);
    if (rc != 0) {
        ms_warn("client TLS to %s: %s", c->remote, ms_tls_errmsg(c->tls));
        return rc;
    }
    return tls_send(c);
}

static void on_shutdown(uv_shutdown_t *req, int status);

/* After the last answer: shut down our side, then linger until the client
 * closes (closing with unread input would reset the connection and could
 * destroy the answer before the client reads it). */
static void conn_finish(struct ms_http_conn *c)
{
    c->read_done = 1;
    c->shut_started = 1;
    if (c->tls != NULL && c->hs_done) {
        ms_tls_close_notify(c->tls); /* then shut down: no wait for the
                                        client's close_notify */
        if (tls_send(c) != 0) {
            conn_close(c);
            return;
        }
    }
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        conn_close(c);
}

/* Hands every ready answer byte to libuv in request order and recycles
 * the requests whose answers are complete. */
static void conn_flush(struct ms_http_conn *c)
{
    struct seg segs[MAX_SEGS];
    struct request *rs[MAX_SEGS], *r;
    int n, nr, i;

    while (!c->closing && !c->shut_started) {
        n = nr = 0;
        for (r = c->head; r != NULL && n + 2 <= MAX_SEGS; r = r->next) {
            c->unsent -= r->out.len + r->ext_len;
            if (r->out.len > 0)
                segs[n++] = (struct seg){(char *)r->out.data, r->out.len, 0};
            if (r->ext_len > 0) {
                segs[n++] = (struct seg){r->ext, r->ext_len, 1};
                r->ext = NULL;
                r->ext_len = 0;
            }
            rs[nr++] = r;
            if (r->state != R_DONE)
                break;
        }
        if (n > 0) {
            int rc = conn_write(c, segs, n);
            for (i = 0; i < nr; i++)
                rs[i]->out.len = 0;
            if (rc != 0) {
                conn_close(c);
                return;
            }
        }
        while ((r = c->head) != NULL && r->state == R_DONE && r->out.len == 0 &&
               r->ext_len == 0)
            req_release(r);
        if (c->head == NULL && c->read_done) {
            conn_finish(c);
            return;
        }
        r = c->head;
        if (r == NULL || (r->out.len == 0 && r->ext_len == 0))
            return;
    }
}

/* --- answers --- */

static int put_status_line(struct ms_buf *b, int status)
{
    const char *reason = http_status_str((enum http_status)status);
    int rc = 0;

    if (reason[0] == '<')
        reason = "Unknown";
    rc |= ms_buf_append(b, "HTTP/1.1 ", 9);
    rc |= ms_http_put_u64(b, (uint64_t)status);
    rc |= ms_buf_putc(b, ' ');
    rc |= ms_buf_puts(b, reason);
    rc |= ms_buf_append(b, "\r\n", 2);
    return rc ? MS_ENOMEM : 0;
}

/* Appends r's answer head to r->out. mode: BODY_LEN (len bytes follow),
 * BODY_CHUNKED or BODY_EOF (ended by closing). */
static int build_head(struct request *r, int status, const char *ctype,
                      size_t len, int mode)
{
    struct ms_http_conn *c = r->conn;
    struct ms_buf *b = &r->out;
    int close, rc = 0;

    if (status < 100 || status > 999)
        status = 500;
    close = !r->keep_alive || c->read_done || c->srv->state >= S_STOPPING ||
            mode == BODY_EOF;
    rc |= put_status_line(b, status);
    if (ctype != NULL) {
        rc |= ms_buf_append(b, "Content-Type: ", 14);
        rc |= ms_buf_puts(b, ctype);
        rc |= ms_buf_append(b, "\r\n", 2);
    }
    if (mode == BODY_LEN && status >= 200 && status != 204 && status != 304) {
        rc |= ms_buf_append(b, "Content-Length: ", 16);
        rc |= ms_http_put_u64(b, len);
        rc |= ms_buf_append(b, "\r\n", 2);
    } else if (mode == BODY_CHUNKED) {
        rc |= ms_buf_puts(b, "Transfer-Encoding: chunked\r\n");
    }
    rc |= ms_buf_append(b, r->rh.data, r->rh.len);
    if (close) {
        rc |= ms_buf_puts(b, "Connection: close\r\n");
        c->read_done = 1;
    } else if (r->pub.http_minor == 0) {
        rc |= ms_buf_puts(b, "Connection: keep-alive\r\n");
    }
    rc |= ms_buf_append(b, "\r\n", 2);
    return rc ? MS_ENOMEM : 0;
}

static int respond(struct ms_http_request *req, int status, const char *ctype,
                   const void *body, size_t len, int owned)
{
    struct request *r = container_of(req, struct request, pub);
    struct ms_http_conn *c = r->conn;
    int rc;

    if (r->state != R_PENDING)
        return MS_EINVAL;
    if (r->closed) {
        if (owned)
            free((void *)body);
        req_release(r);
        return MS_ECANCELED;
    }
    if (status < 100 || status > 999)
        status = 500;
    if (status < 200 || status == 204 || status == 304)
        len = 0; /* these answers have no body */
    rc = build_head(r, status, ctype, len, BODY_LEN);
    if (rc == 0 && !r->head_only && len > 0) {
        if (owned) {
            r->ext = (void *)body;
            r->ext_len = len;
            body = NULL;
        } else {
            rc = ms_buf_append(&r->out, body, len);
        }
    }
    if (owned)
        free((void *)body);
    r->state = R_DONE;
    if (rc != 0) {
        conn_close(c); /* releases r */
        return rc;
    }
    c->unsent += r->out.len + r->ext_len;
    conn_defer(c);
    return 0;
}

int ms_http_respond(struct ms_http_request *req, int status,
                    const char *content_type, const void *body, size_t len)
{
    return respond(req, status, content_type, body, len, 0);
}

int ms_http_respond_owned(struct ms_http_request *req, int status,
                          const char *content_type, void *body, size_t len)
{
    return respond(req, status, content_type, body, len, 1);
}

int ms_http_response_header(struct ms_http_request *req, const char *name,
                            const char *value)
{
    struct request *r = container_of(req, struct request, pub);
    int rc = 0;

    if (r->state != R_PENDING || name[0] == '\0' ||
        ms_http_bad_header_text(name) || ms_http_bad_header_text(value) ||
        strchr(name, ':') != NULL)
        return MS_EINVAL;
    rc |= ms_buf_puts(&r->rh, name);
    rc |= ms_buf_append(&r->rh, ": ", 2);
    rc |= ms_buf_puts(&r->rh, value);
    rc |= ms_buf_append(&r->rh, "\r\n", 2);
    return rc ? MS_ENOMEM : 0;
}

int ms_http_stream_begin(struct ms_http_request *req, int status,
                         const char *content_type)
{
    struct request *r = container_of(req, struct request, pub);
    struct ms_http_conn *c = r->conn;
    int mode;

    if (r->state != R_PENDING)
        return MS_EINVAL;
    r->state = R_STREAMING;
    if (r->closed)
        return MS_ECANCELED;
    r->chunked = r->pub.http_major > 1 || r->pub.http_minor >= 1;
    mode = r->chunked ? BODY_CHUNKED : BODY_EOF;
    if (build_head(r, status, content_type, 0, mode) != 0) {
        conn_close(c); /* r stays, closed, until stream_end */
        return MS_ENOMEM;
    }
    c->unsent += r->out.len;
    conn_defer(c);
    return 0;
}

int ms_http_stream_write(struct ms_http_request *req, const void *data,
                         size_t len)
{
    struct request *r = container_of(req, struct request, pub);
    struct ms_http_conn *c = r->conn;
    size_t before = r->out.len;
    int rc = 0;

    if (r->state != R_STREAMING)
        return MS_EINVAL;
    if (r->closed)
        return MS_ECANCELED;
    if (len == 0 || r->head_only)
        return 0;
    if (r->chunked) {
        rc |= ms_http_put_hex(&r->out, len);
        rc |= ms_buf_append(&r->out, "\r\n", 2);
    }
    rc |= ms_buf_append(&r->out, data, len);
    if (r->chunked)
        rc |= ms_buf_append(&r->out, "\r\n", 2);
    if (rc != 0) {
        conn_close(c);
        return MS_ENOMEM;
    }
    c->unsent += r->out.len - before;
    conn_defer(c);
    return 0;
}

size_t ms_http_stream_pending(const struct ms_http_request *req)
{
    const struct request *r = container_of(req, struct request, pub);

    if (r->closed)
        return 0;
    return r->conn->unsent +
           uv_stream_get_write_queue_size((const uv_stream_t *)&r->conn->tcp);
}

int ms_http_stream_end(struct ms_http_request *req)
{
    struct request *r = container_of(req, struct request, pub);
    struct ms_http_conn *c = r->conn;

    if (r->state != R_STREAMING)
        return MS_EINVAL;
    if (r->closed) {
        req_release(r);
        return MS_ECANCELED;
    }
    r->state = R_DONE;
    if (r->chunked && !r->head_only &&
        ms_buf_append(&r->out, "0\r\n\r\n", 5) != 0) {
        conn_close(c);
        return MS_ENOMEM;
    }
    c->unsent += r->chunked && !r->head_only ? 5 : 0;
    conn_defer(c);
    return 0;
}

int ms_http_request_closed(const struct ms_http_request *req)
{
    return container_of(req, struct request, pub)->closed;
}

void ms_http_request_on_cancel(struct ms_http_request *req,
                               ms_http_cancel_cb cb)
{
    container_of(req, struct request, pub)->on_cancel = cb;
}

/* --- reading a request --- */

const char *ms_http_request_header(const struct ms_http_request *req,
                                   const char *name)
{
    return ms_http_hdrs_get(&container_of(req, struct request, pub)->hdrs,
                            name);
}

size_t ms_http_request_header_count(const struct ms_http_request *req)
{
    return container_of(req, struct request, pub)->hdrs.n;
}

void ms_http_request_header_at(const struct ms_http_request *req, size_t i,
                               const char **name, const char **value)
{
    ms_http_hdrs_at(&container_of(req, struct request, pub)->hdrs, i, name,
                    value);
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int ms_http_pct_decode(const char *src, size_t n, int form, uint8_t *dst,
                       size_t *dst_len)
{
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        char ch = src[i];
        if (ch == '%') {
            int hi, lo;
            if (n - i < 3)
                return MS_EMALFORMED;
            hi = hexval(src[i + 1]);
            lo = hexval(src[i + 2]);
            if (hi < 0 || lo < 0)
                return MS_EMALFORMED;
            dst[o++] = (uint8_t)(hi << 4 | lo);
            i += 2;
        } else if (form && ch == '+') {
            dst[o++] = ' ';
        } else {
            dst[o++] = (uint8_t)ch;
        }
    }
    *dst_len = o;
    return 0;
}

int ms_http_query_get(const char *query, size_t n, const char *name,
                      struct ms_buf *out)
{
    size_t nlen = strlen(name), i = 0;
    uint8_t key[256];

    while (i < n) {
        const char *pair = query + i, *eq, *val;
        size_t plen, klen, vlen, dlen;
        const char *amp = memchr(pair, '&', n - i);

        plen = amp != NULL ? (size_t)(amp - pair) : n - i;
        i += plen + 1;
        eq = memchr(pair, '=', plen);
        klen = eq != NULL ? (size_t)(eq - pair) : plen;
        if (klen > sizeof(key) ||
            ms_http_pct_decode(pair, klen, 1, key, &dlen) != 0 ||
            dlen != nlen || memcmp(key, name, nlen) != 0)
            continue;
        val = eq != NULL ? eq + 1 : pair + plen;
        vlen = eq != NULL ? plen - klen - 1 : 0;
        ms_buf_reset(out);
        if (ms_buf_reserve(out, vlen + 1) != 0)
            return MS_ENOMEM;
        if (ms_http_pct_decode(val, vlen, 1, out->data, &dlen) != 0)
            return MS_EMALFORMED;
        out->len = dlen;
        return 0;
    }
    return MS_ENOTFOUND;
}

int ms_http_request_query(const struct ms_http_request *req, const char *name,
                          struct ms_buf *out)
{
    return ms_http_query_get(req->query, req->query_len, name, out);
}

/* --- parsing --- */

/* More requests are parsed only while the connection has room: fewer than
 * max_pipeline requests unanswered and less than WQ_LIMIT bytes waiting
 * for a client that may not be reading. */
static int has_room(const struct ms_http_conn *c)
{
    return c->nqueue < c->srv->cfg.max_pipeline &&
           c->unsent + uv_stream_get_write_queue_size(
                           (const uv_stream_t *)&c->tcp) <
               WQ_LIMIT;
}

static int can_parse(const struct ms_http_conn *c)
{
    return !c->closing && !c->read_done && has_room(c);
}

static int header_limit(struct ms_http_conn *c, struct request *r)
{
    /* 12: "GET  HTTP/1.1\r\n" framing around the target, roughly */
    if (r->target.len + r->hdrs.bytes + 12 > c->srv->cfg.max_header_bytes) {
        c->err_kind = MS_HTTP_ERR_HEADER_TOO_LARGE;
        return -1;
    }
    return 0;
}

static int nomem(struct ms_http_conn *c)
{
    c->err_kind = ERR_NOMEM;
    return -1;
}

static int on_message_begin(http_parser *p)
{
    struct ms_http_conn *c = p->data;
    struct request *r = req_get(c->srv);

    if (r == NULL)
        return nomem(c);
    r->conn = c;
    c->cur = r;
    c->msg_start = uv_now(c->srv->loop);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct ms_http_conn *c = p->data;

    if (ms_buf_append(&c->cur->target, at, len) != 0)
        return nomem(c);
    return header_limit(c, c->cur);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct ms_http_conn *c = p->data;

    if (ms_http_hdrs_field(&c->cur->hdrs, at, len) != 0)
        return nomem(c);
    return header_limit(c, c->cur);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct ms_http_conn *c = p->data;

    if (ms_http_hdrs_value(&c->cur->hdrs, at, len) != 0)
        return nomem(c);
    return header_limit(c, c->cur);
}

static void send_continue(struct ms_http_conn *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct seg s = {(char *)cont, sizeof(cont) - 1, 0};

    if (conn_write(c, &s, 1) != 0)
        c->err_kind = ERR_NOMEM;
}

static int on_headers_complete(http_parser *p)
{
    struct ms_http_conn *c = p->data;
    struct request *r = c->cur;
    const char *expect;
    int has_body;

    if (ms_http_hdrs_finish(&r->hdrs) != 0 || ms_buf_putc(&r->target, 0) != 0)
        return nomem(c);
    r->target.len--;
    r->headers_done = 1;
    has_body = (p->flags & F_CHUNKED) ||
               (p->content_length > 0 && p->content_length != ULLONG_MAX);
    if (p->content_length != ULLONG_MAX &&
        p->content_length > c->srv->cfg.max_body_bytes) {
        c->err_kind = MS_HTTP_ERR_BODY_TOO_LARGE;
        return -1;
    }
    if (p->content_length != ULLONG_MAX && p->content_length > 0 &&
        ms_buf_reserve(&r->body, (size_t)p->content_length + 1) != 0)
        return nomem(c);
    r->head_only = p->method == HTTP_HEAD;
    expect = ms_http_hdrs_get(&r->hdrs, "Expect");
    if (expect != NULL && has_body && strcasecmp(expect, "100-continue") == 0 &&
        p->http_minor >= 1 && c->nqueue == 0) {
        send_continue(c);
        if (c->err_kind == ERR_NOMEM)
            return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct ms_http_conn *c = p->data;
    struct request *r = c->cur;

    if (r->body.len + len > c->srv->cfg.max_body_bytes) {
        c->err_kind = MS_HTTP_ERR_BODY_TOO_LARGE;
        return -1;
    }
    if (ms_buf_append(&r->body, at, len) != 0)
        return nomem(c);
    return 0;
}

/* Points path and query into the target. */
static void split_target(struct request *r)
{
    const char *t = (const char *)r->target.data, *path = t, *q, *end;
    size_t len = r->target.len;

    if (t[0] != '/' && len > 0) {
        const char *scheme = strstr(t, "://");
        if (scheme != NULL) {
            path = strchr(scheme + 3, '/');
            if (path == NULL)
                path = t + len;
        }
    }
    end = t + len;
    q = memchr(path, '?', (size_t)(end - path));
    {
        const char *h = memchr(path, '#', (size_t)(end - path));
        if (h != NULL && (q == NULL || h < q))
            q = NULL;
        if (h != NULL)
            end = h;
    }
    if (path == t + len || path == end) {
        r->pub.path = "/";
        r->pub.path_len = 1;
    } else {
        r->pub.path = path;
        r->pub.path_len = (size_t)((q != NULL ? q : end) - path);
    }
    if (q != NULL) {
        r->pub.query = q + 1;
        r->pub.query_len = (size_t)(end - q - 1);
    } else {
        r->pub.query = "";
        r->pub.query_len = 0;
    }
}

static int on_message_complete(http_parser *p)
{
    struct ms_http_conn *c = p->data;
    struct ms_http_server *s = c->srv;
    struct request *r = c->cur;

    if (ms_buf_putc(&r->body, 0) != 0)
        return nomem(c);
    r->body.len--;
    c->cur = NULL;
    r->pub.server = s;
    r->pub.method = http_method_str((enum http_method)p->method);
    r->pub.target = (const char *)r->target.data;
    split_target(r);
    r->pub.body = r->body.data;
    r->pub.body_len = r->body.len;
    r->pub.remote = c->remote;
    r->pub.http_major = p->http_major;
    r->pub.http_minor = p->http_minor;
    r->keep_alive = http_should_keep_alive(p) != 0;
    if (!r->keep_alive || p->upgrade)
        c->read_done = 1;
    r->state = R_PENDING;
    req_link(c, r);
    s->on_request(&r->pub, s->data);
    if (c->closing)
        return -1;
    if (!can_parse(c))
        http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Feeds data to the parser; returns how many bytes were consumed (all of
 * them unless the parser paused at a message boundary). */
static size_t parse(struct ms_http_conn *c, const char *data, size_t len)
{
    size_t n;
    enum http_errno e;
    int kind;

    c->err_kind = -1;
    n = http_parser_execute(&c->parser, &settings, data, len);
    e = HTTP_PARSER_ERRNO(&c->parser);
    if (c->closing)
        return len;
    if (e == HPE_PAUSED) {
        http_parser_pause(&c->parser, 0);
        return n;
    }
    if (e != HPE_OK) {
        if (c->err_kind == ERR_NOMEM) {
            conn_close(c);
            return len;
        }
        kind = c->err_kind;
        if (kind < 0)
            kind = e == HPE_HEADER_OVERFLOW ? MS_HTTP_ERR_HEADER_TOO_LARGE
                                            : MS_HTTP_ERR_BAD_REQUEST;
        conn_error(c, kind,
                   kind == MS_HTTP_ERR_BAD_REQUEST ? http_errno_description(e)
                                                   : NULL);
        return len;
    }
    if (c->parser.upgrade)
        return len; /* read_done is set: no protocol switch here */
    return n;
}

/* --- connection state --- */

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    struct ms_http_conn *c = h->data;

    (void)size;
    *buf = uv_buf_init(c->srv->rbuf, RBUF_SIZE);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_timer(uv_timer_t *t);

static void update_reading(struct ms_http_conn *c)
{
    int want = c->read_done || c->lingering || has_room(c);

    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
            conn_close(c);
            return;
        }
        c->reading = 1;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

static void arm(struct ms_http_conn *c, uint64_t due)
{
    uint64_t now = uv_now(c->srv->loop);

    if (c->timer_armed && c->timer_due <= due)
        return;
    uv_timer_start(&c->timer, on_timer, due > now ? due - now : 0, 0);
    c->timer_armed = 1;
    c->timer_due = due;
}

/* The timer is lazy: the deadline moves freely and the timer is re-armed
 * only when it must fire earlier than it is set to. */
static void set_deadline(struct ms_http_conn *c, uint64_t due)
{
    c->deadline = due;
    if (due != 0)
        arm(c, due);
}

static void update_deadline(struct ms_http_conn *c)
{
    const struct ms_http_server_config *cfg = &c->srv->cfg;
    uint64_t now = uv_now(c->srv->loop);

    if (c->closing || c->lingering || c->shut_started)
        return;
    if (c->tls != NULL && !c->hs_done)
        set_deadline(c, c->accepted + cfg->header_timeout_ms);
    else if (c->cur != NULL)
        set_deadline(c, c->cur->headers_done
                            ? c->last_read + cfg->idle_timeout_ms
                            : c->msg_start + cfg->header_timeout_ms);
    else if (c->nqueue > 0)
        set_deadline(c, 0); /* the handler's time, not the client's */
    else
        set_deadline(c, now + cfg->idle_timeout_ms);
}

/* --- answers written once per loop iteration --- */

/* Answers produced outside a connection's own read (results applied by the
 * state machine, stream writes) are not written at once: the connection
 * goes on the server's dirty list, and every connection on it is written
 * once, at the end of the loop iteration (check phase). Pipelined answers
 * applied in one Raft entry then leave in one write instead of one each.
 * The idle handle keeps the next poll from blocking when an answer is
 * queued after this iteration's check phase (timers, close callbacks). */

static void dirty_unlink(struct ms_http_conn *c)
{
    struct ms_http_server *s = c->srv;

    if (!c->dirty)
        return;
    if (c->dprev != NULL)
        c->dprev->dnext = c->dnext;
    else
        s->dirty = c->dnext;
    if (c->dnext != NULL)
        c->dnext->dprev = c->dprev;
    c->dnext = c->dprev = NULL;
    c->dirty = 0;
}

static void flush_dirty(struct ms_http_server *s)
{
    struct ms_http_conn *c;

    while ((c = s->dirty) != NULL) {
        dirty_unlink(c);
        conn_process(c, 0); /* may close c: freed only in close callbacks */
    }
    if (s->flush_on) {
        uv_check_stop(&s->flush_check);
        uv_idle_stop(&s->flush_idle);
        s->flush_on = 0;
    }
}

static void on_flush_check(uv_check_t *h)
{
    flush_dirty(h->data);
}

static void on_flush_idle(uv_idle_t *h)
{
    flush_dirty(h->data);
}

/* Processes c at the end of this loop iteration; at once while c is being
 * processed already (inside its own read or parse) or the server stops. */
static void conn_defer(struct ms_http_conn *c)
{
    struct ms_http_server *s = c->srv;

    if (c->closing)
        return;
    if (c->in_process || s->state >= S_STOPPING) {
        conn_process(c, 0);
        return;
    }
    if (c->dirty)
        return;
    c->dirty = 1;
    c->dprev = NULL;
    c->dnext = s->dirty;
    if (s->dirty != NULL)
        s->dirty->dprev = c;
    s->dirty = c;
    if (!s->flush_on) {
        uv_check_start(&s->flush_check, on_flush_check);
        uv_idle_start(&s->flush_idle, on_flush_idle);
        s->flush_on = 1;
    }
}

/* Runs the connection after any change: parses buffered input (only when
 * parse_ok, so handlers are never entered from inside another handler's
 * call), writes ready answers, and adjusts reading and the timer. */
static void conn_process(struct ms_http_conn *c, int parse_ok)
{
    size_t n;

    if (c->closing)
        return;
    if (c->in_process) {
        c->reprocess = 1;
        return;
    }
    c->in_process = 1;
    do {
        c->reprocess = 0;
        while (parse_ok && can_parse(c) && c->in_off < c->in.len) {
            n = parse(c, (const char *)c->in.data + c->in_off,
                      c->in.len - c->in_off);
            c->in_off += n;
            if (n == 0)
                break;
        }
        if (c->closing)
            break;
        if (c->read_done)
            c->in_off = c->in.len;
        if (c->in_off == c->in.len)
            c->in.len = c->in_off = 0;
        conn_flush(c);
    } while (!c->closing && (c->reprocess || (parse_ok && can_parse(c) &&
                                              c->in_off < c->in.len)));
    c->in_process = 0;
    if (c->closing)
        return;
    if (c->in_off > 0 && c->in_off == c->in.len)
        c->in.len = c->in_off = 0;
    if (!parse_ok && can_parse(c) && c->in_off < c->in.len) {
        c->resume = 1;
        arm(c, uv_now(c->srv->loop));
    }
    update_reading(c);
    if (!c->closing)
        update_deadline(c);
}

static void timeout(struct ms_http_conn *c)
{
    if (c->lingering) {
        conn_close(c);
    } else if (c->tls != NULL && !c->hs_done) {
        ms_warn("client TLS handshake from %s: timed out", c->remote);
        conn_close(c);
    } else if (c->cur != NULL) {
        conn_error(c, MS_HTTP_ERR_HEADER_TIMEOUT,
                   c->cur->headers_done ? "timed out reading request body"
                                        : NULL);
        conn_process(c, 0);
    } else if (c->nqueue == 0) {
        conn_close(c); /* idle keep-alive connection */
    }
}

static void on_timer(uv_timer_t *t)
{
    struct ms_http_conn *c = t->data;
    uint64_t now;

    c->timer_armed = 0;
    if (c->closing)
        return;
    if (c->resume) {
        c->resume = 0;
        conn_process(c, 1);
        if (c->closing)
            return;
    }
    now = uv_now(c->srv->loop);
    if (c->deadline == 0)
        return;
    if (now >= c->deadline)
        timeout(c);
    else
        arm(c, c->deadline);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct ms_http_conn *c = req->handle->data;

    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    c->lingering = 1;
    c->deadline = uv_now(c->srv->loop) + c->srv->cfg.linger_ms;
    arm(c, c->deadline);
    update_reading(c);
}

static int sniff(struct ms_http_conn *c);

/* Takes len bytes of the client's plaintext (read from TCP, or decrypted;
 * base may be the shared read buffer). */
static void on_plain(struct ms_http_conn *c, char *base, size_t len)
{
    size_t n;

    if (c->read_done || c->lingering)
        return; /* discard */
    c->last_read = uv_now(c->srv->loop);
    if (c->sniffing) {
        if (ms_buf_append(&c->in, base, len) != 0) {
            conn_close(c);
            return;
        }
        if (!sniff(c))
            conn_process(c, 1); /* HTTP/1: parse what was buffered */
        return;
    }
    if (c->in_off == c->in.len) {
        /* common case: parse straight from the shared buffer */
        c->in_process = 1;
        n = parse(c, base, len);
        c->in_process = 0;
        if (c->closing)
            return;
        if (n < len && !c->read_done &&
            ms_buf_append(&c->in, base + n, len - n) != 0) {
            conn_close(c);
            return;
        }
    } else if (ms_buf_append(&c->in, base, len) != 0) {
        conn_close(c);
        return;
    }
    conn_process(c, 1);
}

/* A failed handshake: log why, send the alert OpenSSL made (if any), shut
 * down and linger (the client sees the alert rather than a reset). */
static void tls_refuse(struct ms_http_conn *c)
{
    ms_warn("client TLS handshake from %s failed: %s", c->remote,
            ms_tls_errmsg(c->tls));
    if (c->hs_counted) { /* no longer a handshake in progress */
        c->hs_counted = 0;
        c->srv->nhandshakes--;
    }
    if (tls_send(c) != 0) {
        conn_close(c);
        return;
    }
    c->read_done = 1;
    conn_finish(c);
}

/* Ciphertext from the client: feeds the session, advances the handshake,
 * then decrypts into the shared read buffer (free again: the session has
 * copied the ciphertext) and hands the plaintext on. */
static void tls_input(struct ms_http_conn *c, const char *data, size_t len)
{
    struct ms_http_server *s = c->srv;
    bool done;
    size_t n;
    int rc;

    if (c->read_done || c->lingering)
        return;
    if (ms_tls_feed(c->tls, data, len) != 0) {
        conn_close(c);
        return;
    }
    if (!c->hs_done) {
        if (ms_tls_handshake(c->tls, &done) != 0) {
            tls_refuse(c);
            return;
        }
        if (tls_send(c) != 0) {
            conn_close(c);
            return;
        }
        if (!done)
            return;
        c->hs_done = 1;
        c->hs_counted = 0;
        s->nhandshakes--;
        ms_debug("client TLS from %s: %s, ALPN '%s', CN '%s'", c->remote,
                 ms_tls_describe(c->tls), ms_tls_alpn(c->tls),
                 ms_tls_peer_cn(c->tls));
        c->last_read = uv_now(s->loop);
        c->sniffing = s->cfg.on_h2 != NULL; /* gRPC: ALPN h2, preface */
        update_deadline(c);
    }
    for (;;) {
        rc = ms_tls_read(c->tls, s->rbuf, RBUF_SIZE, &n);
        if (rc == 0 && tls_send(c) != 0)
            rc = MS_EIO;
        if (rc == MS_ESHUTDOWN) { /* close_notify: like EOF */
            conn_close(c);
            return;
        }
        if (rc != 0) {
            ms_warn("client TLS from %s: %s", c->remote, ms_tls_errmsg(c->tls));
            conn_close(c);
            return;
        }
        if (n == 0)
            return;
        on_plain(c, s->rbuf, n);
        if (c->closing || c->read_done || c->lingering)
            return;
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct ms_http_conn *c = stream->data;

    if (nread == 0 || c->closing)
        return;
    if (nread < 0) { /* EOF or error: the client is gone */
        if (c->tls != NULL && !c->hs_done && !c->read_done)
            ms_warn("client TLS handshake from %s: connection closed "
                    "(%s)",
                    c->remote,
                    nread == UV_EOF ? "the client refused our certificate "
                                      "or gave up"
                                    : uv_strerror((int)nread));
        conn_close(c);
        return;
    }
    if (c->tls != NULL)
        tls_input(c, buf->base, (size_t)nread);
    else
        on_plain(c, buf->base, (size_t)nread);
}

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* Buffered first bytes of c (in c->in): returns 1 while they may still
 * become the HTTP/2 preface, or once c was handed to on_h2 (c is closing);
 * 0 when c speaks HTTP/1 (parse c->in as usual). */
static int sniff(struct ms_http_conn *c)
{
    size_t n = c->in.len < 24 ? c->in.len : 24;
    uv_os_fd_t fd;
    struct ms_tls *tls;
    int dup_fd;

    if (memcmp(c->in.data, h2_preface, n) != 0) {
        c->sniffing = 0;
        return 0;
    }
    if (n < 24)
        return 1;
    c->sniffing = 0;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0 || (dup_fd = dup(fd)) < 0) {
        conn_close(c);
        return 1;
    }
    /* the duplicate keeps the socket open once our handle closes; the TLS
     * session (if any) goes with it */
    tls = c->tls;
    c->tls = NULL;
    c->srv->cfg.on_h2(dup_fd, tls, c->in.data, c->in.len, c->remote,
                      c->srv->data);
    c->in.len = c->in_off = 0;
    conn_close(c);
    return 1;
}

static void on_close(uv_handle_t *h)
{
    struct ms_http_conn *c = h->data;

    c->nhandles--;
    conn_maybe_free(c);
}

/* Closes c now. Answered requests are dropped; pending ones are marked
 * closed, get their cancel callback, and keep c alive until finished. */
static void conn_close(struct ms_http_conn *c)
{
    struct ms_http_server *s = c->srv;
    struct request *r, *next;

    if (c->closing)
        return;
    c->closing = 1;
    dirty_unlink(c);
    if (c->counted)
        s->nconns--;
    if (c->hs_counted)
        s->nhandshakes--;
    if (c->rejecting)
        s->nrejecting--;
    if (c->cur != NULL) {
        req_put(s, c->cur);
        c->cur = NULL;
    }
    uv_close((uv_handle_t *)&c->tcp, on_close);
    uv_close((uv_handle_t *)&c->timer, on_close);
    for (r = c->head; r != NULL; r = next) {
        next = r->next;
        if (r->state == R_DONE)
            req_release(r);
        else
            r->closed = 1;
    }
    /* A cancel callback may finish any request, so rescan after each. */
again:
    for (r = c->head; r != NULL; r = r->next) {
        if (!r->cancel_done) {
            r->cancel_done = 1;
            if (r->on_cancel != NULL) {
                r->on_cancel(&r->pub);
                goto again;
            }
        }
    }
}

static const char *const error_text[] = {
    [MS_HTTP_ERR_BAD_REQUEST] = "malformed request",
    [MS_HTTP_ERR_HEADER_TOO_LARGE] = "request header too large",
    [MS_HTTP_ERR_BODY_TOO_LARGE] = "request is too large",
    [MS_HTTP_ERR_HEADER_TIMEOUT] = "timed out reading request header",
    [MS_HTTP_ERR_TOO_MANY_CONNECTIONS] = "too many connections",
};

static const int error_status[] = {
    [MS_HTTP_ERR_BAD_REQUEST] = 400,
    [MS_HTTP_ERR_HEADER_TOO_LARGE] = 431,
    [MS_HTTP_ERR_BODY_TOO_LARGE] = 413,
    [MS_HTTP_ERR_HEADER_TIMEOUT] = 408,
    [MS_HTTP_ERR_TOO_MANY_CONNECTIONS] = 503,
};

/* Stops parsing and queues an error answer after the pending ones; the
 * connection closes once it is written. detail refines the message. */
static void conn_error(struct ms_http_conn *c, int kind, const char *detail)
{
    struct ms_http_server *s = c->srv;
    struct ms_http_error_reply reply;
    struct ms_buf msg = MS_BUF_INIT;
    struct request *r;
    int rc = 0;

    c->read_done = 1;
    if (c->cur != NULL) {
        req_put(s, c->cur);
        c->cur = NULL;
    }
    r = req_get(s);
    if (r == NULL)
        goto err;
    if (detail == NULL)
        rc |= ms_buf_puts(&msg, error_text[kind]);
    else if (kind == MS_HTTP_ERR_BAD_REQUEST)
        rc |= ms_buf_printf(&msg, "%s: %s", error_text[kind], detail);
    else
        rc |= ms_buf_puts(&msg, detail);
    rc |= ms_buf_putc(&msg, 0);
    reply.status = error_status[kind];
    reply.content_type = default_ctype;
    memset(&reply.body, 0, sizeof(reply.body));
    rc |= ms_buf_printf(&reply.body, "%s\n", (char *)msg.data);
    if (rc != 0)
        goto err_reply;
    if (s->cfg.on_error != NULL)
        s->cfg.on_error((enum ms_http_error_kind)kind, (char *)msg.data, &reply,
                        s->data);
    if (c->closing)
        goto err_reply;
    r->conn = c;
    r->keep_alive = 0;
    r->pub.http_minor = 1;
    rc = build_head(r, reply.status, reply.content_type, reply.body.len,
                    BODY_LEN);
    rc |= ms_buf_append(&r->out, reply.body.data, reply.body.len);
    if (rc != 0)
        goto err_reply;
    ms_buf_free(&reply.body);
    ms_buf_free(&msg);
    r->state = R_DONE;
    req_link(c, r);
    c->unsent += r->out.len;
    return;
err_reply:
    ms_buf_free(&reply.body);
err:
    ms_buf_free(&msg);
    if (r != NULL)
        req_put(s, r);
    conn_close(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct ms_http_server *s = server->data;
    struct ms_http_conn *c;
    struct sockaddr_storage peer;
    int len = sizeof(peer);

    if (status < 0 || s->state >= S_STOPPING)
        return;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return; /* libuv retries the accept on the next loop iteration */
    c->srv = s;
    c->err_kind = -1;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->nhandles = 2;
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, 60); /* notice dead peers of long streams */
    memset(&peer, 0, sizeof(peer));
    uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &len);
    ms_http_format_addr(&peer, c->remote, sizeof(c->remote));
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->last_read = c->accepted = uv_now(s->loop);
    c->sniffing = s->cfg.on_h2 != NULL;
    if (s->cfg.tls != NULL) {
        char err[MS_ERRMSG_SIZE];
        /* no plaintext 503 before a handshake; a handshake costs ~250 us
         * of CPU, so only so many run at once */
        if (s->nconns >= s->cfg.max_connections ||
            s->nhandshakes >= s->cfg.max_handshakes) {
            ms_warn("client TLS from %s: refused (%u connections, %u "
                    "handshakes in progress)",
                    c->remote, s->nconns, s->nhandshakes);
            conn_close(c);
            return;
        }
        if (ms_tls_new(s->cfg.tls, NULL, &c->tls, err, sizeof(err)) != 0) {
            ms_warn("client TLS from %s: %s", c->remote, err);
            conn_close(c);
            return;
        }
        c->hs_counted = 1;
        s->nhandshakes++;
        c->sniffing = 0; /* until the handshake is done */
    }
    if (s->nconns >= s->cfg.max_connections) {
        if (s->nrejecting >= REJECT_MAX) {
            conn_close(c);
            return;
        }
        c->rejecting = 1;
        s->nrejecting++;
        conn_error(c, MS_HTTP_ERR_TOO_MANY_CONNECTIONS, NULL);
    } else {
        c->counted = 1;
        s->nconns++;
    }
    conn_process(c, 1);
}

/* --- server --- */

void ms_http_server_config_init(struct ms_http_server_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_header_bytes = 16 * 1024;
    cfg->max_body_bytes = 1572864;
    cfg->header_timeout_ms = 10000;
    cfg->idle_timeout_ms = 60000;
    cfg->max_connections = 1024;
    cfg->max_pipeline = 256;
    cfg->backlog = 1024;
    cfg->linger_ms = 2000;
    cfg->max_handshakes = 128;
}

/* Copies the non-zero fields of cfg over the defaults in out. */
static void apply_config(struct ms_http_server_config *out,
                         const struct ms_http_server_config *cfg)
{
    if (cfg->max_header_bytes != 0)
        out->max_header_bytes = cfg->max_header_bytes;
    if (cfg->max_body_bytes != 0)
        out->max_body_bytes = cfg->max_body_bytes;
    if (cfg->header_timeout_ms != 0)
        out->header_timeout_ms = cfg->header_timeout_ms;
    if (cfg->idle_timeout_ms != 0)
        out->idle_timeout_ms = cfg->idle_timeout_ms;
    if (cfg->max_connections != 0)
        out->max_connections = cfg->max_connections;
    if (cfg->max_pipeline != 0)
        out->max_pipeline = cfg->max_pipeline;
    if (cfg->backlog != 0)
        out->backlog = cfg->backlog;
    if (cfg->linger_ms != 0)
        out->linger_ms = cfg->linger_ms;
    if (cfg->max_handshakes != 0)
        out->max_handshakes = cfg->max_handshakes;
    out->on_error = cfg->on_error;
    out->on_h2 = cfg->on_h2;
    out->tls = cfg->tls;
}

int ms_http_server_init(struct ms_http_server *server, uv_loop_t *loop,
                        const struct ms_http_server_config *cfg,
                        ms_http_request_cb on_request)
{
    int rc;

    memset(server, 0, sizeof(*server));
    if (loop == NULL || on_request == NULL)
        return ms_seterr(server->errmsg, sizeof(server->errmsg), MS_EINVAL,
                         "init: loop and on_request are required");
    ms_http_server_config_init(&server->cfg);
    if (cfg != NULL)
        apply_config(&server->cfg, cfg);
    server->loop = loop;
    server->on_request = on_request;
    server->rbuf = malloc(RBUF_SIZE);
    if (server->rbuf == NULL)
        return ms_seterr(server->errmsg, sizeof(server->errmsg), MS_ENOMEM,
                         "init: out of memory");
    rc = uv_tcp_init(loop, &server->tcp);
    if (rc != 0) {
        free(server->rbuf);
        server->rbuf = NULL;
        return ms_seterr(server->errmsg, sizeof(server->errmsg), MS_EIO,
                         "init: %s", uv_strerror(rc));
    }
    server->tcp.data = server;
    uv_check_init(loop, &server->flush_check);
    uv_idle_init(loop, &server->flush_idle);
    server->flush_check.data = server;
    server->flush_idle.data = server;
    server->flush_handles = 2;
    server->state = S_INIT;
    return 0;
}

int ms_http_server_listen(struct ms_http_server *server, const char *addr)
{
    struct sockaddr_storage sa;
    int rc;

    if (server->state != S_INIT)
        return ms_seterr(server->errmsg, sizeof(server->errmsg), MS_EINVAL,
                         "listen %s: server already listening or stopped",
                         addr);
    if (ms_http_parse_addr(addr, &sa) != 0)
        return ms_seterr(server->errmsg, sizeof(server->errmsg), MS_EINVAL,
                         "listen: bad address '%s' (want IP:port)", addr);
    rc = uv_tcp_bind(&server->tcp, (struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&server->tcp, server->cfg.backlog,
                       on_connection);
    if (rc != 0)
        return ms_seterr(server->errmsg, sizeof(server->errmsg), MS_EIO,
                         "listen %s: %s", addr, uv_strerror(rc));
    server->state = S_LISTENING;
    return 0;
}

int ms_http_server_port(struct ms_http_server *server)
{
    struct sockaddr_storage sa;
    int len = sizeof(sa);

    if (server->state != S_LISTENING ||
        uv_tcp_getsockname(&server->tcp, (struct sockaddr *)&sa, &len) != 0)
        return -1;
    if (sa.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&sa)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
}

unsigned ms_http_server_connections(const struct ms_http_server *server)
{
    return server->nconns + server->nrejecting;
}

static void on_listener_close(uv_handle_t *h)
{
    struct ms_http_server *s = h->data;

    s->listener_closed = 1;
    server_maybe_done(s);
}

/* Walks the connections with frees held off (a callback run by fn may
 * finish the last request of another, already closed connection). */
static void for_each_conn(struct ms_http_server *s,
                          void (*fn)(struct ms_http_conn *))
{
    struct ms_http_conn *c, *next;

    for (c = s->conns; c != NULL; c = c->next)
        c->nhandles++;
    for (c = s->conns; c != NULL; c = c->next)
        fn(c);
    for (c = s->conns; c != NULL; c = next) {
        next = c->next;
        c->nhandles--;
        if (c->closing)
            conn_maybe_free(c); /* may end the server: checked below */
    }
}

static void conn_stop(struct ms_http_conn *c)
{
    if (c->closing)
        return;
    if (c->nqueue == 0) {
        conn_close(c);
        return;
    }
    c->read_done = 1;
    if (c->cur != NULL) {
        req_put(c->srv, c->cur);
        c->cur = NULL;
    }
    conn_process(c, 0);
}

static void on_flush_handle_close(uv_handle_t *h)
{
    struct ms_http_server *s = h->data;

    s->flush_handles--;
    server_maybe_done(s);
}

static void server_end(struct ms_http_server *s, ms_http_server_close_cb cb,
                       int hard)
{
    s->close_cb = cb;
    if (s->state == S_CLOSED)
        return;
    if (s->state < S_STOPPING) {
        /* deferred answers go now; from here on they are written at once */
        flush_dirty(s);
        s->state = S_STOPPING;
        uv_close((uv_handle_t *)&s->tcp, on_listener_close);
        uv_close((uv_handle_t *)&s->flush_check, on_flush_handle_close);
        uv_close((uv_handle_t *)&s->flush_idle, on_flush_handle_close);
    }
    if (hard)
        s->state = S_CLOSING;
    if (s->conns == NULL)
        return; /* on_listener_close finishes */
    for_each_conn(s, hard ? conn_close : conn_stop);
}

void ms_http_server_stop(struct ms_http_server *server,
                         ms_http_server_close_cb cb)
{
    server_end(server, cb, 0);
}

void ms_http_server_close(struct ms_http_server *server,
                          ms_http_server_close_cb cb)
{
    server_end(server, cb, 1);
}
