/* tls_transport.c - mutual TLS, identity preamble and socketpair pump
 * behind C-Raft's raft_uv_transport interface. */
#include "raft/tls_transport.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "raft/node.h"
#include "util/error.h"
#include "util/log.h"

#define HANDSHAKE_MS 5000
#define MAX_HANDSHAKES 32
#define HIGH_WATER (4u << 20)
#define LOW_WATER (1u << 20)
#define CHUNK 65536
#define MAGIC "MSR1"
#define PREAMBLE_MAX (4 + 8 + 1 + MS_RAFT_ADDR_SIZE - 1)
#define ACK_OK 1
#define WARN_REPEAT_MS 10000
#define WARN_SLOTS 16

enum conn_state {
    C_CONNECTING, /* dialer: TCP connect in flight */
    C_HANDSHAKE,  /* TLS handshake */
    C_PREAMBLE,   /* acceptor: waits for the dialer's preamble */
    C_ACK,        /* dialer: waits for the acceptor's ack */
    C_PUMP,       /* handed to libraft; bytes flow through the pipe */
    C_CLOSING,
};

struct ms_raft_tls_transport;

struct conn {
    struct ms_raft_tls_transport *t;
    struct conn *prev, *next;
    enum conn_state state;
    bool outbound;
    bool shutting;    /* close_notify sent, TCP shutdown in flight */
    bool tcp_paused;  /* TCP reads stopped: the pipe is backed up */
    bool pipe_paused; /* pipe reads stopped: TCP is backed up */
    int handles;      /* our open handles; the conn is freed at 0 */
    uv_tcp_t tcp;
    uv_timer_t timer; /* deadline of steps 1-2 */
    uv_pipe_t pipe;   /* our end of the socketpair, from step 3 */
    bool pipe_open;
    uv_connect_t connect;
    uv_shutdown_t shutdown;
    struct ms_tls *tls;
    struct raft_uv_connect *req; /* dialer: libraft's request until its cb */
    raft_id id;                  /* the other member (dialer: known) */
    char addr[MS_RAFT_ADDR_SIZE];
    char remote[64]; /* "ip:port" of the TCP peer, for logs */
    char ip[48];
    uint8_t pre[PREAMBLE_MAX];
    size_t pre_len;
};

struct ms_raft_tls_transport {
    struct raft_uv_transport outer;
    uv_loop_t *loop;
    struct ms_tls_ctx *server_ctx, *client_ctx;
    raft_id id;
    char address[MS_RAFT_ADDR_SIZE];
    uv_tcp_t listener;
    bool listening;
    bool closing;
    int pending; /* our own handles being closed (the listener) */
    raft_uv_accept_cb accept_cb;
    raft_uv_transport_close_cb close_cb;
    struct conn *conns;
    unsigned n_accepting; /* accepted connections in steps 1-2 */
    struct {
        uint64_t hash, ms;
    } warned[WARN_SLOTS]; /* recent refusal warnings */
    char rbuf[CHUNK];     /* what a read callback got (one at a time) */
    char pbuf[CHUNK];     /* decrypted bytes */
};

/* A warning, or a debug line when the same one was logged in the last
 * 10 s (a refused peer retries every second). */
