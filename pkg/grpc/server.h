/* server.h - gRPC over HTTP/2 (h2c, prior knowledge) on a libuv loop:
 * nghttp2 sessions on connections handed over by the HTTP/1.1 listener,
 * length-prefixed message framing, trailers, status codes, deadlines. */
#ifndef MS_GRPC_SERVER_H
#define MS_GRPC_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/buf.h"
#include "util/error.h"

/*
 * Lifetimes (as pkg/http/server.h):
 *
 * - struct ms_grpc_server is a caller-allocated long-lived handle, ended
 *   with ms_grpc_server_stop; free it only in or after the stop callback.
 * - struct ms_grpc_call (one HTTP/2 stream) is owned by the server. It is
 *   handed to on_call once its headers are valid and stays valid until the
 *   handler finishes it with ms_grpc_finish, exactly once, even if the
 *   stream was reset, the deadline passed or the connection closed
 *   meanwhile (on_cancel is then called and whatever is sent is dropped).
 * - Loop thread only; nothing here is thread-safe.
 */

struct ms_grpc_server;
struct ms_grpc_conn;
struct ms_grpc_call;

/* A message of the call (msg borrowed for the callback; without the 5-byte
 * prefix), or msg NULL with len 0 when the client half-closed. */
typedef void (*ms_grpc_message_cb)(struct ms_grpc_call *call,
                                   const uint8_t *msg, size_t len);
/* The stream is gone (reset, deadline, connection closed, server stopped
 * with ms_grpc_server_stop's cancel): the handler must still finish it. */
typedef void (*ms_grpc_cancel_cb)(struct ms_grpc_call *call);
/* Fewer than MS_GRPC_DRAIN_BYTES are queued on the call: the handler may
 * queue more (or clear on_drained when it has no more). Called from the
 * loop, outside every other callback of this server. */
typedef void (*ms_grpc_drain_cb)(struct ms_grpc_call *call);
#define MS_GRPC_DRAIN_BYTES (256 * 1024)
/* A new call; data is the server's data. The handler sets on_message (and
 * on_cancel) or finishes the call at once. */
typedef void (*ms_grpc_call_cb)(struct ms_grpc_call *call, void *data);
typedef void (*ms_grpc_close_cb)(struct ms_grpc_server *server);

struct ms_grpc_call {
    void *data;                 /* the handler's; never touched here */
    struct ms_grpc_server *srv; /* the server that received it */
    const char *path;           /* "/etcdserverpb.KV/Put", NUL-terminated */
    uint64_t deadline_ms;       /* from grpc-timeout (uv_now based); 0: none */
    const char *remote;         /* peer "ip:port" */
    bool leader_required;       /* header hasleader: true */
    char token[64]; /* metadata "token" (etcd auth), "" when absent or
                       over-long (token_bad) */
    bool token_bad;
    /* client TLS with --client-cert-auth: the verified certificate's CN,
     * NULL without (set by the TLS layer before on_call); etcd takes it
     * as the user when the call sends no token */
    const char *client_cn;
    ms_grpc_message_cb on_message;
    ms_grpc_cancel_cb on_cancel;
    ms_grpc_drain_cb on_drained; /* a server stream's producer, or NULL */
    /* private */
    struct ms_grpc_conn *conn;
    struct ms_grpc_call *next, *prev;
    int32_t stream_id;
    struct ms_buf in;  /* received bytes not yet a whole message */
    struct ms_buf out; /* framed messages not yet taken by nghttp2 */
    size_t out_off;
    bool out_inline; /* out.data is out_small, not the heap */
    uint8_t out_small[128]; /* a unary answer fits: no allocation */
    char pathbuf[128];
    char ctype[64];
    bool bad_header; /* an over-long :path */
    bool method_post;
    bool headers_sent;
    bool deferred;     /* data provider waits for more */
    bool trailers_due; /* finished after headers: trailers follow the data */
    bool answered;     /* status sent (or the stream is gone) */
    bool finished;     /* ms_grpc_finish called */
    bool closed;       /* the stream closed in nghttp2 */
    bool remote_done;  /* the client half-closed */
    bool cancel_told;  /* on_cancel considered */
    bool busy;         /* inside on_stream_close: freed there */
    bool started;      /* handed to on_call */
    int status;
    char *message;
};

