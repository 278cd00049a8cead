/* server.h - HTTP/1.1 server on a libuv loop: keep-alive, pipelining, async
 * and streamed (chunked) responses, bounded requests. */
#ifndef MS_HTTP_SERVER_H
#define MS_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/buf.h"
#include "util/error.h"

/*
 * Lifetimes (libuv style):
 *
 * - struct ms_http_server is a long-lived handle allocated by the caller.
 *   After ms_http_server_init succeeds it must be ended with
 *   ms_http_server_stop or ms_http_server_close; its memory may be released
 *   only in or after the callback those take.
 * - struct ms_http_request is owned by the server. It is handed to
 *   on_request and stays valid until the handler finishes it with exactly
 *   one of ms_http_respond, ms_http_respond_owned or ms_http_stream_end,
 *   even if the client disconnects meanwhile (ms_http_request_closed()
 *   then returns 1 and the response is discarded). The finishing call may
 *   come from on_request itself or any later loop callback; afterwards the
 *   request pointer is invalid. A handler must finish every request it gets:
 *   the server's stop/close callback waits for that.
 * - Responses to pipelined requests of one connection go out in request
 *   order, whatever order the handlers answer in.
 * - Everything runs on the loop thread; nothing here is thread-safe.
 */

struct ms_http_server;
struct ms_http_conn;
struct ms_tls_ctx;

/* A request as the handler sees it. Every pointer is owned by the server and
 * lives as long as the request. */
struct ms_http_request {
    void *data;                    /* for the handler; never touched here */
    struct ms_http_server *server; /* the server that received it */
    const char *method;            /* "GET", "PUT", ... (static string) */
    const char *target;            /* raw request target, NUL-terminated */
    const char *path;              /* raw (still %-encoded) path in target */
    size_t path_len;
    const char *query; /* raw query after '?' ("" if none), not NUL-ended */
    size_t query_len;
    const uint8_t *body; /* complete body; body[body_len] == 0; never NULL */
    size_t body_len;
    const char *remote; /* peer address "ip:port" */
    unsigned short http_major, http_minor;
};

/* Problems the server answers on its own, before or instead of on_request. */
enum ms_http_error_kind {
    MS_HTTP_ERR_BAD_REQUEST,          /* unparsable request: 400 */
    MS_HTTP_ERR_HEADER_TOO_LARGE,     /* over max_header_bytes: 431 */
    MS_HTTP_ERR_BODY_TOO_LARGE,       /* over max_body_bytes: 413 */
    MS_HTTP_ERR_HEADER_TIMEOUT,       /* request not read in time: 408 */
    MS_HTTP_ERR_TOO_MANY_CONNECTIONS, /* over max_connections: 503 */
};

/* The error answer the hook may reshape. On entry status holds the default
 * status above, content_type "text/plain; charset=utf-8" and body the
 * message plus "\n". The hook may change all three (content_type must stay
 * valid until the hook returns; it is copied). The connection is closed
 * after the answer is written. */
struct ms_http_error_reply {
    int status;
    const char *content_type;
    struct ms_buf body; /* owned by the server */
};

/* Called on the loop for each error answer; message is a short English
 * description ("request header too large"); data is the server's data. */
typedef void (*ms_http_error_cb)(enum ms_http_error_kind kind,
                                 const char *message,
                                 struct ms_http_error_reply *reply, void *data);

/* Called for every complete request; data is the server's data. */
typedef void (*ms_http_request_cb)(struct ms_http_request *req, void *data);

/* Called for a connection that starts with the HTTP/2 client preface
 * ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", h2c with prior knowledge, as
 * gRPC clients send; over TLS, after the handshake, whatever ALPN
 * said): fd is a duplicate of the connection's socket, which passes to
 * the hook in every case; tls (NULL without TLS) is the connection's TLS
 * session, handshake done, which passes to the hook too: the hook reads
 * and writes through it from now on (it may still buffer records);
 * data[0..len) are the plaintext bytes read so far (the preface and maybe
 * more; borrowed). The server then forgets the connection. arg is the
 * server's data. */
struct ms_tls;
typedef void (*ms_http_h2_cb)(uv_os_sock_t fd, struct ms_tls *tls,
                              const void *data, size_t len, const char *remote,
                              void *arg);

/* Called when the connection of a pending request closes (see
 * ms_http_request_on_cancel). The handler still has to finish req. */
typedef void (*ms_http_cancel_cb)(struct ms_http_request *req);

/* Called once the server is fully closed; its memory may then be freed. */
typedef void (*ms_http_server_close_cb)(struct ms_http_server *server);