static void refusal(struct ms_raft_tls_transport *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void refusal(struct ms_raft_tls_transport *t, const char *fmt, ...)
{
    char msg[MS_ERRMSG_SIZE + 128];
    uint64_t now = uv_now(t->loop), h = 14695981039346656037ull;
    size_t slot = 0;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    for (const char *p = msg; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    for (size_t i = 0; i < WARN_SLOTS; i++) {
        if (t->warned[i].hash == h && now - t->warned[i].ms < WARN_REPEAT_MS) {
            ms_debug("%s", msg);
            return;
        }
        if (t->warned[i].ms < t->warned[slot].ms)
            slot = i;
    }
    ms_warn("%s", msg);
    t->warned[slot].hash = h;
    t->warned[slot].ms = now;
}

/* --- teardown ------------------------------------------------------------ */

static void maybe_closed(struct ms_raft_tls_transport *t)
{
    raft_uv_transport_close_cb cb = t->close_cb;

    if (!t->closing || t->pending > 0 || t->conns != NULL || cb == NULL)
        return;
    t->close_cb = NULL;
    cb(&t->outer);
}

static void conn_free(struct conn *c)
{
    struct ms_raft_tls_transport *t = c->t;
    struct raft_uv_connect *req = c->req;

    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        t->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    ms_tls_free(c->tls);
    free(c);
    /* libraft's connect callback fires exactly once, and never from
     * inside its connect call: here it is always from a close callback */
    if (req != NULL)
        req->cb(req, NULL, t->closing ? RAFT_CANCELED : RAFT_NOCONNECTION);
    maybe_closed(t);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;

    if (--c->handles == 0)
        conn_free(c);
}

static void leave_accepting(struct conn *c)
{
    if (!c->outbound && c->state < C_PUMP && c->state != C_CONNECTING)
        c->t->n_accepting--;
}

/* Closes every handle of c at once (queued writes are dropped). */
static void conn_close(struct conn *c)
{
    if (c->state == C_CLOSING)
        return;
    leave_accepting(c);
    c->state = C_CLOSING;
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    if (c->pipe_open)
        uv_close((uv_handle_t *)&c->pipe, on_handle_closed);
}

/* Steps 1-2 failed: says why (a refusal by TLS is a warning), and ends. */
static void conn_refuse(struct conn *c, bool tls_failure, const char *why)
{
    struct ms_raft_tls_transport *t = c->t;

    if (c->state == C_CLOSING)
        return;
    if (c->outbound && tls_failure)
        refusal(t,
                "raft: peer TLS: connection to node %llu at %s refused: "
                "%s",
                (unsigned long long)c->id, c->addr, why);
    else if (c->outbound)
        ms_debug("raft: peer TLS: connect to node %llu at %s: %s",
                 (unsigned long long)c->id, c->addr, why);
    else if (tls_failure)
        refusal(t, "raft: peer TLS: refused connection from %s: %s", c->ip,
                why);
    else
        ms_debug("raft: peer TLS: connection from %s: %s", c->remote, why);
    conn_close(c);
}

/* --- writing ------------------------------------------------------------- */

struct wreq {
    uv_write_t req;
    struct conn *c;
    char data[];
};

static void resume_reading(struct conn *c);

static void on_written(uv_write_t *req, int status)
{
    struct wreq *w = req->data;
    struct conn *c = w->c;

    free(w);
    if (c->state == C_CLOSING)
        return;
    if (status < 0) {
        ms_debug("raft: peer TLS: write to %s: %s", c->remote,
                 uv_strerror(status));
        conn_close(c);
        return;
    }
    resume_reading(c);
}

/* Writes buf[0..len) to s: what the socket takes now, the rest queued. A
 * partial uv_try_write leaves the remainder to uv_write; while writes are
 * queued it returns UV_EAGAIN, so the order holds. */
static int send_bytes(struct conn *c, uv_stream_t *s, const char *buf,
                      size_t len, struct wreq *own)
{
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
    struct wreq *w = own;
    int n = 0, rc;

    if (len == 0) {
        free(own);
        return 0;
    }
    if (s->write_queue_size == 0) {
        n = uv_try_write(s, &b, 1);
        if (n < 0 && n != UV_EAGAIN) {
            free(own);
            return n;
        }
        if (n < 0)
            n = 0;
    }
    if ((size_t)n == len) {
        free(own);
        return 0;
    }
    if (w == NULL) {
        w = malloc(sizeof(*w) + len - (size_t)n);
        if (w == NULL)
            return UV_ENOMEM;
        memcpy(w->data, buf + n, len - (size_t)n);
        b = uv_buf_init(w->data, (unsigned)(len - (size_t)n));
    } else {
        b = uv_buf_init((char *)buf + n, (unsigned)(len - (size_t)n));
    }
    w->c = c;
    w->req.data = w;
    rc = uv_write(&w->req, s, &b, 1, on_written);
    if (rc != 0)
        free(w);
    return rc;
}

/* Sends the ciphertext the session produced (after every TLS call). */
static int flush_tls(struct conn *c)
{
    size_t n = ms_tls_pending(c->tls);
    struct wreq *w;

    if (n == 0 || c->state == C_CLOSING)
        return 0;
    w = malloc(sizeof(*w) + n);
    if (w == NULL)
        return UV_ENOMEM;
    n = ms_tls_drain(c->tls, w->data, n);
    return send_bytes(c, (uv_stream_t *)&c->tcp, w->data, n, w);
}

/* --- reading ------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct conn *c = h->data;

    (void)hint;
    *buf = uv_buf_init(c->t->rbuf, sizeof(c->t->rbuf));
}

static void on_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_pipe_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void resume_reading(struct conn *c)
{
    if (c->tcp_paused && c->pipe_open && c->pipe.write_queue_size < LOW_WATER) {
        c->tcp_paused = false;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_tcp_read);
    }
    if (c->pipe_paused && !c->shutting && c->tcp.write_queue_size < LOW_WATER) {
        c->pipe_paused = false;
        uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_pipe_read);
    }
}

/* --- step 3: the handoff and the pump ----------------------------------- */

static void free_raft_pipe(uv_handle_t *h)
{
    raft_free(h);
}

static int handoff(struct conn *c)
{
    struct ms_raft_tls_transport *t = c->t;
    uv_pipe_t *theirs;
    int fds[2], rc;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        return UV_EMFILE;
    theirs = raft_malloc(sizeof(*theirs));
    if (theirs == NULL) {
        close(fds[0]);
        close(fds[1]);
        return UV_ENOMEM;
    }
    uv_pipe_init(t->loop, &c->pipe, 0);
    c->pipe.data = c;
    c->pipe_open = true;
    c->handles++;
    uv_pipe_init(t->loop, theirs, 0);
    rc = uv_pipe_open(&c->pipe, fds[0]);
    if (rc != 0) {
        close(fds[0]);
        close(fds[1]);
        uv_close((uv_handle_t *)theirs, free_raft_pipe);
        return rc;
    }
    rc = uv_pipe_open(theirs, fds[1]);
    if (rc != 0) {
        close(fds[1]);
        uv_close((uv_handle_t *)theirs, free_raft_pipe);
        return rc;
    }
    rc = uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_pipe_read);
    if (rc != 0) {
        uv_close((uv_handle_t *)theirs, free_raft_pipe);
        return rc;
    }
    uv_timer_stop(&c->timer);
    leave_accepting(c);
    c->state = C_PUMP;
    if (c->outbound) {
        struct raft_uv_connect *req = c->req;

        c->req = NULL;
        ms_debug("raft: peer TLS: connected to node %llu at %s (CN '%s', %s)",
                 (unsigned long long)c->id, c->addr, ms_tls_peer_cn(c->tls),
                 ms_tls_describe(c->tls));
        req->cb(req, (uv_stream_t *)theirs, 0);
    } else {
        ms_debug("raft: peer TLS: accepted node %llu at %s from %s (CN '%s', "
                 "%s)",
                 (unsigned long long)c->id, c->addr, c->remote,
                 ms_tls_peer_cn(c->tls), ms_tls_describe(c->tls));
        t->accept_cb(&t->outer, c->id, c->addr, (uv_stream_t *)theirs);
    }
    return 0;
}

/* Bytes decrypted in step 3: to libraft. */
static int to_pipe(struct conn *c, const char *buf, size_t n)
{
    int rc = send_bytes(c, (uv_stream_t *)&c->pipe, buf, n, NULL);

    if (rc == 0 && !c->tcp_paused && c->pipe.write_queue_size > HIGH_WATER) {
        c->tcp_paused = true;
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
    return rc;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;

    (void)status;
    conn_close(c);
}

/* libraft closed its end: close_notify, drain, shut TCP down, close. */
static void pump_finish(struct conn *c)
{
    if (c->shutting || c->state == C_CLOSING)
        return;
    c->shutting = true;
    uv_read_stop((uv_stream_t *)&c->pipe);
    ms_tls_close_notify(c->tls);
    c->shutdown.data = c;
    if (flush_tls(c) != 0 ||
        uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        conn_close(c);
}

static void on_pipe_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    int rc;

    if (c->state != C_PUMP || c->shutting)
        return;
    if (nread < 0) {
        pump_finish(c);
        return;
    }
    if (nread == 0)
        return;
    rc = ms_tls_write(c->tls, buf->base, (size_t)nread);
    if (rc == 0)
        rc = flush_tls(c);
    if (rc != 0) {
        ms_debug("raft: peer TLS: send to %s: %s", c->remote,
                 rc == MS_ETLS ? ms_tls_errmsg(c->tls) : "out of memory");
        conn_close(c);
        return;
    }
    if (!c->pipe_paused && c->tcp.write_queue_size > HIGH_WATER) {
        c->pipe_paused = true;
        uv_read_stop((uv_stream_t *)&c->pipe);
    }
}

/* --- step 2: preamble and ack ------------------------------------------- */

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static int send_preamble(struct conn *c)
{
    struct ms_raft_tls_transport *t = c->t;
    uint8_t buf[PREAMBLE_MAX];
    size_t n = strlen(t->address);
    int rc;

    memcpy(buf, MAGIC, 4);
    put64(buf + 4, t->id);
    buf[12] = (uint8_t)n;
    memcpy(buf + 13, t->address, n);
    rc = ms_tls_write(c->tls, buf, 13 + n);
    return rc != 0 ? rc : flush_tls(c);
}

/* Acceptor: takes preamble bytes; 1 when complete and valid, 0 when more
 * are needed, -1 when malformed (why says how). */
static int take_preamble(struct conn *c, const char *buf, size_t n,
                         const char **why)
{
    size_t need;

    if (c->pre_len + n > sizeof(c->pre)) {
        *why = "preamble too long";
        return -1;
    }
    memcpy(c->pre + c->pre_len, buf, n);
    c->pre_len += n;
    if (c->pre_len >= 4 && memcmp(c->pre, MAGIC, 4) != 0) {
        *why = "not a metastore peer preamble";
        return -1;
    }
    if (c->pre_len < 13)
        return 0;
    need = 13 + (size_t)c->pre[12];
    if (c->pre[12] == 0 || c->pre[12] >= MS_RAFT_ADDR_SIZE) {
        *why = "bad address length in preamble";
        return -1;
    }
    if (c->pre_len < need)
        return 0;
    if (c->pre_len > need) {
        *why = "bytes after the preamble before the ack";
        return -1;
    }
    c->id = get64(c->pre + 4);
    for (size_t i = 13; i < need; i++) {
        if (c->pre[i] <= ' ' || c->pre[i] > '~') {
            *why = "bad address in preamble";
            return -1;
        }
    }
    memcpy(c->addr, c->pre + 13, need - 13);
    c->addr[need - 13] = '\0';
    if (c->id == 0) {
        *why = "raft id 0 in preamble";
        return -1;
    }
    return 1;
}

/* Plaintext that arrived in steps 2 and 3. */
static void on_plain(struct conn *c, const char *buf, size_t n)
{
    const char *why = NULL;
    uint8_t ack = ACK_OK;
    int rc;

    switch (c->state) {
    case C_PUMP:
        if (to_pipe(c, buf, n) != 0)
            conn_close(c);
        return;
    case C_PREAMBLE:
        rc = take_preamble(c, buf, n, &why);
        if (rc < 0) {
            conn_refuse(c, true, why);
            return;
        }
        if (rc == 0)
            return;
        if (ms_tls_write(c->tls, &ack, 1) != 0 || flush_tls(c) != 0) {
            conn_refuse(c, false, "cannot send the ack");
            return;
        }
        if ((rc = handoff(c)) != 0)
            conn_refuse(c, false, uv_strerror(rc));
        return;
    case C_ACK:
        if ((uint8_t)buf[0] != ACK_OK) {
            conn_refuse(c, true, "refused by the member (bad ack)");
            return;
        }
        if ((rc = handoff(c)) != 0) {
            conn_refuse(c, false, uv_strerror(rc));
            return;
        }
        if (n > 1 && to_pipe(c, buf + 1, n - 1) != 0)
            conn_close(c);
        return;
    default:
        return;
    }
}

/* --- step 1 and the read path -------------------------------------------- */

/* Runs the session on what was fed: handshake, then plaintext. */
static void advance(struct conn *c)
{
    struct ms_raft_tls_transport *t = c->t;
    bool done = false;
    size_t n;
    int rc;

    if (c->state == C_HANDSHAKE) {
        rc = ms_tls_handshake(c->tls, &done);
        flush_tls(c); /* the alert of a refusal goes out too */
        if (rc != 0) {
            conn_refuse(c, true, ms_tls_errmsg(c->tls));
            return;
        }
        if (!done)
            return;
        if (c->outbound) {
            c->state = C_ACK;
            if (send_preamble(c) != 0) {
                conn_refuse(c, false, "cannot send the preamble");
                return;
            }
        } else {
            c->state = C_PREAMBLE;
        }
    }
    while (c->state == C_PREAMBLE || c->state == C_ACK || c->state == C_PUMP) {
        rc = ms_tls_read(c->tls, t->pbuf, sizeof(t->pbuf), &n);
        if (flush_tls(c) != 0) {
            conn_close(c);
            return;
        }
        if (rc == MS_ESHUTDOWN && c->state == C_PUMP) {
            conn_close(c);
            return;
        }
        if (rc != 0) {
            if (c->state == C_PUMP) {
                ms_debug("raft: peer TLS: %s: %s", c->remote,
                         ms_tls_errmsg(c->tls));
                conn_close(c);
            } else {
                conn_refuse(c, true, ms_tls_errmsg(c->tls));
            }
            return;
        }
        if (n == 0)
            return;
        on_plain(c, t->pbuf, n);
    }
}

static void on_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;

    if (c->state == C_CLOSING)
        return;
    if (nread < 0) {
        if (c->state == C_PUMP)
            conn_close(c);
        else
            conn_refuse(c, false,
                        nread == UV_EOF ? "closed by the other side"
                                        : uv_strerror((int)nread));
        return;
    }
    if (nread == 0)
        return;
    if (ms_tls_feed(c->tls, buf->base, (size_t)nread) != 0) {
        conn_close(c);
        return;
    }
    advance(c);
}

static void on_deadline(uv_timer_t *timer)
{
    struct conn *c = timer->data;

    conn_refuse(c, true, "no TLS handshake and preamble within 5 s");
}

/* Allocates a conn with its TCP handle and timer initialised. */
static struct conn *conn_new(struct ms_raft_tls_transport *t, bool outbound)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->t = t;
    c->outbound = outbound;
    c->state = outbound ? C_CONNECTING : C_HANDSHAKE;
    uv_tcp_init(t->loop, &c->tcp);
    uv_timer_init(t->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles = 2;
    c->next = t->conns;
    if (t->conns != NULL)
        t->conns->prev = c;
    t->conns = c;
    if (!outbound)
        t->n_accepting++;
    return c;
}

/* Starts TLS on a connected TCP handle. */
static void start_tls(struct conn *c)
{
    struct ms_raft_tls_transport *t = c->t;
    char err[MS_ERRMSG_SIZE];
    int rc;

    uv_tcp_nodelay(&c->tcp, 1);
    rc = ms_tls_new(c->outbound ? t->client_ctx : t->server_ctx,
                    c->outbound ? c->ip : NULL, &c->tls, err, sizeof(err));
    if (rc != 0) {
        conn_refuse(c, false, err);
        return;
    }
    c->state = C_HANDSHAKE;
    rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_tcp_read);
    if (rc != 0) {
        conn_refuse(c, false, uv_strerror(rc));
        return;
    }
    if (c->outbound)
        advance(c); /* the ClientHello */
}

