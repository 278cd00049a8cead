/* client.h - async HTTP/1.1 client: one keep-alive connection on a libuv
 * loop, requests pipelined and answered in order. */
#ifndef MS_HTTP_CLIENT_H
#define MS_HTTP_CLIENT_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "util/error.h"

/*
 * One client = one server address and at most one TCP connection at a
 * time, opened on the first request and kept alive. Requests are written at
 * once (pipelined) and their callbacks run in submission order. When the
 * connection fails (refused, reset, timed out, bad response, or the server
 * closes it), every request sent on it fails with an error code; the next
 * request opens a new connection. Requests are never retried.
 *
 * Lifetimes (libuv style): struct ms_http_client is a caller-allocated
 * handle, ended with ms_http_client_close; free it only in or after the
 * close callback. struct ms_http_client_req is caller-allocated and must
 * stay valid until its callback, which runs exactly once if
 * ms_http_client_request returned 0 (never otherwise). Loop thread only.
 */

struct ms_http_client;
struct ms_http_client_req;
struct ms_http_client_conn;

/* A header to send. Both strings are borrowed for the call. */
struct ms_http_header {
    const char *name;
    const char *value;
};

/* A received response; valid only during the callback that gets it. */
struct ms_http_response {
    int status;          /* 200, 404, ... */
    const uint8_t *body; /* body[body_len] == 0; never NULL */
    size_t body_len;
    const void *priv; /* header table (private) */
};

/* status is 0 with resp set, or an MS_E code with resp NULL: MS_EIO
 * (connect/read/write failure or the server closed the connection; errmsg
 * says which), MS_ETIMEOUT, MS_EMALFORMED (unparsable response),
 * MS_ETOOLARGE (response over max_response_bytes), MS_ECANCELED (client
 * closed). The callback may submit new requests or close the client. */
typedef void (*ms_http_client_cb)(struct ms_http_client_req *req, int status,
                                  const struct ms_http_response *resp);

typedef void (*ms_http_client_close_cb)(struct ms_http_client *client);

/* A request; allocate it yourself, treat fields below sent as private. */
struct ms_http_client_req {
    void *data; /* for the caller; never touched here */
    /* Read it in the callback of a failed request: 0 when the request's
     * bytes never went out on an established connection (it cannot have
     * reached the server: connect refused or timed out, the connection
     * failed or closed first), 1 when they did (it may have reached it). */
    int sent;
    /* private */
    struct ms_http_client_req *next;
    ms_http_client_cb cb;
    uint64_t deadline;
    int head_only;
};

/* A field left 0 takes the default. */
struct ms_tls_ctx;

struct ms_http_client_config {
    uint64_t connect_timeout_ms; /* 5000 */
    uint64_t request_timeout_ms; /* per request, from submission; 0: none */
    size_t max_response_bytes;   /* body limit; 64 MiB */
    /* Before writing on a kept-alive connection with nothing in flight,
     * check (one recv peek) that the server has not closed or reset it
     * meanwhile; if it has, use a new connection, so that the request is
     * not written where nobody can read it (a server that died). */
    int probe_idle;
    /* TLS towards the server (https:// client URLs, e.g. forwarding to
     * the leader): a client-role context from ms_tls_ctx_new()
     * (pkg/tls/tls.h), borrowed, outliving the client. When it verifies
     * the server, the certificate must name the dialed IP (SAN IP). A
     * connection counts as established (connect_timeout_ms, `sent`)
     * once the handshake is done; a failed handshake fails the requests
     * with MS_EIO and errmsg "TLS handshake with IP:port: <reason>". */
    struct ms_tls_ctx *tls;
};

/* The client handle; fields below data and errmsg are private. */
struct ms_http_client {
    void *data;                  /* for the owner */
    char errmsg[MS_ERRMSG_SIZE]; /* why the last request(s) failed */
    /* private */
    uv_loop_t *loop;
    struct sockaddr_storage addr;
    char host[64]; /* "ip:port" for the Host header and messages */
    struct ms_http_client_config cfg;
    uv_timer_t timer;
    uint64_t timer_due;
    int timer_armed;
    struct ms_http_client_conn *conn;       /* current connection or NULL */
    struct ms_http_client_req *head, *tail; /* sent on conn, in order */
    struct ms_http_client_req *unsent; /* first listed one not written yet */
    size_t npending;
    unsigned nconns; /* connection structs not yet freed */
    int closing, timer_closed;
    ms_http_client_close_cb close_cb;
};

/* Initializes client for server addr "IPv4:port" or "[IPv6]:port" on loop
 * (cfg copied; NULL = defaults). Does not connect yet. Returns 0,
 * MS_EINVAL (bad address); nothing to close
 * on error. */
int ms_http_client_init(struct ms_http_client *client, uv_loop_t *loop,
                        const char *addr,
                        const struct ms_http_client_config *cfg);

/* Sends method target (e.g. "POST", "/v3/kv/put") with headers[0..nheaders)
 * (may be NULL; a Host header is added unless given; don't pass
 * Content-Length or Transfer-Encoding) and body[0..len) (Content-Length is
 * sent when len > 0 or the method is POST, PUT or PATCH). Everything is
 * copied before return; req must live until cb (which runs from the loop,
 * or before this returns if the open connection fails while writing).
 * Returns 0, MS_EINVAL (bad
 * method/target/header text), MS_ESHUTDOWN (client closing), MS_ENOMEM, or
 * MS_EIO (could not start connecting; errmsg says why). */
int ms_http_client_request(struct ms_http_client *client,
                           struct ms_http_client_req *req, const char *method,
                           const char *target,
                           const struct ms_http_header *headers,
                           size_t nheaders, const void *body, size_t len,
                           ms_http_client_cb cb);

/* Requests submitted and not yet called back. */
size_t ms_http_client_pending(const struct ms_http_client *client);

/* Fails every pending request with MS_ECANCELED, closes the connection and
 * calls cb (may be NULL) from the loop once all handles are closed. */
void ms_http_client_close(struct ms_http_client *client,
                          ms_http_client_close_cb cb);

/* Value of response header name (case-insensitive), NUL-terminated, valid
 * during the callback; NULL if absent. */
const char *ms_http_resp_header(const struct ms_http_response *resp,
                                const char *name);

/* Number of response headers, and header i (borrowed, callback only). */
size_t ms_http_resp_header_count(const struct ms_http_response *resp);
void ms_http_resp_header_at(const struct ms_http_response *resp, size_t i,
                            const char **name, const char **value);

#endif /* MS_HTTP_CLIENT_H */