/* Limits and hooks. A field left 0 (or NULL) takes the default. */
struct ms_http_server_config {
    size_t max_header_bytes;    /* request line + headers; 16 KiB (at most
                                   80 KiB: http_parser's own cap) */
    size_t max_body_bytes;      /* 1572864 (etcd --max-request-bytes) */
    uint64_t header_timeout_ms; /* to receive a request's headers; 10000 */
    uint64_t idle_timeout_ms;   /* keep-alive idle, or a body stalled; 60000 */
    unsigned max_connections;   /* open connections; 1024 */
    unsigned max_pipeline;      /* requests in flight per connection; 256 */
    int backlog;                /* listen backlog; 1024 */
    uint64_t linger_ms;         /* after the last answer, wait this long for
                                   the client to close; 2000 */
    ms_http_error_cb on_error;  /* NULL: the default plain-text answers */
    ms_http_h2_cb on_h2;        /* NULL: HTTP/2 prefaces are bad requests */
    /* Client TLS (borrowed; must outlive the server): every connection
     * starts with a TLS handshake (deadline: header_timeout_ms from
     * accept); failures are logged with the client's address and the
     * reason. NULL: plain TCP. */
    struct ms_tls_ctx *tls;
    unsigned max_handshakes; /* TLS handshakes in progress; 128 (more
                                connections are closed at accept) */
};

/* The server handle; allocate it yourself, treat fields below data and
 * errmsg as private. */
struct ms_http_server {
    void *data;                  /* for the owner; passed to the hooks */
    char errmsg[MS_ERRMSG_SIZE]; /* why the last call failed */
    uint64_t writes; /* read-only: answer writes handed to the kernel
                        (answers given together on one connection in one
                        loop iteration leave in one write) */
    /* private */
    uv_loop_t *loop;
    uv_tcp_t tcp;
    struct ms_http_server_config cfg;
    ms_http_request_cb on_request;
    ms_http_server_close_cb close_cb;
    struct ms_http_conn *conns; /* every connection not yet freed */
    unsigned nconns;            /* counted against max_connections */
    unsigned nrejecting;        /* being answered 503 */
    unsigned nhandshakes;       /* TLS handshakes in progress */
    void *free_reqs;            /* recycled requests */
    unsigned nfree;
    char *rbuf; /* read buffer shared by all connections (one loop thread) */
    int state;
    int listener_closed;
    uv_check_t flush_check;     /* writes deferred answers (end of iteration) */
    uv_idle_t flush_idle;       /* no blocking poll while answers wait */
    struct ms_http_conn *dirty; /* connections with deferred answers */
    int flush_handles;          /* flush handles not yet closed */
    int flush_on;               /* ... and started */
};

/* Fills cfg with the defaults (the same values 0 fields stand for). */
void ms_http_server_config_init(struct ms_http_server_config *cfg);

/* Initializes server on loop with cfg (copied; NULL = defaults). on_request
 * is required. Zeroes the struct: set server->data afterwards. Returns 0 or
 * MS_ENOMEM/MS_EINVAL/MS_EIO with errmsg set (nothing to close then). */
int ms_http_server_init(struct ms_http_server *server, uv_loop_t *loop,
                        const struct ms_http_server_config *cfg,
                        ms_http_request_cb on_request);

/* Binds and listens on addr "IPv4:port" (or "[IPv6]:port"); port 0 picks a
 * free port (see ms_http_server_port). Returns 0, MS_EINVAL for a bad
 * address or MS_EIO (errmsg says why, e.g. address in use). On failure the
 * server must still be closed. */
int ms_http_server_listen(struct ms_http_server *server, const char *addr);

/* The bound port after a successful listen, or -1. */
int ms_http_server_port(struct ms_http_server *server);

/* Graceful stop: stops accepting, closes idle connections, lets requests
 * already received finish (their answers go out, with Connection: close),
 * ignores further requests, then closes everything and calls cb (may be
 * NULL) from the loop. Calling it again, or ms_http_server_close after it,
 * replaces cb; cb is called once. */
void ms_http_server_stop(struct ms_http_server *server,
                         ms_http_server_close_cb cb);

/* Hard close: like stop but closes every connection now; pending requests
 * get their cancel callback and are discarded when their handler finishes
 * them; cb runs once every connection is closed and every request
 * finished. */
void ms_http_server_close(struct ms_http_server *server,
                          ms_http_server_close_cb cb);

/* Number of open connections (accepted, not yet fully closed). */
unsigned ms_http_server_connections(const struct ms_http_server *server);

/* --- reading a request --------------------------------------------------*/

/* Value of header name (case-insensitive; the first if repeated),
 * NUL-terminated, owned by req; NULL if absent. */