static void on_connection(uv_stream_t *server, int status)
{
    struct ms_raft_tls_transport *t = server->data;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    struct conn *c;

    if (status < 0) {
        ms_warn("raft: peer TLS: accept on %s: %s", t->address,
                uv_strerror(status));
        return;
    }
    c = conn_new(t, false);
    if (c == NULL)
        return; /* the connection waits in the backlog */
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    snprintf(c->remote, sizeof(c->remote), "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0 &&
        ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        uv_ip4_name(in, c->ip, sizeof(c->ip));
        snprintf(c->remote, sizeof(c->remote), "%s:%u", c->ip,
                 (unsigned)ntohs(in->sin_port));
    }
    if (t->closing) {
        conn_close(c);
        return;
    }
    if (t->n_accepting > MAX_HANDSHAKES) {
        refusal(t,
                "raft: peer TLS: more than %d connections in their "
                "handshake; closing new ones",
                MAX_HANDSHAKES);
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_deadline, HANDSHAKE_MS, 0);
    start_tls(c);
}

static void on_connected(uv_connect_t *req, int status)
{
    struct conn *c = req->data;

    if (c->state == C_CLOSING)
        return;
    if (status < 0) {
        conn_refuse(c, false, uv_strerror(status));
        return;
    }
    start_tls(c);
}