/* Limits. A field left 0 takes the default. */
struct ms_grpc_config {
    size_t max_recv_bytes;    /* one message; 2 MiB + 1 KiB (grpc-go's 8) */
    unsigned max_streams;     /* concurrent per connection; 1024 */
    unsigned max_connections; /* 1024 */
    uint64_t idle_timeout_ms; /* no stream and no input; 300000 */
};

struct ms_grpc_server {
    void *data; /* for the owner, passed to on_call */
    char errmsg[MS_ERRMSG_SIZE];
    /* counters (read-only) */
    uint64_t calls, conns_total, bad_frames;
    /* private */
    uv_loop_t *loop;
    struct ms_grpc_config cfg;
    ms_grpc_call_cb on_call;
    ms_grpc_close_cb close_cb;
    struct ms_grpc_conn *conns;
    unsigned nconns;
    uv_idle_t flush;  /* writes what callbacks queued, once per iteration */
    uv_timer_t timer; /* deadlines and idle connections, every 250 ms */
    int nhandles;
    bool flush_on;
    bool stopping;
    bool handles_closing;
};

/* Initializes server on loop (cfg copied; NULL: defaults). on_call is
 * required. Zeroes the struct: set data afterwards. Returns 0 or MS_EINVAL.
 */
int ms_grpc_server_init(struct ms_grpc_server *server, uv_loop_t *loop,
                        const struct ms_grpc_config *cfg,
                        ms_grpc_call_cb on_call);

/* Takes over the connected socket fd (ownership passes in every case) on
 * which the client preface started: data[0..len) are the bytes already read
 * (at least the 24-byte preface; borrowed; plaintext). tls (may be NULL:
 * h2c) is the connection's TLS session with its handshake done; it passes
 * here in every case too: every later byte is read and written through
 * it, what it still buffers is decrypted at once, and the connection ends
 * with close_notify. remote is the peer address. Returns 0, or MS_EIO /
 * MS_ENOMEM / MS_ESHUTDOWN (fd closed, tls freed). */
struct ms_tls;
int ms_grpc_server_adopt(struct ms_grpc_server *server, uv_os_sock_t fd,
                         struct ms_tls *tls, const void *data, size_t len,
                         const char *remote);

/* Shutdown: GOAWAY on every connection; new streams are refused; each
 * open call gets on_cancel (its handler ends it, e.g. with 14 "etcdserver:
 * server stopped"); connections close once their streams are done; cb
 * (may be NULL) runs when every connection and handle is closed. */
void ms_grpc_server_stop(struct ms_grpc_server *server, ms_grpc_close_cb cb);

/* Open connections. */
unsigned ms_grpc_server_connections(const struct ms_grpc_server *server);

/* Queues one message (msg[0..len) copied, framed) on call. Headers go
 * first on the first send. Returns 0, MS_ECANCELED (stream gone: finish
 * it), MS_ENOMEM, or MS_EINVAL (already finished). */
int ms_grpc_send(struct ms_grpc_call *call, const void *msg, size_t len);

/* Bytes queued on call that the client has not taken yet. */
size_t ms_grpc_queued(const struct ms_grpc_call *call);

/* Finishes call with grpc-status code and grpc-message text (may be NULL;
 * copied, percent-encoded on the wire): trailers after the queued
 * messages, or a trailers-only answer when nothing was sent. call is
 * invalid afterwards. */
void ms_grpc_finish(struct ms_grpc_call *call, int code, const char *message);

/* Parses a grpc-timeout value ("4999082u", "5S") into milliseconds
 * (rounded up). Returns 0 or MS_EMALFORMED. */
int ms_grpc_parse_timeout(const char *v, uint64_t *ms);

/* Appends msg percent-encoded as grpc-message wants (bytes outside
 * 0x20..0x7E and '%'). Returns 0 or MS_ENOMEM. */
int ms_grpc_pct_encode(struct ms_buf *out, const char *msg);

#endif /* MS_GRPC_SERVER_H */