const char *ms_http_request_header(const struct ms_http_request *req,
                                   const char *name);

/* Number of headers, and header i as borrowed NUL-terminated strings. */
size_t ms_http_request_header_count(const struct ms_http_request *req);
void ms_http_request_header_at(const struct ms_http_request *req, size_t i,
                               const char **name, const char **value);

/* Percent-decodes src[0..n) into dst (room for n bytes; dst == src is
 * allowed). form != 0 also turns '+' into ' ' (query strings). Any byte,
 * %00 included, may result. Returns 0 and the decoded length in *dst_len,
 * or MS_EMALFORMED for a '%' not followed by two hex digits. */
int ms_http_pct_decode(const char *src, size_t n, int form, uint8_t *dst,
                       size_t *dst_len);

/* Finds query parameter name (compared after decoding) in the raw query
 * string query[0..n) ("a=1&b=x%20y") and replaces out's content with its
 * decoded value ("" for a bare "name" without '='); the first occurrence
 * wins. Returns 0, MS_ENOTFOUND, MS_EMALFORMED (bad escape in the value)
 * or MS_ENOMEM. out stays owned by the caller. */
int ms_http_query_get(const char *query, size_t n, const char *name,
                      struct ms_buf *out);

/* ms_http_query_get on req's query string. */
int ms_http_request_query(const struct ms_http_request *req, const char *name,
                          struct ms_buf *out);

/* 1 once req's connection has closed (the answer will be discarded). */
int ms_http_request_closed(const struct ms_http_request *req);

/* Registers cb to be called once if req's connection closes before req is
 * finished; replaces an earlier cb; NULL removes it. cb runs from a loop
 * callback or from inside an ms_http_* call that hit a write error or
 * closed the server. Not called if the connection is already closed:
 * check ms_http_request_closed() after registering. */
void ms_http_request_on_cancel(struct ms_http_request *req,
                               ms_http_cancel_cb cb);

/* --- answering ----------------------------------------------------------*/

/* Adds header "name: value" to req's answer (both copied). Call before
 * ms_http_respond/ms_http_stream_begin. Content-Length, Transfer-Encoding
 * and Connection are the server's; don't add them. Returns 0, MS_EINVAL
 * (CR or LF in name/value, or the answer already started) or MS_ENOMEM. */
int ms_http_response_header(struct ms_http_request *req, const char *name,
                            const char *value);

/* Finishes req with a complete answer: status line, Content-Type (omitted if
 * content_type is NULL), Content-Length, the added headers, body. body is
 * borrowed: it is copied before this returns. A status outside 100..999 is
 * sent as 500; 1xx, 204 and 304 go without body. Returns 0; MS_ECANCELED if
 * the connection closed (answer discarded); MS_ENOMEM (the connection is
 * closed); MS_EINVAL if req was already answered by a stream (req is then
 * NOT finished). In every case but MS_EINVAL req is finished and invalid. */
int ms_http_respond(struct ms_http_request *req, int status,
                    const char *content_type, const void *body, size_t len);

/* Like ms_http_respond, but body (from malloc, may be NULL if len == 0)
 * passes to the server, which writes it without copying and frees it, in
 * every outcome except MS_EINVAL. */
int ms_http_respond_owned(struct ms_http_request *req, int status,
                          const char *content_type, void *body, size_t len);

/* Starts a streamed answer with Transfer-Encoding: chunked (to an HTTP/1.0
 * client: no length, the connection closes at the end). Returns 0,
 * MS_ECANCELED (connection gone), MS_ENOMEM, or MS_EINVAL if the answer had
 * already started. Unless MS_EINVAL, req must then be finished with
 * ms_http_stream_end. */
int ms_http_stream_begin(struct ms_http_request *req, int status,
                         const char *content_type);

/* Sends data[0..len) as one chunk (copied; len 0 sends nothing). Returns 0,
 * MS_ECANCELED (connection gone: stop streaming and call stream_end),
 * MS_ENOMEM (connection closed) or MS_EINVAL (no stream begun). */
int ms_http_stream_write(struct ms_http_request *req, const void *data,
                         size_t len);

/* Bytes of req's connection accepted but not yet taken by the kernel: a
 * streamer's back-pressure signal. */
size_t ms_http_stream_pending(const struct ms_http_request *req);

/* Ends the stream and finishes req. Returns 0, MS_ECANCELED (connection
 * was gone) or MS_EINVAL (no stream begun; req NOT finished). */
int ms_http_stream_end(struct ms_http_request *req);

#endif /* MS_HTTP_SERVER_H */