/* --- the raft_uv_transport interface ------------------------------------- */

/* "a.b.c.d:port" -> sockaddr; ip gets the dotted part. */
static int parse_addr(const char *address, struct sockaddr_in *sa, char *ip,
                      size_t size)
{
    const char *colon = strrchr(address, ':');
    size_t n;
    char *end;
    long port;

    if (colon == NULL || (n = (size_t)(colon - address)) == 0 || n >= size)
        return -1;
    memcpy(ip, address, n);
    ip[n] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535)
        return -1;
    return uv_ip4_addr(ip, (int)port, sa) == 0 ? 0 : -1;
}

static int t_init(struct raft_uv_transport *outer, raft_id id,
                  const char *address)
{
    struct ms_raft_tls_transport *t = outer->impl;

    if (strlen(address) >= sizeof(t->address)) {
        snprintf(outer->errmsg, sizeof(outer->errmsg), "address %s too long",
                 address);
        return RAFT_INVALID;
    }
    t->id = id;
    snprintf(t->address, sizeof(t->address), "%s", address);
    return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    struct ms_raft_tls_transport *t = h->data;

    t->pending--;
    maybe_closed(t);
}

static int t_listen(struct raft_uv_transport *outer, raft_uv_accept_cb cb)
{
    struct ms_raft_tls_transport *t = outer->impl;
    struct sockaddr_in sa;
    char ip[48];
    int rc;

    if (parse_addr(t->address, &sa, ip, sizeof(ip)) != 0) {
        snprintf(outer->errmsg, sizeof(outer->errmsg), "listen: bad address %s",
                 t->address);
        return RAFT_INVALID;
    }
    t->accept_cb = cb;
    uv_tcp_init(t->loop, &t->listener);
    t->listener.data = t;
    t->listening = true;
    rc = uv_tcp_bind(&t->listener, (struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&t->listener, 128, on_connection);
    if (rc != 0) {
        /* CRAFT_NOTES: libraft reports this as RAFT_IOERR with no text;
         * node.c shows this message */
        snprintf(outer->errmsg, sizeof(outer->errmsg), "listen on %s: %s",
                 t->address, uv_strerror(rc));
        t->listening = false;
        t->pending++;
        uv_close((uv_handle_t *)&t->listener, on_listener_closed);
        return RAFT_IOERR;
    }
    return 0;
}

static int t_connect(struct raft_uv_transport *outer,
                     struct raft_uv_connect *req, raft_id id,
                     const char *address, raft_uv_connect_cb cb)
{
    struct ms_raft_tls_transport *t = outer->impl;
    struct sockaddr_in sa;
    struct conn *c;
    char ip[48];
    int rc;

    if (t->closing)
        return RAFT_CANCELED;
    if (parse_addr(address, &sa, ip, sizeof(ip)) != 0 ||
        strlen(address) >= MS_RAFT_ADDR_SIZE) {
        snprintf(outer->errmsg, sizeof(outer->errmsg), "bad address %s",
                 address);
        return RAFT_NOCONNECTION;
    }
    c = conn_new(t, true);
    if (c == NULL)
        return RAFT_NOMEM;
    req->cb = cb;
    c->id = id;
    snprintf(c->addr, sizeof(c->addr), "%s", address);
    snprintf(c->ip, sizeof(c->ip), "%s", ip);
    snprintf(c->remote, sizeof(c->remote), "%s", address);
    c->connect.data = c;
    rc = uv_tcp_connect(&c->connect, &c->tcp, (struct sockaddr *)&sa,
                        on_connected);
    if (rc != 0) {
        snprintf(outer->errmsg, sizeof(outer->errmsg), "connect to %s: %s",
                 address, uv_strerror(rc));
        conn_close(c); /* req is not set: no callback */
        return RAFT_NOCONNECTION;
    }
    c->req = req;
    uv_timer_start(&c->timer, on_deadline, HANDSHAKE_MS, 0);
    return 0;
}

static void t_close(struct raft_uv_transport *outer,
                    raft_uv_transport_close_cb cb)
{
    struct ms_raft_tls_transport *t = outer->impl;
    struct conn *c, *next;

    t->closing = true;
    t->close_cb = cb;
    if (t->listening) {
        t->listening = false;
        t->pending++;
        uv_close((uv_handle_t *)&t->listener, on_listener_closed);
    }
    for (c = t->conns; c != NULL; c = next) {
        next = c->next;
        conn_close(c);
    }
    maybe_closed(t);
}

int ms_raft_tls_transport_new(uv_loop_t *loop, const struct ms_tls_config *cfg,
                              struct ms_raft_tls_transport **out, char *errmsg,
                              size_t size)
{
    struct ms_raft_tls_transport *t;
    int rc;

    *out = NULL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return ms_seterr(errmsg, size, MS_ENOMEM, "out of memory");
    rc = ms_tls_ctx_new(cfg, MS_TLS_SERVER, &t->server_ctx, errmsg, size);
    if (rc == 0)
        rc = ms_tls_ctx_new(cfg, MS_TLS_CLIENT, &t->client_ctx, errmsg, size);
    if (rc != 0) {
        ms_raft_tls_transport_free(t);
        return rc;
    }
    t->loop = loop;
    t->outer.impl = t;
    t->outer.init = t_init;
    t->outer.listen = t_listen;
    t->outer.connect = t_connect;
    t->outer.close = t_close;
    *out = t;
    return 0;
}

struct raft_uv_transport *
ms_raft_tls_transport_outer(struct ms_raft_tls_transport *t)
{
    return &t->outer;
}

void ms_raft_tls_transport_free(struct ms_raft_tls_transport *t)
{
    if (t == NULL)
        return;
    ms_tls_ctx_free(t->server_ctx);
    ms_tls_ctx_free(t->client_ctx);
    free(t);
}
